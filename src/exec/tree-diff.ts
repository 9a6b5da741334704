// The layer of a RUN step that ran in a plain directory (no overlay: the no-mount executor): the directory is
// indexed before the step (type, mode, owners, size, mtime, ctime, inode, link count, device), walked again after
// it and compared entry by entry. ctime moves with every change the kernel makes to an inode — content, mode,
// owners, links, xattrs (security.capability included) — so a file whose ctime and inode are the same is
// unchanged without reading it. The layer then has what the overlay's upper dir would have had:
// new and changed entries with every directory above them (BuildKit's tar writer includes parents), a whiteout
// `.wh.NAME` for each topmost removed path, an opaque directory (`.wh..wh..opq` and all it holds) where a directory
// was replaced by another, hard links within the layer kept as links.
import { lstatSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import type { TarHeader } from '../layer/tar.js';
import type { LayerEntry } from '../layer/writer.js';
import { fsPath, readdirNames, readlinkName } from '../layer/names.js';
import { readXattrsOf, xattrTool } from '../layer/xattr.js';
import { opaqueWhiteout, whiteoutPrefix } from '../layer/extract.js';

type Kind = 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface TreeEntry {
  kind: Kind;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  nlink: number;
  rdev: number;
}

/** A directory tree as it was: every entry by its path relative to the root, and each directory's names. */
export interface TreeIndex {
  entries: Map<string, TreeEntry>;
  children: Map<string, string[]>;
}

function kindOf(st: BigIntStats): Kind {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function entryOf(st: BigIntStats): TreeEntry {
  return {
    kind: kindOf(st),
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    dev: st.dev,
    nlink: Number(st.nlink),
    rdev: Number(st.rdev),
  };
}

const join = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);

/** Every entry under `root` (not crossing into another filesystem's mount, as a layer never holds one). */
export function indexTree(root: string): TreeIndex {
  const entries = new Map<string, TreeEntry>();
  const children = new Map<string, string[]>();
  const rootDev = lstatSync(root, { bigint: true }).dev;
  const visit = (rel: string) => {
    const names = readdirNames(rel ? path.join(root, rel) : root).sort();
    children.set(rel, names);
    for (const name of names) {
      const r = join(rel, name);
      const st = lstatSync(fsPath(path.join(root, r)), { bigint: true });
      const e = entryOf(st);
      entries.set(r, e);
      if (e.kind === 'dir' && st.dev === rootDev) visit(r);
    }
  };
  visit('');
  return { entries, children };
}

/**
 * Whether an entry changed in a way a layer shows. `loose`: hoist changed its inode times and set its mtime back
 * (to the microsecond a float can carry): its other attributes and its mtime in whole seconds, as a layer has it, tell.
 */
function changed(a: TreeEntry, b: TreeEntry, loose: boolean): boolean {
  const mtimeDiffers = loose ? a.mtimeNs / 1_000_000_000n !== b.mtimeNs / 1_000_000_000n : a.mtimeNs !== b.mtimeNs;
  if (a.kind !== b.kind || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || mtimeDiffers || a.rdev !== b.rdev)
    return true;
  if (a.kind !== 'dir' && a.size !== b.size) return true;
  return !loose && (a.ctimeNs !== b.ctimeNs || a.ino !== b.ino || a.dev !== b.dev);
}

export interface TreeDiff {
  entries: LayerEntry[];
  /** the tree as it is now: the next step's `before` when nothing else changes it */
  after: TreeIndex;
}

/**
 * What changed under `root` since `before`, as layer entries in walk order. `touched`: paths hoist itself moved
 * aside and back for the step (their inode times are hoist's): compared without ctime and inode.
 */
export async function diffTree(
  root: string,
  before: TreeIndex,
  touched: ReadonlySet<string> = new Set(),
): Promise<TreeDiff> {
  const after = indexTree(root);
  const emitted = new Map<string, LayerEntry>();
  const whiteouts: string[] = [];
  const links = new Map<string, string>();
  const files: string[] = [];
  const header = (rel: string, e: TreeEntry): LayerEntry => {
    const base = {
      name: rel,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: 0,
      mtime: Number(e.mtimeNs / 1_000_000_000n),
    };
    const abs = path.join(root, rel);
    switch (e.kind) {
      case 'dir':
        return { header: { ...base, type: 'directory' } };
      case 'symlink':
        return { header: { ...base, type: 'symlink', linkname: readlinkName(abs) } };
      case 'file': {
        const key = `${e.dev}:${e.ino}`;
        const first = e.nlink > 1 ? links.get(key) : undefined;
        if (first) return { header: { ...base, type: 'hardlink', linkname: first } };
        if (e.nlink > 1) links.set(key, rel);
        files.push(rel);
        return { header: { ...base, type: 'file', size: Number(e.size) }, content: { path: abs } };
      }
      case 'fifo':
        return { header: { ...base, type: 'fifo' } };
      default:
        return {
          header: {
            ...base,
            type: e.kind === 'char' ? 'char' : 'block',
            devmajor: Math.floor(e.rdev / 256) & 0xfff,
            devminor: (e.rdev & 0xff) | ((e.rdev >> 12) & 0xfff00),
          },
        };
    }
  };
  const whiteout = (rel: string): LayerEntry => ({
    header: { name: rel, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 },
  });
  // Walk order (a directory, then its names sorted), so that the first of hard-linked names is the file.
  const visit = (rel: string, wholly: boolean) => {
    const names = after.children.get(rel) ?? [];
    const was = wholly ? undefined : before.children.get(rel);
    if (was) {
      const now = new Set(names);
      for (const gone of was) if (!now.has(gone)) whiteouts.push(join(rel, `${whiteoutPrefix}${gone}`));
    }
    for (const name of names) {
      const r = join(rel, name);
      const e = after.entries.get(r) as TreeEntry;
      if (e.kind === 'socket') continue;
      const b = wholly ? undefined : before.entries.get(r);
      if (e.kind === 'dir') {
        // A directory removed and made again (or made where something else was): what was below it is gone.
        const replaced = b !== undefined && (b.kind !== 'dir' || (b.ino !== e.ino && !touched.has(r)));
        if (!b || replaced || changed(b, e, touched.has(r))) emitted.set(r, header(r, e));
        if (b?.kind === 'dir' && replaced) emitted.set(`${r}/${opaqueWhiteout}`, whiteout(`${r}/${opaqueWhiteout}`));
        if (after.children.has(r)) visit(r, wholly || !b || replaced);
      } else if (!b || changed(b, e, touched.has(r))) {
        emitted.set(r, header(r, e));
      }
    }
  };
  visit('', false);
  // Every directory above a change, as it is now (never the root).
  for (const rel of [...emitted.keys(), ...whiteouts]) {
    for (let d = path.posix.dirname(rel); d !== '.' && !emitted.has(d); d = path.posix.dirname(d))
      emitted.set(d, header(d, after.entries.get(d) as TreeEntry));
  }
  // File capabilities (setcap), the one xattr a layer carries, read only for the files the layer holds (without
  // python3 or the attr tools, none: the executor said so when it was chosen).
  const caps = xattrTool()
    ? await readXattrsOf(
        files.map((f) => path.join(root, f)),
        ['security.capability'],
      )
    : new Map<string, Map<string, Buffer>>();
  for (const f of files) {
    const cap = caps.get(path.join(root, f))?.get('security.capability');
    const entry = emitted.get(f);
    if (cap && entry) entry.header = { ...entry.header, xattrs: { 'security.capability': cap } } as TarHeader;
  }
  return { entries: [...emitted.values(), ...whiteouts.map(whiteout)], after };
}
