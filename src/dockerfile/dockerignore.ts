// .dockerignore with Docker's semantics (moby/patternmatcher): Go filepath.Match patterns (glob.ts) on
// slash-separated paths relative to the context, `**` for any number of directories, `!` exceptions where the last
// matching line wins, `#` comment lines, patterns cleaned like Go's filepath.Clean, and a path excluded when it or
// any of its parent directories matches.

import { GlobError, type GlobOptions, globToRegExp } from './glob.js';

export interface IgnorePattern {
  /** the cleaned pattern, without `!` */
  pattern: string;
  exclusion: boolean;
  /** 1-based line in the ignore file */
  line: number;
  regexp: RegExp;
  /** each component's own pattern, compiled when first needed (mayIncludeBelow) */
  parts: RegExp[];
}

export class DockerignoreError extends Error {
  override readonly name = 'DockerignoreError';
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

/** Go's path.Clean for slash-separated paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
}

/** A pattern as moby/patternmatcher reads it: Go's filepath.Match plus `**`. */
function compile(pattern: string, line: number, options: GlobOptions = { doubleStar: true }): RegExp {
  try {
    return globToRegExp(pattern, options);
  } catch (e) {
    if (e instanceof GlobError) throw new DockerignoreError(`syntax error in pattern: ${pattern}`, line);
    throw e;
  }
}

/** Reads the text of a .dockerignore file into patterns. Throws DockerignoreError for a malformed line. */
export function parseDockerignore(text: string): IgnorePattern[] {
  const patterns: IgnorePattern[] = [];
  text
    .replace(/^\ufeff/, '')
    .split('\n')
    .forEach((raw, idx) => {
      const line = idx + 1;
      if (raw.startsWith('#')) return;
      let p = raw.trim();
      if (p === '') return;
      const exclusion = p.startsWith('!');
      if (exclusion) {
        p = p.slice(1).trim();
        if (p === '') throw new DockerignoreError('illegal exclusion pattern: "!"', line);
      }
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
      patterns.push({ pattern: p, exclusion, line, regexp: compile(p, line), parts: [] });
    });
  return patterns;
}

export class IgnoreMatcher {
  readonly patterns: readonly IgnorePattern[];
  /** some `!` line could bring back a path inside an excluded directory, so excluded directories must be walked */
  readonly hasExceptions: boolean;

  constructor(patterns: readonly IgnorePattern[]) {
    this.patterns = patterns;
    this.hasExceptions = patterns.some((p) => p.exclusion);
  }

  static fromText(text: string): IgnoreMatcher {
    return new IgnoreMatcher(parseDockerignore(text));
  }

  /**
   * Whether a `!` line could bring back something below the directory `dir`: one whose leading components match
   * the directory's (or reach a `**`) and go on below it. A directory no exception can reach need not be walked
   * to learn that it stays out (fsutil looks only where an exception points, too).
   */
  mayIncludeBelow(dir: string): boolean {
    const parts = cleanPath(dir.replace(/^\/+/, '')).split('/');
    return this.patterns.some((p) => {
      if (!p.exclusion) return false;
      const pp = p.pattern.split('/');
      for (let i = 0; i < parts.length; i++) {
        if (i >= pp.length) return false;
        if (pp[i].startsWith('**')) return true;
        if (!(p.parts[i] ??= compile(pp[i], p.line, {})).test(parts[i])) return false;
      }
      return pp.length > parts.length;
    });
  }

  /** Whether a context path (slash-separated, relative) is excluded: it or a parent matches, last line wins. */
  excludes(path: string): boolean {
    const file = cleanPath(path.replace(/^\/+/, ''));
    const slash = file.lastIndexOf('/');
    const parentDirs = slash < 0 ? [] : file.slice(0, slash).split('/');
    let matched = false;
    for (const p of this.patterns) {
      // an inclusion cannot change an already excluded path, nor an exception a path not excluded yet
      if (p.exclusion !== matched) continue;
      let match = p.regexp.test(file);
      for (let i = 0; !match && i < parentDirs.length; i++) {
        match = p.regexp.test(parentDirs.slice(0, i + 1).join('/'));
      }
      if (match) matched = !p.exclusion;
    }
    return matched;
  }
}

/**
 * The ignore files to look for, most specific first: `<Dockerfile>.dockerignore` beside the Dockerfile, then the
 * context's `.dockerignore`. Paths are joined with `/`; the caller reads the first that exists.
 */
export function dockerignoreCandidates(dockerfilePath: string, contextDir: string): string[] {
  const trimmed = contextDir.replace(/\/+$/, '');
  return [`${dockerfilePath}.dockerignore`, `${trimmed === '' ? '.' : trimmed}/.dockerignore`];
}
