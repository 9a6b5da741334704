// COPY/ADD as layer entries. Destination rules as BuildKit's copy applies them (fsutil copy.Copy, one source after
// the other, each seeing what the ones before it made): relative destinations are under WORKDIR; a trailing '/'
// makes the destination a directory; a file goes into the destination when that is a directory by then, else
// it becomes the destination (so a wildcard with one match names the file, and with several the last one stays);
// a directory source copies its contents; missing parent directories are created (0755, or as --chmod says); a
// directory that exists in the image is left as it is (its entry is not repeated, so its mode and owner stay the
// base's).
import path from 'node:path';
import type { TarHeader } from '../layer/tar.js';
import { type LayerEntry, walkOrder } from '../layer/writer.js';
import type { ContextPath } from './context.js';
import type { FsIndex } from '../layer/fs-index.js';
import type { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import type { ChmodFn } from '../dockerfile/chmod.js';
import type { Owner } from './users.js';

export type { Owner };

export interface CopySource {
  path: ContextPath;
  /** what is below a directory source, in walk order */
  children?: ContextPath[];
  /**
   * its entries keep the owners they have: a stage's or image's files without --chown (COPY --from), and an
   * unpacked archive's without --chown (current BuildKit's unpack chowns to --chown; Docker 20.10's did not)
   */
  keepOwner?: boolean;
  /** --parents: the path kept under the destination (the part after a `/./` pivot) */
  parentsPath?: string;
  /**
   * an archive ADD unpacks: its entries land where their paths lead in the image, through the image's symlinks
   * (BuildKit unpacks into the destination with the image as its root: `var/run/x` over `var/run -> /run` writes
   * /run/x, and the link stays)
   */
  unpacked?: boolean;
  /** for an unpacked archive: the names its entries have (a directory it made only as a parent has no entry) */
  archived?: ReadonlySet<string>;
  /**
   * a unix socket among these paths becomes an empty file: the context's, as BuildKit's context transfer sends a
   * socket (testCopySocket); elsewhere a socket cannot be copied
   */
  socketsAsFiles?: boolean;
}

export interface CopyPlanOptions {
  dest: string;
  workdir: string;
  owner?: Owner;
  chmod?: ChmodFn;
  /** --parents: keep each source's path (below an optional `/./` pivot) under the destination */
  parents?: boolean;
  /** --exclude patterns, matched against paths relative to each source */
  exclude?: IgnoreMatcher;
  /** seconds: the mtime of directories the copy creates */
  created: number;
  fs: FsIndex;
}

export class CopyError extends Error {
  override readonly name = 'CopyError';
}

/** The absolute destination, and whether it names a directory to copy into. */
export function destination(dest: string, workdir: string): { abs: string; intoDir: boolean } {
  const intoDir = dest.endsWith('/') || dest.endsWith('/.') || dest === '.' || dest === '';
  const abs = path.posix.join('/', dest.startsWith('/') ? '' : workdir || '/', dest);
  return { abs: abs.length > 1 ? abs.replace(/\/+$/, '') : abs, intoDir };
}

export function planCopy(sources: readonly CopySource[], o: CopyPlanOptions): LayerEntry[] {
  const { abs: dest, intoDir: trailing } = destination(o.dest, o.workdir);
  const entries = new Map<string, LayerEntry>();
  const owner = o.owner ?? { uid: 0, gid: 0 };
  let keep = false;
  let socketsAsFiles = false;
  const header = (name: string, p: ContextPath, type: TarHeader['type']): TarHeader => ({
    name,
    type,
    mode: o.chmod ? o.chmod(p.stats.mode & 0o7777, type === 'directory') : p.stats.mode & 0o7777,
    uid: keep ? p.stats.uid : owner.uid,
    gid: keep ? p.stats.gid : owner.gid,
    size: type === 'file' ? p.stats.size : 0,
    mtime: Math.floor(p.stats.mtimeMs / 1000),
  });
  const put = (name: string, e: LayerEntry) => entries.set(name.replace(/^\/+/, ''), e);
  /** the names each file of several links is copied to, by its inode: hard links stay links within a copy */
  const linked = new Map<string, { name: string; abs: string }[]>();
  const noteLinks = (name: string, p: ContextPath) => {
    if (p.stats.nlink < 2) return;
    const key = `${p.stats.dev}:${p.stats.ino}`;
    linked.set(key, [...(linked.get(key) ?? []), { name: name.replace(/^\/+/, ''), abs: p.abs }]);
  };
  /** What is at an absolute path by now: what an earlier source of this copy put there, else the image's. */
  const kind = (p: string): 'directory' | 'other' | undefined => {
    const rel = o.fs.resolve(p, true);
    const planned = entries.get(rel);
    if (planned) return planned.header.type === 'directory' ? 'directory' : 'other';
    if (o.fs.isDirectory(rel)) return 'directory';
    return o.fs.lookup(rel) ? 'other' : undefined;
  };
  const ensureParents = (target: string) => {
    const parts = target.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (entries.has(dir)) {
        if (entries.get(dir)?.header.type !== 'directory')
          throw new CopyError(`cannot copy to /${target}: /${dir} is not a directory`);
        continue;
      }
      if (o.fs.isDirectory(dir)) {
        // Parents that exist are repeated with their own attributes, as BuildKit's layers do: a layer unpacked on
        // its own (an overlay lower dir) must not bring a default 0755 root directory over the base's.
        const existing = o.fs.lookup(dir);
        if (existing && existing.header.type === 'directory')
          put(dir, { header: { ...existing.header, name: dir, size: 0 } });
        continue;
      }
      if (o.fs.lookup(dir) && !o.fs.isDirectory(dir))
        throw new CopyError(`cannot copy to /${target}: /${dir} is not a directory in the image`);
      // --chmod applies to the parents the copy makes too (BuildKit's testCopyChmod: /parent/sub is 0770).
      put(dir, {
        header: {
          name: dir,
          type: 'directory',
          mode: o.chmod ? o.chmod(0o755, true) : 0o755,
          uid: owner.uid,
          gid: owner.gid,
          size: 0,
          mtime: o.created,
        },
      });
    }
  };
  const addOne = (p: ContextPath, target: string, ownTime = false) => {
    const rel = target.replace(/^\/+/, '');
    if (p.stats.isDirectory()) {
      if (rel === '' || kind(target) === 'directory') return;
      // The directory a directory source (or an archive) is copied into is made like any missing destination
      // (fsutil's MkdirAll before the copy): 0755, owned by --chown or root, whatever the source directory is. A
      // directory source gives it its modification time (fsutil's copyDirectory copies the source's times onto a
      // directory it creates: BuildKit 0.13 gives `COPY src/ ./src/`'s ./src the time of src); an archive's, or the
      // context root's, is the copy's.
      put(rel, {
        header: {
          ...header(rel, p, 'directory'),
          mode: o.chmod ? o.chmod(0o755, true) : 0o755,
          uid: owner.uid,
          gid: owner.gid,
          mtime: ownTime ? Math.floor(p.stats.mtimeMs / 1000) : o.created,
        },
      });
    } else if (p.stats.isSymbolicLink()) {
      // A link a --parents pattern matched is copied as the link it is (BuildKit copies the pivot's contents).
      put(rel, { header: { ...header(rel, p, 'symlink'), linkname: p.linkname ?? '' } });
    } else if (p.stats.isFile()) {
      put(rel, { header: header(rel, p, 'file'), content: { path: p.abs } });
      noteLinks(rel, p);
    } else if (p.stats.isSocket() && socketsAsFiles) {
      put(rel, { header: { ...header(rel, p, 'file'), size: 0 }, content: { bytes: Buffer.alloc(0) } });
    } else {
      throw new CopyError(
        `${p.rel}: only files, directories and symlinks can be copied (this is a ${p.stats.isFIFO() ? 'FIFO' : p.stats.isSocket() ? 'socket' : 'device'})`,
      );
    }
  };
  // --parents copies from its pivot with include patterns, a directory copy: the destination is made even when
  // nothing matches (BuildKit's testCopyParentsMissingDirectory: /out, and nothing below it).
  if (o.parents) {
    const d = `/${o.fs.resolve(dest, true)}`;
    if (d !== '/' && kind(d) === undefined) {
      ensureParents(d.slice(1));
      put(d, {
        header: {
          name: d.slice(1),
          type: 'directory',
          mode: o.chmod ? o.chmod(0o755, true) : 0o755,
          uid: owner.uid,
          gid: owner.gid,
          size: 0,
          mtime: o.created,
        },
      });
    }
  }
  for (const s of sources) {
    keep = s.keepOwner === true;
    socketsAsFiles = s.socketsAsFiles === true;
    const isDir = s.path.stats.isDirectory();
    let target: string;
    if (o.parents) target = path.posix.join(dest, s.parentsPath ?? s.path.rel);
    else if (isDir) target = dest;
    else if (trailing || kind(dest) === 'directory')
      target = path.posix.join(dest, path.posix.basename(s.path.rel || s.path.abs));
    else target = dest;
    if (!isDir && o.exclude?.excludes(path.posix.basename(s.path.rel))) continue;
    // The destination is reached the way BuildKit's copy reaches it: through symlinks of the image, the last one
    // included (a file copied onto a symlink writes the file it points at; a directory copied onto a link to a
    // directory fills that directory).
    target = `/${o.fs.resolve(target, true)}`;
    if (isDir && kind(target) === 'other') throw new CopyError(`cannot copy to non-directory: ${target}`);
    if (!isDir && kind(target) === 'directory')
      throw new CopyError(`cannot replace the directory ${target} with a file`);
    ensureParents(target === '/' ? '' : target);
    // (the context's root itself is received anew by BuildKit, its time the build's: hoist's is the copy's)
    addOne(s.path, target, !s.unpacked && !s.archived && s.path.rel !== '');
    for (const child of s.children ?? []) {
      const relBelow = s.path.rel ? child.rel.slice(s.path.rel.length + 1) : child.rel;
      if (o.exclude?.excludes(relBelow)) continue;
      let t = path.posix.join(target, relBelow).replace(/^\/+/, '');
      // An unpacked entry's parents resolved in the image (what this copy put at a parent stands as it is).
      const parent = path.posix.dirname(t);
      if (s.unpacked && parent !== '.' && !entries.has(parent))
        t = path.posix.join(o.fs.resolve(`/${parent}`, true), path.posix.basename(t)).replace(/^\/+/, '');
      ensureParents(t);
      if (child.stats.isSymbolicLink()) {
        put(t, { header: { ...header(t, child, 'symlink'), linkname: child.linkname ?? '' } });
      } else if (child.stats.isDirectory()) {
        // A parent the archive does not name is made only where the image lacks it (ensureParents), as tar -x does.
        if (s.archived && !s.archived.has(relBelow)) continue;
        put(t, { header: header(t, child, 'directory') });
      } else addOne(child, t);
    }
  }
  // Names of one file copied together are hard links to the first in the layer's order (BuildKit's copy keeps the
  // links of the context, of a stage and of an unpacked archive, wherever the image's symlinks led each name).
  for (const copies of linked.values()) {
    // (a name a later source wrote another file to is not this file's any more)
    const still = [
      ...new Set(
        copies
          .filter((c) => {
            const e = entries.get(c.name);
            return (
              e?.header.type === 'file' && e.content !== undefined && 'path' in e.content && e.content.path === c.abs
            );
          })
          .map((c) => c.name),
      ),
    ];
    if (still.length < 2) continue;
    still.sort(walkOrder);
    for (const n of still.slice(1)) {
      const e = entries.get(n) as LayerEntry;
      entries.set(n, { header: { ...e.header, type: 'hardlink', size: 0, linkname: still[0] } });
    }
  }
  return [...entries.values()];
}
