// Paths inside a root directory (a build context, an unpacked image, a layer being extracted, an output dir),
// resolved the way a process chrooted there would resolve them: every component is looked at on its own, a symlink
// among them is followed with the root as `/` (an absolute target starts again at the root, `..` stops at it), so
// that `etc -> /etc`, `up -> ../../..` or a whiteout named `..` lead back into the root and never to the host.
// The answer names no symlink except, when asked not to follow it, the last component: a host path built from it
// can be opened, listed or removed without the kernel following anything the root's owner chose.
import { lstatSync, type Stats } from 'node:fs';
import { fsPath, readlinkName } from './names.js';
import path from 'node:path';

export class RootedPathError extends Error {
  override readonly name = 'RootedPathError';
}

/** `a/./b/../c` → `a/c`; leading `/` and any `..` that would climb above the root are dropped. */
export function cleanEntryName(name: string): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** Linux gives up after 40 symlinks in one lookup (ELOOP); so does this. */
const maxHops = 40;

export interface Resolved {
  /** the resolved path relative to the root, '/'-separated ('' for the root itself) */
  rel: string;
  /** the host path: `root` joined with `rel` */
  abs: string;
  /** lstat of the last component, when every component exists (and is visible) */
  stats?: Stats;
  /** a component that exists but is not a directory, where more components follow it */
  notDirectory?: string;
}

export interface ResolveOptions {
  /** follow the last component when it is a symlink (to read what it names); else it is what gets replaced */
  followLast?: boolean;
  /**
   * Whether a component that exists is part of the root's view (a context filtered by .dockerignore): one that is
   * not counts as missing.
   */
  visible?: (rel: string, stats: Stats) => boolean;
}

/** Resolves `name` inside `root` (see the top of this file); never throws for a missing path. */
export function resolveInside(root: string, name: string, options: ResolveOptions = {}): Resolved {
  const pending = name.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  const answer = (stats?: Stats, notDirectory?: string): Resolved => {
    const rel = [...done, ...pending.filter((p) => p !== '..')].join('/');
    return {
      rel,
      abs: rel ? path.join(root, rel) : root,
      ...(stats ? { stats } : {}),
      ...(notDirectory !== undefined ? { notDirectory } : {}),
    };
  };
  let hops = 0;
  let stats: Stats | undefined = lstatSync(fsPath(root), { throwIfNoEntry: false });
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      done.pop();
      stats = lstatSync(fsPath(done.length ? path.join(root, ...done) : root), { throwIfNoEntry: false });
      continue;
    }
    if (stats && !stats.isDirectory()) {
      // `file/x`: nothing can be below a file (ENOTDIR), whatever follows.
      pending.unshift(part);
      return answer(undefined, done.join('/'));
    }
    const rel = [...done, part].join('/');
    const st = stats ? lstatSync(fsPath(path.join(root, rel)), { throwIfNoEntry: false }) : undefined;
    if (!st || (options.visible && !options.visible(rel, st))) {
      // Missing: nothing below it can be a symlink, so the rest is taken as written (lexically).
      done.push(part);
      const rest = [...pending];
      pending.length = 0;
      for (const p of rest) {
        if (p === '..') done.pop();
        else done.push(p);
      }
      return answer();
    }
    if (st.isSymbolicLink() && (pending.length > 0 || options.followLast)) {
      if (++hops > maxHops)
        throw new RootedPathError(`too many levels of symbolic links resolving ${JSON.stringify(name)}`);
      const target = readlinkName(path.join(root, rel));
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
      stats = lstatSync(fsPath(done.length ? path.join(root, ...done) : root), { throwIfNoEntry: false });
      continue;
    }
    done.push(part);
    stats = st;
  }
  return answer(stats);
}

/**
 * The host path of `name` inside `root` for writing it: symlinks among its parents resolved inside the root, the
 * last component not followed (it is what gets replaced). Throws when a parent is a file.
 */
export function resolveInRoot(root: string, name: string): string {
  const r = resolveInside(root, cleanEntryName(name));
  if (r.notDirectory !== undefined) throw new RootedPathError(`/${r.notDirectory} is not a directory`);
  return r.abs;
}
