// COPY/ADD as layer entries. Destination rules as in BuildKit: relative destinations are under WORKDIR; a
// trailing '/' (or several sources, or an existing directory) means "into this directory"; a directory source
// copies its contents; missing parent directories are created (0755); a directory that exists in the image is
// left as it is (its entry is not repeated, so its mode and owner stay the base's).
import path from 'node:path';
import type { TarHeader } from '../layer/tar.js';
import type { LayerEntry } from '../layer/writer.js';
import type { ContextPath } from './context.js';
import type { FsIndex } from './fs-index.js';
import type { IgnoreMatcher } from '../dockerfile/dockerignore.js';
import type { ChmodFn } from './chmod.js';
import type { Owner } from './users.js';

export type { Owner };

export interface CopySource {
  path: ContextPath;
  /** what is below a directory source, in walk order */
  children?: ContextPath[];
  /** from a wildcard: always copied into the destination directory */
  wildcard: boolean;
  /** an unpacked archive: its entries keep the archive's owners, --chown or not (as BuildKit unpacks) */
  keepOwner?: boolean;
  /** --parents: the path kept under the destination (the part after a `/./` pivot) */
  parentsPath?: string;
}

export interface CopyPlanOptions {
  dest: string;
  workdir: string;
  /** the number of source arguments as written */
  sourceArgs: number;
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
  if (o.sourceArgs > 1 && !trailing) {
    throw new CopyError(`When using COPY with more than one source file, the destination must be a directory and end with a / (got ${o.dest})`);
  }
  const entries = new Map<string, LayerEntry>();
  const owner = o.owner ?? { uid: 0, gid: 0 };
  let keep = false;
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
  const ensureParents = (target: string) => {
    const parts = target.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (entries.has(dir)) continue;
      if (o.fs.isDirectory(dir)) {
        // Parents that exist are repeated with their own attributes, as BuildKit's layers do: a layer unpacked on
        // its own (an overlay lower dir) must not bring a default 0755 root directory over the base's.
        const existing = o.fs.lookup(dir);
        if (existing && existing.header.type === 'directory') put(dir, { header: { ...existing.header, name: dir, size: 0 } });
        continue;
      }
      if (o.fs.lookup(dir) && !o.fs.isDirectory(dir)) throw new CopyError(`cannot copy to /${target}: /${dir} is not a directory in the image`);
      put(dir, { header: { name: dir, type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid, size: 0, mtime: o.created } });
    }
  };
  const addOne = (p: ContextPath, target: string) => {
    const rel = target.replace(/^\/+/, '');
    if (p.stats.isDirectory()) {
      if (rel === '' || o.fs.isDirectory(rel)) return;
      // The directory an archive is unpacked into is made like any missing destination: 0755.
      const made = keep ? { mode: o.chmod ? o.chmod(0o755, true) : 0o755, uid: owner.uid, gid: owner.gid } : {};
      put(rel, { header: { ...header(rel, p, 'directory'), ...made, mtime: o.created } });
    } else if (p.stats.isSymbolicLink()) {
      throw new CopyError(`internal: unresolved symlink ${p.rel}`);
    } else if (p.stats.isFile()) {
      put(rel, { header: header(rel, p, 'file'), content: { path: p.abs } });
    } else {
      throw new CopyError(`${p.rel}: only files, directories and symlinks can be copied (this is a ${p.stats.isFIFO() ? 'FIFO' : p.stats.isSocket() ? 'socket' : 'device'})`);
    }
  };
  const multiple = sources.length > 1 || sources.some((s) => s.wildcard);
  for (const s of sources) {
    keep = s.keepOwner === true;
    const isDir = s.path.stats.isDirectory();
    let target: string;
    if (o.parents) target = path.posix.join(dest, s.parentsPath ?? s.path.rel);
    else if (isDir) target = dest;
    else if (trailing || multiple || o.fs.isDirectory(dest)) target = path.posix.join(dest, path.posix.basename(s.path.rel || s.path.abs));
    else target = dest;
    if (!isDir && o.exclude?.excludes(path.posix.basename(s.path.rel))) continue;
    // The destination is reached the way BuildKit's copy reaches it: through symlinks of the image, the last one
    // included (a file copied onto a symlink writes the file it points at; a directory copied onto a link to a
    // directory fills that directory).
    target = '/' + o.fs.resolve(target, true);
    ensureParents(target === '/' ? '' : target);
    addOne(s.path, target);
    for (const child of s.children ?? []) {
      const relBelow = s.path.rel ? child.rel.slice(s.path.rel.length + 1) : child.rel;
      if (o.exclude?.excludes(relBelow)) continue;
      const t = path.posix.join(target, relBelow).replace(/^\/+/, '');
      ensureParents(t);
      if (child.stats.isSymbolicLink()) {
        put(t, { header: { ...header(t, child, 'symlink'), linkname: child.linkname ?? '' } });
      } else if (child.stats.isDirectory()) {
        put(t, { header: header(t, child, 'directory') });
      } else addOne(child, t);
    }
  }
  return [...entries.values()];
}
