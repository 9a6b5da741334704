// The build context: a directory, seen through .dockerignore. COPY/ADD sources are resolved here as BuildKit
// resolves them: paths are relative to the context root and may not leave it; wildcards follow Go's
// filepath.Match (a `*` never crosses a `/`); excluded paths do not exist; a source that is itself a symlink is
// followed (inside the context), links below a copied directory are copied as links.
import { existsSync, readFileSync } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { cleanPath, dockerignoreCandidates, IgnoreMatcher } from '../dockerfile/dockerignore.js';
import type { Stats } from 'node:fs';

export class ContextError extends Error {
  override readonly name = 'ContextError';
}

/** Go filepath.Match as a RegExp over one whole slash-separated path. */
export function matchPattern(pattern: string): RegExp {
  let re = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < chars.length) re += escape(chars[++i]);
    else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (chars[j] === '^') {
        cls += '^';
        j++;
      }
      while (j < chars.length && chars[j] !== ']') {
        if (chars[j] === '\\' && j + 1 < chars.length) j++;
        cls += chars[j] === '-' ? '-' : escapeClass(chars[j]);
        j++;
      }
      if (j >= chars.length) throw new ContextError(`syntax error in pattern ${JSON.stringify(pattern)}: unclosed [`);
      re += `(?!/)[${cls}]`;
      i = j;
    } else re += escape(c);
  }
  return new RegExp(re + '$', 'u');
}

const escape = (c: string) => (/[\\^$.*+?()[\]{}|/]/.test(c) ? '\\' + c : c);
const escapeClass = (c: string) => (/[\\\]\[^]/.test(c) ? '\\' + c : c);

export function hasWildcard(p: string): boolean {
  return /[*?[]/.test(p);
}

export interface ContextPath {
  /** slash-separated, relative to the context root ('' for the root itself) */
  rel: string;
  abs: string;
  /** lstat, or stat for a followed top-level symlink */
  stats: Stats;
  /** a symlink's target, as stored */
  linkname?: string;
}

export class BuildContext {
  private constructor(
    readonly dir: string,
    readonly ignore: IgnoreMatcher,
    /** the ignore file that was read, for messages */
    readonly ignoreFile: string | undefined,
  ) {}

  /** The context directory with `<Dockerfile>.dockerignore` or `.dockerignore` applied (the first that exists). */
  static open(dir: string, dockerfilePath?: string): BuildContext {
    const abs = path.resolve(dir);
    const candidates = dockerfilePath ? dockerignoreCandidates(path.resolve(dockerfilePath), abs) : [path.join(abs, '.dockerignore')];
    for (const f of candidates) {
      if (existsSync(f)) return new BuildContext(abs, IgnoreMatcher.fromText(readFileSync(f, 'utf8')), f);
    }
    return new BuildContext(abs, new IgnoreMatcher([]), undefined);
  }

  /** A directory without any ignore file (another stage's or image's filesystem, for COPY --from). */
  static plain(dir: string): BuildContext {
    return new BuildContext(path.resolve(dir), new IgnoreMatcher([]), undefined);
  }

  excluded(rel: string): boolean {
    return rel !== '' && this.ignore.excludes(rel);
  }

  /** A source as written in COPY/ADD → the context paths it names (several for a wildcard). */
  async resolve(source: string): Promise<ContextPath[]> {
    const cleaned = cleanPath(source.replace(/^\/+/, '') || '.');
    if (cleaned === '..' || cleaned.startsWith('../')) {
      throw new ContextError(`${source}: forbidden path outside the build context; COPY sources are relative to the context ${this.dir}`);
    }
    const rel = cleaned === '.' ? '' : cleaned;
    if (!hasWildcard(rel)) {
      const found = await this.at(rel, true);
      if (!found) throw new ContextError(`${source}: not found in the build context${this.excludedNote(rel)}`);
      return [found];
    }
    const parts = rel.split('/');
    let current: string[] = [''];
    for (const [i, part] of parts.entries()) {
      const next: string[] = [];
      const re = hasWildcard(part) ? matchPattern(part) : undefined;
      for (const dir of current) {
        if (!re) {
          next.push(dir ? `${dir}/${part}` : part);
          continue;
        }
        const names = await readdir(path.join(this.dir, dir)).catch(() => [] as string[]);
        for (const n of names.sort()) if (re.test(n)) next.push(dir ? `${dir}/${n}` : n);
      }
      current = next.filter((p) => !this.excluded(p) || (i < parts.length - 1 && this.ignore.hasExceptions));
    }
    const out: ContextPath[] = [];
    for (const p of current) {
      if (this.excluded(p)) continue;
      const found = await this.at(p, true);
      if (found) out.push(found);
    }
    if (out.length === 0) throw new ContextError(`${source}: no source files were specified (nothing in the build context matches)`);
    return out;
  }

  private excludedNote(rel: string): string {
    return rel && this.excluded(rel) && this.ignoreFile ? ` (it is excluded by ${path.relative(this.dir, this.ignoreFile) || this.ignoreFile})` : '';
  }

  /** The path if it exists and is not excluded; a top-level symlink is followed inside the context. */
  private async at(rel: string, follow: boolean): Promise<ContextPath | undefined> {
    if (this.excluded(rel)) return undefined;
    const abs = path.join(this.dir, rel);
    let st = await lstat(abs).catch(() => undefined);
    if (!st) return undefined;
    let target = abs;
    for (let hops = 0; follow && st.isSymbolicLink(); hops++) {
      if (hops > 40) throw new ContextError(`${rel}: too many levels of symbolic links`);
      const link = await readlink(target);
      target = link.startsWith('/') ? path.join(this.dir, link) : path.resolve(path.dirname(target), link);
      if (!(target + '/').startsWith(this.dir + '/')) throw new ContextError(`${rel}: a symlink to ${link}, outside the build context`);
      st = await lstat(target).catch(() => undefined);
      if (!st) throw new ContextError(`${rel}: a symlink to ${link}, which does not exist in the build context`);
    }
    return { rel, abs: target, stats: st };
  }

  /** Everything below a context directory, in walk order, excluded paths left out (links are not followed). */
  async walk(dir: ContextPath): Promise<ContextPath[]> {
    const out: ContextPath[] = [];
    const visit = async (rel: string, abs: string) => {
      for (const name of (await readdir(abs)).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        const a = path.join(abs, name);
        const st = await lstat(a);
        const ex = this.excluded(r);
        if (!ex) out.push({ rel: r, abs: a, stats: st, ...(st.isSymbolicLink() ? { linkname: await readlink(a) } : {}) });
        if (st.isDirectory() && (!ex || this.ignore.hasExceptions)) await visit(r, a);
      }
    };
    await visit(dir.rel, dir.abs);
    return out;
  }

  /** Does the context hold this file? (for messages) */
  async has(rel: string): Promise<boolean> {
    return (await stat(path.join(this.dir, rel)).catch(() => undefined)) !== undefined;
  }
}
