// The build context: a directory, seen through .dockerignore. COPY/ADD sources are resolved here as BuildKit
// resolves them: paths are relative to the context root and may not leave it; wildcards follow Go's
// filepath.Match (a `*` never crosses a `/`); excluded paths do not exist; a source that is itself a symlink is
// followed (inside the context), links below a copied directory are copied as links.
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cleanPath, DockerignoreError, dockerignoreCandidates, IgnoreMatcher } from '../dockerfile/dockerignore.js';
import type { Stats } from 'node:fs';
import { fsPath, readdirNames, readlinkName } from '../layer/names.js';
import { resolveInside, RootedPathError } from '../layer/rooted.js';
import { GlobError, globToRegExp, hasWildcard } from '../dockerfile/glob.js';

export class ContextError extends Error {
  override readonly name = 'ContextError';
}

/** A COPY source component as Go's filepath.Match reads it. */
function matchPattern(pattern: string): RegExp {
  try {
    return globToRegExp(pattern);
  } catch (e) {
    if (e instanceof GlobError) throw new ContextError(e.message);
    throw e;
  }
}

export interface ContextPath {
  /** slash-separated, relative to the context root ('' for the root itself), as the source named it */
  rel: string;
  /** where it is inside the context, symlinks resolved (what .dockerignore is matched against) */
  real: string;
  /** the host path of `real` */
  abs: string;
  /** lstat, or stat for a followed top-level symlink */
  stats: Stats;
  /** a symlink's target, as stored */
  linkname?: string;
}

/**
 * A directory seen as a root: the build context through .dockerignore, or a stage's or image's filesystem (COPY
 * --from, bind mounts). Every path is resolved inside it component by component (src/layer/rooted.ts): a symlink
 * anywhere in a source path leads to the root's own files, never to the host's, as BuildKit resolves sources with
 * the context (or the stage) as `/`.
 */
export class BuildContext {
  /** excluded directories and whether something below them is brought back by a `!` line */
  private readonly holds = new Map<string, boolean>();

  private constructor(
    readonly dir: string,
    readonly ignore: IgnoreMatcher,
    /** the ignore file that was read, for messages */
    readonly ignoreFile: string | undefined,
    /** a stage's or image's filesystem: what its missing sources are named after in errors */
    readonly ref?: string,
  ) {}

  /** The context directory with `<Dockerfile>.dockerignore` or `.dockerignore` applied (the first that exists). */
  static open(dir: string, dockerfilePath?: string): BuildContext {
    const abs = path.resolve(dir);
    const candidates = dockerfilePath
      ? dockerignoreCandidates(path.resolve(dockerfilePath), abs)
      : [path.join(abs, '.dockerignore')];
    for (const f of candidates) {
      const text = readInside(abs, f);
      if (text === undefined) continue;
      try {
        return new BuildContext(abs, IgnoreMatcher.fromText(text), f);
      } catch (e) {
        if (!(e instanceof DockerignoreError)) throw e;
        const name = path.relative(abs, f).startsWith('..') ? f : path.relative(abs, f);
        throw new ContextError(
          `${name}:${e.line}: ${e.message}; fix or remove that line (patterns are read as Go's filepath.Match reads them, with ** for any directories)`,
        );
      }
    }
    return new BuildContext(abs, new IgnoreMatcher([]), undefined);
  }

  /** A directory without any ignore file (another stage's or image's filesystem, for COPY --from: `ref` names it). */
  static plain(dir: string, ref?: string): BuildContext {
    return new BuildContext(path.resolve(dir), new IgnoreMatcher([]), undefined, ref);
  }

  excluded(rel: string): boolean {
    return rel !== '' && this.ignore.excludes(rel);
  }

  /**
   * Whether an existing path is in the context as BuildKit receives it: not excluded, or an excluded directory
   * that holds something a `!` line brings back (it comes as the parent of what is re-included).
   */
  private readonly visible = (real: string, st: Stats): boolean => {
    if (!this.excluded(real)) return true;
    return st.isDirectory() && this.ignore.hasExceptions && this.holdsIncluded(real);
  };

  private holdsIncluded(real: string): boolean {
    let v = this.holds.get(real);
    if (v === undefined) {
      v = false;
      if (!this.ignore.mayIncludeBelow(real)) {
        this.holds.set(real, v);
        return v;
      }
      for (const name of readdirNames(path.join(this.dir, real))) {
        const r = `${real}/${name}`;
        if (!this.excluded(r) || (lstatSync(fsPath(path.join(this.dir, r))).isDirectory() && this.holdsIncluded(r))) {
          v = true;
          break;
        }
      }
      this.holds.set(real, v);
    }
    return v;
  }

  /** The path inside the root, symlinks resolved there (the last one too when `follow`); undefined when absent. */
  private lookup(rel: string, follow: boolean): ContextPath | undefined {
    let r: ReturnType<typeof resolveInside>;
    try {
      r = resolveInside(this.dir, rel, { followLast: follow, visible: this.visible });
    } catch (e) {
      if (e instanceof RootedPathError) throw new ContextError(`${rel}: ${e.message}`);
      throw e;
    }
    if (!r.stats) return undefined;
    return {
      rel,
      real: r.rel,
      abs: r.abs,
      stats: r.stats,
      ...(r.stats.isSymbolicLink() ? { linkname: readlinkName(r.abs) } : {}),
    };
  }

  /** A source as written in COPY/ADD → the context paths it names (several for a wildcard, maybe none). */
  async resolve(source: string): Promise<ContextPath[]> {
    const cleaned = cleanPath(source.replace(/^\/+/, '') || '.');
    if (cleaned === '..' || cleaned.startsWith('../')) {
      throw new ContextError(
        `${source}: forbidden path outside the build context; COPY sources are relative to the context ${this.dir}`,
      );
    }
    const rel = cleaned === '.' ? '' : cleaned;
    if (!hasWildcard(rel)) {
      const found = this.lookup(rel, true);
      // A stage's or image's file in BuildKit's words (its cache key is where a missing source shows).
      if (!found && this.ref !== undefined)
        throw new ContextError(
          `failed to calculate checksum of ref ${this.ref}: ${JSON.stringify(`/${rel}`)}: not found`,
        );
      if (!found) throw new ContextError(`${source}: not found in the build context${this.excludedNote(rel)}`);
      return [found];
    }
    const parts = rel.split('/');
    let current: string[] = [''];
    // From the first component with a wildcard on, every component is a pattern (fsutil matches that whole rest
    // with filepath.Match, so an escape there is read as one).
    let patterns = false;
    for (const part of parts) {
      const next: string[] = [];
      patterns ||= hasWildcard(part);
      const re = patterns ? matchPattern(part) : undefined;
      for (const dir of current) {
        if (!re) {
          next.push(dir ? `${dir}/${part}` : part);
          continue;
        }
        // The directory is listed where it is inside the root; what it lists must be in the context.
        const d = this.lookup(dir, true);
        if (!d?.stats.isDirectory()) continue;
        for (const n of readdirNames(d.abs).sort()) {
          if (!re.test(n)) continue;
          const st = lstatSync(fsPath(path.join(d.abs, n)), { throwIfNoEntry: false });
          if (st && this.visible(d.real ? `${d.real}/${n}` : n, st)) next.push(dir ? `${dir}/${n}` : n);
        }
      }
      current = next;
    }
    const out: ContextPath[] = [];
    for (const p of current) {
      const found = this.lookup(p, true);
      if (found) out.push(found);
    }
    // A wildcard that matches nothing copies nothing, and the build goes on (BuildKit's AllowEmptyWildcard).
    return out;
  }

  private excludedNote(rel: string): string {
    return rel && this.excluded(rel) && this.ignoreFile
      ? ` (it is excluded by ${path.relative(this.dir, this.ignoreFile) || this.ignoreFile})`
      : '';
  }

  /** Everything below a context directory, in walk order, what the context lacks left out (links are not followed). */
  async walk(dir: ContextPath): Promise<ContextPath[]> {
    const out: ContextPath[] = [];
    const visit = (rel: string, real: string, abs: string) => {
      for (const name of readdirNames(abs).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        const re = real ? `${real}/${name}` : name;
        const a = path.join(abs, name);
        const st = lstatSync(fsPath(a));
        if (!this.visible(re, st)) continue;
        out.push({
          rel: r,
          real: re,
          abs: a,
          stats: st,
          ...(st.isSymbolicLink() ? { linkname: readlinkName(a) } : {}),
        });
        if (st.isDirectory()) visit(r, re, a);
      }
    };
    visit(dir.rel, dir.real, dir.abs);
    return out;
  }

  private readonly hiddenBelow = new Map<string, string[]>();

  /**
   * What is below a context directory on disk but not in the context (.dockerignore), relative to it: the topmost
   * such entries (an excluded directory that holds something re-included is walked into instead). A bind mount of
   * the context shows the directory with these whited out, as BuildKit binds the context it was sent.
   */
  hidden(dir: ContextPath): string[] {
    if (this.ignore.patterns.length === 0) return [];
    let out = this.hiddenBelow.get(dir.real);
    if (out) return out;
    out = [];
    const found = out;
    const visit = (rel: string, real: string, abs: string) => {
      for (const name of readdirNames(abs).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        const re = real ? `${real}/${name}` : name;
        const st = lstatSync(fsPath(path.join(abs, name)));
        if (!this.visible(re, st)) found.push(r);
        else if (st.isDirectory()) visit(r, re, path.join(abs, name));
      }
    };
    if (dir.stats.isDirectory()) visit('', dir.real, dir.abs);
    this.hiddenBelow.set(dir.real, out);
    return out;
  }

  /** A path as a mount source names it (no wildcards; the last symlink followed), or undefined when absent. */
  find(source: string): ContextPath | undefined {
    const cleaned = cleanPath(source.replace(/^\/+/, '') || '.');
    return this.lookup(cleaned === '.' ? '' : cleaned.replace(/^(\.\.\/)+/, '').replace(/^\.\.$/, ''), true);
  }
}

/**
 * A file of the context (an ignore file, a Dockerfile) read where it is inside the context: a symlink there does
 * not lead to a host file. A path outside the context is the user's own and read as it is.
 */
export function readInside(contextDir: string, file: string): string | undefined {
  const abs = path.resolve(file);
  const rel = path.relative(contextDir, abs);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return existsSync(abs) ? readFileSync(abs, 'utf8') : undefined;
  const r = resolveInside(contextDir, rel.split(path.sep).join('/'), { followLast: true });
  return r.stats?.isFile() ? readFileSync(r.abs, 'utf8') : undefined;
}
