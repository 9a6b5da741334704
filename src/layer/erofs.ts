// An EROFS tar index: the metadata of a layer's uncompressed tar as an EROFS image whose regular files point into
// the tar itself (a second device), so that mounting the index with the tar gives the layer's tree without writing
// a file of it. Written from the format the kernel documents (Documentation/filesystems/erofs.rst; the on-disk
// structures in erofs_fs.h), the same kind of image as erofs-utils' `mkfs.erofs --tar=i` makes:
//
//   block size 512 (tar data starts on 512-byte boundaries, so a file's bytes are a run of the tar's blocks)
//   [0, 1024)      nothing
//   [1024, 1152)   the superblock; [1152, 1280) the device table: one slot, the tar
//   block 3 on     the inodes (nids counted from block 2, so that none is 0: readdir drops an entry of inode 0) (64-byte "extended" form: 32-bit owners, 64-bit size and time), each followed by its
//                  xattrs and its chunk index or inline data, 32-byte aligned; the root's first (its nid is 16 bits)
//   after them     the blocks of directories and symlinks too big to sit inline
//
// The tree is what extractLayer's 'overlay' mode makes of the same tar in an empty directory (names cleaned, parents
// resolved inside the layer the way a chroot would see them, later entries replacing earlier ones, whiteouts as 0/0
// character devices and opaque directories as trusted.overlay.opaque), because the two kinds of lowers must show a
// step the same files. A regular file is one chunk: an 8-byte index naming the tar's block where its bytes start, so
// the kernel reads nothing outside the tar (each offset is checked against the tar's size here).
import { nameToBytes } from './names.js';
import { cleanEntryName } from './rooted.js';
import { opaqueWhiteout, whiteoutPrefix } from './extract.js';
import { TarError, type TarHeader } from './tar.js';

const blockBits = 9;
const blockSize = 1 << blockBits;
const superOffset = 1024;
/** nids count 32-byte slots from here (the superblock's block: no inode can have nid 0, which readdir hides) */
const metaBlock = 2;
/** where the inodes start: the root's nid is then 16 */
const inodesStart = 3 * 512;
const deviceSlotOffset = 1152;
const inodeSize = 64;
const direntSize = 12;
const magic = 0xe0f5e1e2;
const incompatChunkedFile = 0x4;
const incompatDeviceTable = 0x8;
const layoutFlatPlain = 0;
const layoutFlatInline = 2;
const layoutChunkBased = 4;
const chunkFormatIndexes = 0x20;
const nameMax = 255;
const pathMax = 4095;
const maxHops = 40;

type Kind = 'directory' | 'file' | 'symlink' | 'char' | 'block' | 'fifo';

interface Node {
  kind: Kind;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Map<string, Buffer>;
  /** a directory's entries by name */
  children?: Map<string, Node>;
  /** a symlink's target */
  target?: string;
  /** a regular file's size and where its bytes start in the tar */
  size?: number;
  offset?: number;
  devmajor?: number;
  devminor?: number;
}

export class ErofsIndexError extends TarError {}

const fileTypes: Record<Kind, number> = { file: 1, directory: 2, char: 3, block: 4, fifo: 5, symlink: 7 };
const modeTypes: Record<Kind, number> = {
  file: 0o100000,
  directory: 0o040000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
  symlink: 0o120000,
};

function directory(mtime: number, mode = 0o755): Node {
  return { kind: 'directory', mode, uid: 0, gid: 0, mtime, xattrs: new Map(), children: new Map() };
}

/** The EROFS xattr name index and the name after its prefix; undefined for a namespace EROFS cannot hold. */
function xattrName(name: string): [number, string] | undefined {
  if (name === 'system.posix_acl_access') return [2, ''];
  if (name === 'system.posix_acl_default') return [3, ''];
  for (const [prefix, index] of [
    ['user.', 1],
    ['trusted.', 4],
    ['security.', 6],
  ] as const) {
    if (name.startsWith(prefix) && name.length > prefix.length) return [index, name.slice(prefix.length)];
  }
  return undefined;
}

/**
 * Builds the index of one layer from its tar headers in order (`add`, with where each file's bytes start in the
 * tar), then `finish` with the tar's size gives the image.
 */
export class ErofsIndexBuilder {
  private readonly root: Node;
  private readonly opaque: string[] = [];
  private readonly whiteouts: string[] = [];
  /** what EROFS cannot hold and the directory unpack would not have made either (xattrs of other namespaces) */
  readonly skipped: string[] = [];
  entries = 0;

  constructor(private readonly now = Math.floor(Date.now() / 1000)) {
    this.root = directory(now);
  }

  add(header: TarHeader, offset: number): void {
    this.entries++;
    const name = cleanEntryName(header.name);
    if (name === '') return;
    try {
      this.place(header, name, offset);
    } catch (e) {
      if (e instanceof TarError) throw new ErofsIndexError(`entry ${JSON.stringify(header.name)}: ${e.message}`);
      throw e;
    }
  }

  private place(header: TarHeader, name: string, offset: number): void {
    const slash = name.lastIndexOf('/');
    const base = name.slice(slash + 1);
    const parent = slash < 0 ? '' : name.slice(0, slash);
    if (base.startsWith(whiteoutPrefix)) {
      if (base === opaqueWhiteout) {
        this.makeDirs(this.resolve(parent, true));
        this.opaque.push(parent);
        return;
      }
      if (base.startsWith(`${whiteoutPrefix}${whiteoutPrefix}`)) return; // aufs bookkeeping, as extractLayer skips it
      const hidden = base.slice(whiteoutPrefix.length);
      if (hidden === '' || hidden === '.' || hidden === '..')
        throw new TarError(`invalid whiteout ${JSON.stringify(base)}: it names no file`);
      const rel = parent ? `${parent}/${hidden}` : hidden;
      this.makeDirs(this.resolve(rel, false).slice(0, -1));
      this.whiteouts.push(rel);
      return;
    }
    checkName(base);
    const path = this.resolve(name, false);
    const dir = this.makeDirs(path.slice(0, -1));
    const last = path[path.length - 1];
    const children = dir.children as Map<string, Node>;
    const existing = children.get(last);
    const meta = {
      mode: header.mode & 0o7777,
      uid: header.uid,
      gid: header.gid,
      mtime: header.mtime,
      xattrs: this.xattrsOf(header),
    };
    switch (header.type) {
      case 'directory':
        if (existing?.kind === 'directory') Object.assign(existing, meta);
        else children.set(last, { kind: 'directory', ...meta, children: new Map() });
        return;
      case 'file':
        if (offset % blockSize !== 0) throw new TarError(`its data starts at ${offset}, not on a tar block`);
        children.set(last, { kind: 'file', ...meta, size: header.size, offset });
        return;
      case 'symlink': {
        const target = header.linkname ?? '';
        if (Buffer.byteLength(target) > pathMax) throw new TarError('the link target is too long');
        children.set(last, { kind: 'symlink', ...meta, mode: 0o777, target });
        return;
      }
      case 'hardlink': {
        children.delete(last);
        const linked = cleanEntryName(header.linkname ?? '');
        const from = linked === '' ? undefined : this.lookup(this.resolve(linked, false));
        if (!from)
          throw new TarError(
            `hard link to ${JSON.stringify(header.linkname ?? '')}, which is not in the archive before it`,
          );
        if (from.kind === 'directory')
          throw new TarError(`hard link to ${JSON.stringify(header.linkname)}, a directory`);
        // One inode under two names: the link's owner is the inode's (tar's lchown), its mode and times are not.
        from.uid = header.uid;
        from.gid = header.gid;
        if (header.xattrs && Object.keys(header.xattrs).length) from.xattrs = meta.xattrs;
        children.set(last, from);
        return;
      }
      case 'char':
      case 'block':
        children.set(last, {
          kind: header.type,
          ...meta,
          devmajor: header.devmajor ?? 0,
          devminor: header.devminor ?? 0,
        });
        return;
      case 'fifo':
        children.set(last, { kind: 'fifo', ...meta });
        return;
    }
  }

  private xattrsOf(header: TarHeader): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(header.xattrs ?? {})) {
      if (xattrName(k)) out.set(k, v);
      else this.skipped.push(`xattr ${k} of ${header.name}`);
    }
    return out;
  }

  /**
   * The names from the root to `name`, symlinks among its parents (and the last one with `followLast`) followed
   * inside the layer as rooted.ts's resolveInside does on disk; what is missing is taken as written.
   */
  private resolve(name: string, followLast: boolean): string[] {
    const pending = name.split('/').filter((p) => p !== '' && p !== '.');
    const done: string[] = [];
    const nodes: Node[] = [this.root];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === '..') {
        if (done.length) {
          done.pop();
          nodes.pop();
        }
        continue;
      }
      const here = nodes[nodes.length - 1];
      if (here.kind !== 'directory') throw new TarError(`/${done.join('/')} is not a directory`);
      const next = here.children?.get(part);
      if (!next) {
        done.push(part);
        for (const p of pending) {
          if (p === '..') done.pop();
          else done.push(p);
        }
        return done;
      }
      if (next.kind === 'symlink' && (pending.length > 0 || followLast)) {
        if (++hops > maxHops) throw new TarError(`too many levels of symbolic links resolving ${JSON.stringify(name)}`);
        const target = next.target ?? '';
        if (target.startsWith('/')) {
          done.length = 0;
          nodes.length = 1;
        }
        pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
        continue;
      }
      done.push(part);
      nodes.push(next);
    }
    return done;
  }

  private lookup(path: readonly string[]): Node | undefined {
    let node: Node | undefined = this.root;
    for (const p of path) node = node?.children?.get(p);
    return node;
  }

  /** The directory at `path` (real names, no symlinks), made with its missing parents as `mkdir -p` makes them. */
  private makeDirs(path: readonly string[]): Node {
    let node = this.root;
    for (const [i, p] of path.entries()) {
      const children = node.children as Map<string, Node>;
      let next = children.get(p);
      if (!next) {
        checkName(p);
        next = directory(this.now);
        children.set(p, next);
      } else if (next.kind !== 'directory') {
        throw new TarError(`/${path.slice(0, i + 1).join('/')} is not a directory`);
      }
      node = next;
    }
    return node;
  }

  /** The image, for a tar of `tarSize` bytes. */
  finish(tarSize: number): Buffer {
    // Whiteouts and opaque directories last, resolved again, as extractLayer makes them: an entry of the same name
    // in this layer stands.
    for (const rel of this.whiteouts) {
      const path = this.resolve(rel, false);
      const dir = this.makeDirs(path.slice(0, -1));
      if (dir.children?.has(path[path.length - 1])) continue;
      dir.children?.set(path[path.length - 1], {
        kind: 'char',
        mode: 0,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: new Map(),
        devmajor: 0,
        devminor: 0,
      });
      // A directory that holds whiteouts is marked as overlayfs marks a copied-up one, so that a mount where it is
      // the only layer with this directory still hides them from a listing (kernel commit b79e05aaa166).
      dir.xattrs.set('trusted.overlay.origin', Buffer.alloc(0));
    }
    for (const rel of this.opaque) {
      const node = this.lookup(this.resolve(rel, true));
      if (node?.kind === 'directory') node.xattrs.set('trusted.overlay.opaque', Buffer.from('y'));
    }
    const blocks = Math.ceil(tarSize / blockSize);
    if (blocks > 0xffffffff)
      throw new ErofsIndexError(`a layer of ${tarSize} bytes is more than an EROFS index can address`);
    return new ImageWriter(this.root, tarSize, this.now).write();
  }
}

function checkName(name: string): void {
  if (nameToBytes(name).length > nameMax) throw new TarError('the name is too long');
}

interface Laid {
  node: Node;
  nid: number;
  /** the inode's offset in the image */
  at: number;
  xattrs: Buffer;
  layout: number;
  /** a directory's or symlink's bytes */
  data?: Buffer;
  /** a directory's entries, grouped by the block each goes in */
  blocks?: [Buffer, Node][][];
  /** where FLAT_PLAIN data starts (a block number) */
  dataBlock?: number;
  ino: number;
}

class ImageWriter {
  private readonly laid = new Map<Node, Laid>();
  private readonly order: Laid[] = [];
  private readonly parents = new Map<Node, Node>();

  constructor(
    private readonly root: Node,
    private readonly tarSize: number,
    private readonly now: number,
  ) {}

  write(): Buffer {
    // Every inode once (hard links share one), parents before children; the root first.
    const queue: Node[] = [this.root];
    this.parents.set(this.root, this.root);
    const seen = new Set<Node>([this.root]);
    const nodes: Node[] = [];
    while (queue.length) {
      const n = queue.shift() as Node;
      nodes.push(n);
      for (const c of n.children?.values() ?? []) {
        if (seen.has(c)) continue;
        seen.add(c);
        if (c.kind === 'directory') this.parents.set(c, n);
        queue.push(c);
      }
    }
    const nlink = new Map<Node, number>();
    for (const n of nodes) {
      if (n.kind !== 'directory') continue;
      let subdirs = 0;
      for (const c of n.children?.values() ?? []) {
        if (c.kind === 'directory') subdirs++;
        else nlink.set(c, (nlink.get(c) ?? 0) + 1);
      }
      nlink.set(n, 2 + subdirs);
    }
    // Sizes first: a directory's bytes depend on its names only (every nid is 8 bytes), so the inodes can be laid
    // out before any nid is known.
    let at = inodesStart;
    for (const [i, node] of nodes.entries()) {
      const xattrs = encodeXattrs(node.xattrs);
      const blocks = node.kind === 'directory' ? dirBlocks(this.direntsOf(node)) : undefined;
      const data = blocks
        ? Buffer.alloc(dirSize(blocks))
        : node.kind === 'symlink'
          ? nameToBytes(node.target ?? '')
          : undefined;
      let layout = node.kind === 'file' && (node.size ?? 0) > 0 ? layoutChunkBased : layoutFlatPlain;
      let extra = layout === layoutChunkBased ? align(inodeSize + xattrs.length, 8) - inodeSize - xattrs.length + 8 : 0;
      if (data && data.length > 0 && inodeSize + xattrs.length + data.length <= blockSize) {
        layout = layoutFlatInline;
        extra = data.length;
      }
      const total = inodeSize + xattrs.length + extra;
      // Nothing of an inode crosses a block where it need not (inline data must not).
      if (total <= blockSize && (at % blockSize) + total > blockSize) at = align(at, blockSize);
      if (i === 0 && at !== inodesStart) throw new Error('the root inode is not first');
      const laid: Laid = {
        node,
        nid: (at - metaBlock * blockSize) / 32,
        at,
        xattrs,
        layout,
        ...(data ? { data } : {}),
        ...(blocks ? { blocks } : {}),
        ino: i + 1,
      };
      this.laid.set(node, laid);
      this.order.push(laid);
      at = align(at + total, 32);
    }
    let block = Math.ceil(at / blockSize);
    for (const l of this.order) {
      if (l.layout !== layoutFlatPlain || !l.data || l.data.length === 0) continue;
      l.dataBlock = block;
      block += Math.ceil(l.data.length / blockSize);
    }
    const image = Buffer.alloc(block * blockSize);
    for (const l of this.order) {
      if (l.node.kind === 'directory') this.fillDir(l);
      this.writeInode(image, l, nlink.get(l.node) ?? 1);
    }
    this.writeSuper(image, block, nodes.length);
    return image;
  }

  /** A directory's entries, `.` and `..` among them, in the order lookups binary-search (bytewise). */
  private direntsOf(node: Node): [Buffer, Node][] {
    const entries: [Buffer, Node][] = [
      [Buffer.from('.'), node],
      [Buffer.from('..'), this.parents.get(node) as Node],
    ];
    for (const [name, child] of node.children ?? []) entries.push([nameToBytes(name), child]);
    return entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  }

  /** Writes a directory's blocks (sized and grouped when it was laid out) now that every nid is known. */
  private fillDir(l: Laid): void {
    const data = l.data as Buffer;
    let pos = 0;
    for (const group of l.blocks ?? []) {
      let nameAt = group.length * direntSize;
      for (const [j, [name, child]] of group.entries()) {
        const d = pos + j * direntSize;
        data.writeBigUInt64LE(BigInt((this.laid.get(child) as Laid).nid), d);
        data.writeUInt16LE(nameAt, d + 8);
        data.writeUInt8(fileTypes[child.kind], d + 10);
        name.copy(data, pos + nameAt);
        nameAt += name.length;
      }
      pos += blockSize;
    }
  }

  private writeInode(image: Buffer, l: Laid, nlink: number): void {
    const n = l.node;
    const at = l.at;
    const size = n.kind === 'file' ? (n.size ?? 0) : (l.data?.length ?? 0);
    image.writeUInt16LE(1 | (l.layout << 1), at);
    image.writeUInt16LE(l.xattrs.length ? 1 + (l.xattrs.length - 12) / 4 : 0, at + 2);
    image.writeUInt16LE(modeTypes[n.kind] | (n.mode & 0o7777), at + 4);
    image.writeBigUInt64LE(BigInt(size), at + 8);
    if (n.kind === 'char' || n.kind === 'block') {
      const major = n.devmajor ?? 0;
      const minor = n.devminor ?? 0;
      image.writeUInt32LE(((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0, at + 16);
    } else if (l.layout === layoutChunkBased) {
      image.writeUInt16LE(chunkFormatIndexes | chunkBitsFor(size), at + 16);
    } else if (l.dataBlock !== undefined) {
      image.writeUInt32LE(l.dataBlock, at + 16);
    }
    image.writeUInt32LE(l.ino, at + 20);
    image.writeUInt32LE(n.uid >>> 0, at + 24);
    image.writeUInt32LE(n.gid >>> 0, at + 28);
    const seconds = Math.floor(n.mtime);
    image.writeBigInt64LE(BigInt(seconds), at + 32);
    image.writeUInt32LE(Math.min(999_999_999, Math.round((n.mtime - seconds) * 1e9)), at + 40);
    image.writeUInt32LE(nlink, at + 44);
    l.xattrs.copy(image, at + inodeSize);
    const after = at + inodeSize + l.xattrs.length;
    if (l.layout === layoutChunkBased) {
      const start = n.offset ?? 0;
      if (start % blockSize !== 0 || start + size > this.tarSize)
        throw new ErofsIndexError(
          `a file's bytes [${start}, ${start + size}) lie outside the tar of ${this.tarSize} bytes`,
        );
      const index = align(after, 8);
      image.writeUInt16LE(0, index); // startblk_hi
      image.writeUInt16LE(1, index + 2); // device 1: the tar
      image.writeUInt32LE(start / blockSize, index + 4);
    } else if (l.layout === layoutFlatInline) {
      (l.data as Buffer).copy(image, after);
    } else if (l.dataBlock !== undefined) {
      (l.data as Buffer).copy(image, l.dataBlock * blockSize);
    }
  }

  private writeSuper(image: Buffer, blocks: number, inodes: number): void {
    const s = superOffset;
    image.writeUInt32LE(magic, s);
    image.writeUInt8(blockBits, s + 12);
    image.writeUInt16LE((inodesStart - metaBlock * blockSize) / 32, s + 14); // the root's nid
    image.writeBigUInt64LE(BigInt(inodes), s + 16);
    image.writeBigUInt64LE(BigInt(this.now), s + 24);
    image.writeUInt32LE(blocks, s + 36);
    image.writeUInt32LE(metaBlock, s + 40);
    image.writeUInt32LE(incompatChunkedFile | incompatDeviceTable, s + 80);
    image.writeUInt16LE(1, s + 86); // extra devices
    image.writeUInt16LE(deviceSlotOffset / 128, s + 88);
    image.write('tar', deviceSlotOffset, 'ascii'); // the slot's tag (the device itself is named when mounting)
    image.writeUInt32LE(Math.ceil(this.tarSize / blockSize), deviceSlotOffset + 64);
  }
}

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** chunk size = block size << bits: one chunk holds the whole file (its bytes are one run of the tar). */
function chunkBitsFor(size: number): number {
  let bits = 0;
  while (blockSize * 2 ** bits < size) bits++;
  if (bits > 0x1f) throw new ErofsIndexError(`a file of ${size} bytes is more than one chunk can hold`);
  return bits;
}

/** Directory entries in blocks: each block holds whole entries (12 bytes each, then their names). */
function dirBlocks(entries: [Buffer, Node][]): [Buffer, Node][][] {
  const out: [Buffer, Node][][] = [];
  let current: [Buffer, Node][] = [];
  let used = 0;
  for (const e of entries) {
    const need = direntSize + e[0].length;
    if (used + need > blockSize) {
      out.push(current);
      current = [];
      used = 0;
    }
    current.push(e);
    used += need;
  }
  if (current.length) out.push(current);
  return out;
}

/** A directory's bytes: whole blocks, then what its last block holds. */
function dirSize(blocks: [Buffer, Node][][]): number {
  const last = blocks[blocks.length - 1];
  return (blocks.length - 1) * blockSize + last.reduce((n, e) => n + direntSize + e[0].length, 0);
}

/** Inline xattrs: a 12-byte header, then each entry (4 bytes, its name after the prefix, its value) 4-aligned. */
function encodeXattrs(xattrs: Map<string, Buffer>): Buffer {
  if (xattrs.size === 0) return Buffer.alloc(0);
  const parts: Buffer[] = [Buffer.alloc(12)];
  for (const [k, value] of [...xattrs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const [index, rest] = xattrName(k) as [number, string];
    const name = Buffer.from(rest, 'utf8');
    if (name.length > 255 || value.length > 0xffff)
      throw new ErofsIndexError(`the xattr ${k} is too long for an EROFS index`);
    const entry = Buffer.alloc(align(4 + name.length + value.length, 4));
    entry.writeUInt8(name.length, 0);
    entry.writeUInt8(index, 1);
    entry.writeUInt16LE(value.length, 2);
    name.copy(entry, 4);
    value.copy(entry, 4 + name.length);
    parts.push(entry);
  }
  const out = Buffer.concat(parts);
  if ((out.length - 12) / 4 + 1 > 0xffff) throw new ErofsIndexError('too many xattrs for an EROFS index');
  return out;
}
