// Paths inside a directory that something else may be changing while we look (a cache mount another step or build
// writes into): resolved by file descriptors, not by path strings. Each component is opened on its own with
// O_PATH|O_NOFOLLOW through the magic link of its parent's descriptor (/proc/self/fd/N/name), so the kernel follows
// nothing the directory's writers chose, and what was reached stays what was reached: a name swapped for a symlink
// after we looked cannot redirect an open, a mount or a read (BuildKit's CVE-2024-23651 is that race). A symlink
// among the components is resolved inside the root, as rooted.ts resolves by path.
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  rmdirSync,
  type Stats,
  unlinkSync,
} from 'node:fs';
import path from 'node:path';
import { RootedPathError } from './rooted.js';

/** O_PATH (Linux): a descriptor that names an inode without opening it for reading (no FIFO blocks, no access check). */
export const O_PATH = 0o10000000;
const pathFlags = O_PATH | constants.O_NOFOLLOW;
const maxHops = 40;

/** The magic-link path of `name` in the directory open as `dirFd`: resolved by the kernel from the descriptor. */
export const fdPath = (fd: number, name?: string): string =>
  name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;

export interface Pinned {
  /** an O_PATH descriptor of what was reached: close it when done */
  fd: number;
  /** where it was reached, relative to the root, '/'-separated ('' for the root) */
  rel: string;
  stats: Stats;
}

export interface PinOptions {
  /** make each missing directory on the way (with this mode), as `mkdir -p` would, inside the root */
  mkdir?: number;
  /** a symlink anywhere on the way is an error (ELOOP), not followed inside the root */
  noSymlinks?: boolean;
}

/** Opens the root itself: a real directory, not followed when it is a symlink. */
export function openRoot(root: string): number {
  const fd = openSync(root, pathFlags | constants.O_DIRECTORY);
  return fd;
}

/**
 * Opens `name` inside the directory `root` (every component looked up under its parent's descriptor, symlinks
 * resolved with the root as `/`, `..` stopping at it); the last component is followed too when it is a symlink.
 * Throws ENOENT when something is missing (unless `mkdir` makes it), ENOTDIR when a component is not a directory.
 */
export function openInside(root: string, name: string, options: PinOptions = {}): Pinned {
  const rootFd = openRoot(root);
  // Each directory reached, root first; only the top one may be left open in the answer.
  const stack: { fd: number; name: string }[] = [{ fd: rootFd, name: '' }];
  const closeAll = (keep?: number) => {
    for (const s of stack) if (s.fd !== keep) closeSync(s.fd);
  };
  const pending = name.split('/').filter((p) => p !== '' && p !== '.');
  let hops = 0;
  try {
    while (pending.length > 0) {
      const part = pending.shift() as string;
      const top = stack[stack.length - 1];
      if (part === '..') {
        if (stack.length > 1) closeSync((stack.pop() as { fd: number }).fd);
        continue;
      }
      let fd: number;
      try {
        fd = openSync(fdPath(top.fd, part), pathFlags);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || options.mkdir === undefined) throw e;
        try {
          mkdirSync(fdPath(top.fd, part), options.mkdir);
        } catch (m) {
          if ((m as NodeJS.ErrnoException).code !== 'EEXIST') throw m;
        }
        pending.unshift(part); // looked at again: something else may have been made there meanwhile
        continue;
      }
      const st = fstatSync(fd);
      if (st.isSymbolicLink()) {
        closeSync(fd);
        if (options.noSymlinks)
          throw Object.assign(
            new Error(`/${[...stack.slice(1).map((s) => s.name), part].join('/')} is a symbolic link`),
            { code: 'ELOOP' },
          );
        if (++hops > maxHops)
          throw new RootedPathError(`too many levels of symbolic links resolving ${JSON.stringify(name)}`);
        let target: string;
        try {
          target = readlinkSync(fdPath(top.fd, part));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EINVAL' && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          pending.unshift(part); // no longer a symlink: looked at again
          continue;
        }
        if (target.startsWith('/')) while (stack.length > 1) closeSync((stack.pop() as { fd: number }).fd);
        pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
        continue;
      }
      if (!st.isDirectory() && pending.some((p) => p !== '..')) {
        closeSync(fd);
        throw Object.assign(
          new Error(`/${[...stack.slice(1).map((s) => s.name), part].join('/')} is not a directory`),
          { code: 'ENOTDIR' },
        );
      }
      stack.push({ fd, name: part });
    }
    const last = stack[stack.length - 1];
    closeAll(last.fd);
    return {
      fd: last.fd,
      rel: stack
        .slice(1)
        .map((s) => s.name)
        .join('/'),
      stats: fstatSync(last.fd),
    };
  } catch (e) {
    closeAll();
    throw e;
  }
}

export interface PinnedEntry {
  /** relative to the walked directory, '/'-separated */
  rel: string;
  /** the entry's own metadata (lstat: a symlink is not followed) */
  stats: Stats;
  /** a path that reaches this very entry while the walk holds its parent open (for readlink or open) */
  path: string;
}

/**
 * Calls `visit` for everything under the directory `root` (itself excluded), a directory before its contents,
 * names sorted. Each directory is held open while its entries are visited, so renames and symlinks swapped in
 * above it cannot send the walk (or a read of `path`) outside: an entry that changes kind under the walk is
 * taken as it is found when opened. `visit` answering false skips a directory's contents.
 */
export async function walkPinned(root: string, visit: (e: PinnedEntry) => Promise<unknown>): Promise<void> {
  const walk = async (dirFd: number, rel: string): Promise<void> => {
    for (const name of readdirSync(fdPath(dirFd)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      let fd: number;
      try {
        fd = openSync(fdPath(dirFd, name), pathFlags);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
        throw e;
      }
      try {
        const stats = fstatSync(fd);
        const more = await visit({ rel: r, stats, path: stats.isSymbolicLink() ? fdPath(dirFd, name) : fdPath(fd) });
        if (stats.isDirectory() && more !== false) await walk(fd, r);
      } finally {
        closeSync(fd);
      }
    }
  };
  const fd = openRoot(root);
  try {
    await walk(fd, '');
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a regular file reached by `walkPinned` (its `path`) for reading: never blocks on a FIFO, never follows a
 * symlink, and answers undefined when what is there is not the entry the walk saw (it was replaced meanwhile).
 */
export function openPinnedFile(entry: PinnedEntry): number | undefined {
  let fd: number;
  try {
    // The walk's descriptor reopened for reading (its magic link is followed: it names the entry itself).
    fd = openSync(entry.path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.ino !== entry.stats.ino || st.dev !== entry.stats.dev) {
    closeSync(fd);
    return undefined;
  }
  return fd;
}

/**
 * Opens for reading the regular file `rel` inside `root`, resolved by descriptors, when it is still the inode a walk
 * saw (`expected`); throws when something else is there now.
 */
export function openFileInside(root: string, rel: string, expected: Stats): number {
  const pinned = openInside(root, rel);
  try {
    const fd = openPinnedFile({ rel, stats: expected, path: fdPath(pinned.fd) });
    if (fd === undefined) throw new Error(`/${rel} changed while it was being read`);
    return fd;
  } finally {
    closeSync(pinned.fd);
  }
}

/**
 * A regular file `rel` inside `root`, opened for reading with no symlink anywhere on the way and without blocking
 * (a FIFO or a device there is an error, never a read that waits forever).
 */
export function openRegularFile(root: string, rel: string): { fd: number; size: number } {
  const pinned = openInside(root, rel, { noSymlinks: true });
  try {
    if (!pinned.stats.isFile())
      throw Object.assign(new Error(`/${pinned.rel} is not a regular file`), { code: 'EFTYPE' });
    const fd = openPinnedFile({ rel, stats: pinned.stats, path: fdPath(pinned.fd) });
    if (fd === undefined) throw new Error(`/${rel} changed while it was being opened`);
    return { fd, size: pinned.stats.size };
  } finally {
    closeSync(pinned.fd);
  }
}

/** The bytes of a regular file `rel` inside `root` (see openRegularFile), at most `max` of them. */
export function readRegularFile(root: string, rel: string, max: number): Buffer {
  const { fd, size } = openRegularFile(root, rel);
  try {
    if (size > max)
      throw Object.assign(new Error(`/${rel} is ${size} bytes, more than the ${max} expected`), { code: 'EFBIG' });
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** A descriptor's magic-link path for another process (a `cp` run on it): /proc/self would be that process's own. */
export const fdPathFor = (fd: number, name?: string): string =>
  name === undefined ? `/proc/${process.pid}/fd/${fd}` : `/proc/${process.pid}/fd/${fd}/${name}`;

/** The entry `name` of the directory open as `dirFd`, not followed (undefined when nothing is there). */
export function statAt(dirFd: number, name: string): Stats | undefined {
  try {
    return lstatSync(fdPath(dirFd, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Opens the entry `name` of the directory open as `dirFd` as an O_PATH descriptor, never following it. */
export function openAt(dirFd: number, name: string): number {
  return openSync(fdPath(dirFd, name), pathFlags);
}

const quiet = (e: unknown): boolean => ['ENOENT', 'ENOTDIR', 'ELOOP'].includes((e as NodeJS.ErrnoException).code ?? '');

/**
 * The directory that holds `rel` inside `root` (its own directory reached with no symlink on the way), open as an
 * O_PATH descriptor, and `rel`'s last name; undefined when a directory on the way is missing, a symlink or not a
 * directory. What is then done to `name` through `fdPath(fd, name)` is done in that directory, wherever its path
 * leads by then.
 */
export function pinParent(root: string, rel: string): { fd: number; name: string } | undefined {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  const name = parts.pop();
  if (name === undefined || name === '..' || parts.includes('..'))
    throw new RootedPathError(`${JSON.stringify(rel)} names no entry inside its root`);
  let pinned: Pinned;
  try {
    pinned = openInside(root, parts.join('/'), { noSymlinks: true });
  } catch (e) {
    if (quiet(e)) return undefined;
    throw e;
  }
  if (!pinned.stats.isDirectory()) {
    closeSync(pinned.fd);
    return undefined;
  }
  return { fd: pinned.fd, name };
}

/** `rel` inside `root` itself, open as an O_PATH descriptor with no symlink anywhere (the last name included), or undefined. */
export function pinExact(root: string, rel: string): Pinned | undefined {
  try {
    return openInside(root, rel, { noSymlinks: true });
  } catch (e) {
    if (quiet(e)) return undefined;
    throw e;
  }
}

/** Removes what the directory open as `fd` holds, each directory in it emptied through a descriptor of its own. */
export function emptyAt(fd: number): void {
  for (const name of readdirSync(fdPath(fd))) removeAt(fd, name);
}

/**
 * Removes the entry `name` of the directory open as `dirFd` with all it holds, never following a symlink: a
 * directory is opened (O_NOFOLLOW) and emptied through its descriptor, so a name swapped for a link meanwhile
 * leads nowhere but to that link. Nothing there is no error.
 */
export function removeAt(dirFd: number, name: string, again = 3): void {
  if (again < 0) throw Object.assign(new Error(`${name} keeps changing while it is being removed`), { code: 'EBUSY' });
  const st = statAt(dirFd, name);
  if (!st) return;
  if (!st.isDirectory()) {
    try {
      unlinkSync(fdPath(dirFd, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EISDIR') {
        removeAt(dirFd, name, again - 1); // a directory now: again
        return;
      }
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return;
  }
  let fd: number;
  try {
    fd = openSync(fdPath(dirFd, name), pathFlags | constants.O_DIRECTORY);
  } catch (e) {
    if (quiet(e)) {
      removeAt(dirFd, name, again - 1); // gone, or no longer a directory: looked at again
      return;
    }
    throw e;
  }
  try {
    emptyAt(fd);
  } finally {
    closeSync(fd);
  }
  try {
    rmdirSync(fdPath(dirFd, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR' || (e as NodeJS.ErrnoException).code === 'ENOTEMPTY') {
      removeAt(dirFd, name, again - 1);
      return;
    }
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Removes `rel` inside `root` with all it holds, by descriptors; nothing when the way there has a symlink on it. */
export function removeInside(root: string, rel: string): void {
  const at = pinParent(root, rel);
  if (!at) return;
  try {
    removeAt(at.fd, at.name);
  } finally {
    closeSync(at.fd);
  }
}

/** Removes `dir` and all it holds by descriptors (see removeAt); `dir` itself is reached by its path, as ours. */
export function removeTree(dir: string): void {
  const parent = path.dirname(path.resolve(dir));
  let fd: number;
  try {
    fd = openSync(parent, pathFlags | constants.O_DIRECTORY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    removeAt(fd, path.basename(path.resolve(dir)));
  } finally {
    closeSync(fd);
  }
}
