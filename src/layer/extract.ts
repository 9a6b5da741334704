// Unpacks a layer tar into a directory without ever writing outside it: names are cleaned ("..", "/" and "./"
// cannot climb out), and every parent directory is resolved inside the root the way a chroot would see it, so a
// symlink in an earlier entry or layer (`etc -> /etc`, `x -> ../../..`) leads back into the root, never out.
// Whiteouts either delete what they name (applying layers one over another into one tree) or become overlayfs
// whiteouts (a snapshot used as a lower dir).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  createWriteStream,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fsPath, readdirNames } from './names.js';
import { cleanEntryName, resolveInRoot, resolveInside, RootedPathError } from './rooted.js';
import { readTar, TarError, type TarHeader, TarWriter } from './tar.js';
import { writeXattrs, type XattrSet, xattrTool } from './xattr.js';

export const whiteoutPrefix = '.wh.';
export const opaqueWhiteout = '.wh..wh..opq';

export interface ExtractOptions {
  /**
   * 'apply': a whiteout removes what it names; 'overlay': it becomes a 0/0 character device / opaque xattr;
   * 'none': `.wh.` names are ordinary files (a user's archive, not a layer)
   */
  whiteouts: 'apply' | 'overlay' | 'none';
  /** set owners (needs root); default: when running as root */
  chown?: boolean;
  /** receives every header read (the layer's index, kept by the store from the same pass) */
  headers?: TarHeader[];
  /**
   * A cache mount's content, which any earlier build (or whoever could write the cache) chose: no device nodes, no
   * setuid or setgid bits, no xattrs (file capabilities among them)
   */
  cacheContent?: boolean;
  /** the most bytes of file content to write; more is an error */
  maxBytes?: number;
}

export interface ExtractReport {
  entries: number;
  /** what could not be made here (device nodes without root, xattrs without python3 or setfattr) */
  skipped: string[];
}

function removeAll(p: string): void {
  rmSync(fsPath(p), { recursive: true, force: true });
}

/**
 * 0/0 character devices at `paths` (inside `root`, parents resolved there just before): one GNU tar run over an
 * archive of device entries (Node has no mknod), else mknod for each.
 */
export async function makeWhiteouts(root: string, paths: readonly string[]): Promise<boolean> {
  if (paths.length === 0) return true;
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  w.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((r) => w.stream.once('end', r));
  for (const p of paths)
    await w.entry({
      name: path.relative(root, p),
      type: 'char',
      mode: 0,
      uid: 0,
      gid: 0,
      size: 0,
      mtime: 0,
      devmajor: 0,
      devminor: 0,
    });
  await w.finish();
  await ended;
  const r = spawnSync('tar', ['-x', '--numeric-owner', '--no-overwrite-dir', '-C', root, '-f', '-'], {
    input: Buffer.concat(chunks),
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  if (r.status === 0) return true;
  return paths.every((p) => lstatSync(fsPath(p), { throwIfNoEntry: false }) || tool('mknod', [p, 'c', '0', '0']));
}

function tool(program: string, args: string[]): boolean {
  return spawnSync(program, args, { stdio: 'ignore' }).status === 0;
}

export async function extractLayer(
  source: AsyncIterable<Buffer | Uint8Array>,
  root: string,
  options: ExtractOptions,
): Promise<ExtractReport> {
  const chown = options.chown ?? process.getuid?.() === 0;
  await mkdir(root, { recursive: true });
  const report: ExtractReport = { entries: 0, skipped: [] };
  const dirTimes: [string, number][] = [];
  const whiteouts: string[] = [];
  const opaqueDirs: string[] = [];
  const xattrs = new Map<string, Record<string, Buffer>>();
  const dirs = new Map<string, string>();
  // Metadata calls are synchronous: microseconds each, where a trip through the thread pool cost tens of
  // microseconds per call and ten or more calls per entry (a 200 MB base took seconds more to unpack).
  let bytes = 0;
  for await (const { header: read, body } of readTar(source)) {
    report.entries++;
    options.headers?.push(read);
    const header = options.cacheContent ? { ...read, mode: read.mode & ~0o6000, xattrs: {} } : read;
    if (header.type === 'file' && options.maxBytes !== undefined && (bytes += header.size) > options.maxBytes) {
      body.destroy();
      throw new TarError(
        `more than the ${options.maxBytes} bytes of content allowed (at ${JSON.stringify(header.name.slice(0, 200))})`,
      );
    }
    const name = cleanEntryName(header.name);
    if (name === '') {
      body.resume();
      continue;
    }
    try {
      await extractEntry(header, body, name, root, options, chown, report, {
        dirTimes,
        whiteouts,
        opaqueDirs,
        dirs,
        xattrs,
      });
    } catch (e) {
      body.resume();
      throw entryError(header, e, root);
    }
  }
  // Overlay whiteouts all at once (a tool run per whiteout cost milliseconds each, for thousands of them). Their
  // paths are resolved inside the root again: a later entry of the layer may have made a parent a symlink, and
  // the tools (and utimes) would follow it out of the root.
  const devices = whiteouts
    .map((rel) => resolveInRoot(root, rel))
    .filter((w) => !lstatSync(fsPath(w), { throwIfNoEntry: false }));
  if (!(await makeWhiteouts(root, devices))) report.skipped.push(`${devices.length} whiteouts (needs root)`);
  // Xattrs all at once too (see exec/xattr.ts for the tools), the entries' own and the opaque directories'; a
  // path a later entry removed is left out.
  const own: XattrSet[] = [];
  for (const [rel, attrs] of xattrs) {
    const target = resolveInRoot(root, rel);
    if (lstatSync(fsPath(target), { throwIfNoEntry: false }))
      for (const [k, v] of Object.entries(attrs)) own.push({ path: target, name: k, value: v });
  }
  for (const x of writeXattrs(own)) report.skipped.push(`xattr ${x.name} of ${path.relative(root, x.path)}`);
  const opaque = writeXattrs(
    opaqueDirs.map((rel) => ({ path: resolveDir(root, rel), name: 'trusted.overlay.opaque', value: Buffer.from('y') })),
  );
  if (opaque.length)
    report.skipped.push(
      `${opaque.length} opaque whiteouts (${xattrTool() ? 'needs root' : 'needs python3 or setfattr'})`,
    );
  // Directory times last: creating their children changed them.
  for (const [rel, t] of dirTimes.reverse()) {
    const d = resolveDir(root, rel);
    if (lstatSync(fsPath(d), { throwIfNoEntry: false })?.isDirectory()) quietly(() => utimesSync(fsPath(d), t, t));
  }
  return report;
}

/** A directory's host path inside the root, the directory itself followed too when it is a symlink. */
function resolveDir(root: string, rel: string): string {
  return resolveInside(root, rel, { followLast: true }).abs;
}

interface Deferred {
  /** directories (relative to the root) and their times, set when every entry is in */
  dirTimes: [string, number][];
  /** overlay whiteouts and opaque directories to make at the end (relative to the root) */
  whiteouts: string[];
  opaqueDirs: string[];
  /** each entry's own xattrs, set once every entry is in place */
  xattrs: Map<string, Record<string, Buffer>>;
  /**
   * Directories of this extraction known to be real ones inside the root (entry name → host path), so that the
   * entries in them are placed without resolving every parent again. Anything removed empties it: a directory
   * replaced by a symlink must be resolved afresh.
   */
  dirs: Map<string, string>;
}

/** Removes `p` (and all under it), forgetting the directories known to be real. */
function removeKnown(p: string, later: Deferred): void {
  later.dirs.clear();
  removeAll(p);
}

/** The name a whiteout hides, or undefined for an ordinary name; a name that is no file name is an error. */
function whitedOut(base: string): string | undefined {
  if (!base.startsWith(whiteoutPrefix)) return undefined;
  const hidden = base.slice(whiteoutPrefix.length);
  // `.wh.` alone, `.wh..` and `.wh...` would name the directory itself or its parent.
  if (hidden === '' || hidden === '.' || hidden === '..')
    throw new EntryError(`invalid whiteout ${JSON.stringify(base)}: it names no file`);
  return hidden;
}

async function extractEntry(
  header: TarHeader,
  body: AsyncIterable<Buffer> & { resume(): void },
  name: string,
  root: string,
  options: ExtractOptions,
  chown: boolean,
  report: ExtractReport,
  later: Deferred,
): Promise<void> {
  const base = path.posix.basename(name);
  const parent = path.posix.dirname(name) === '.' ? '' : path.posix.dirname(name);
  if (options.whiteouts !== 'none' && base.startsWith(whiteoutPrefix)) {
    body.resume();
    if (base === opaqueWhiteout) {
      const dir = resolveDir(root, parent);
      mkdirSync(fsPath(dir), { recursive: true });
      // Everything the lower layers put in this directory is gone; this layer's own entries follow it.
      if (options.whiteouts === 'apply') for (const e of readdirNames(dir)) removeKnown(path.join(dir, e), later);
      else later.opaqueDirs.push(parent);
      return;
    }
    // Other `.wh..wh.` names are aufs bookkeeping (hard link dirs), not whiteouts: skipped, as containerd does.
    if (base.startsWith(`${whiteoutPrefix}${whiteoutPrefix}`)) return;
    const hidden = whitedOut(base) as string;
    const rel = parent ? `${parent}/${hidden}` : hidden;
    // A whiteout hides what lower layers hold (OCI image spec, "Whiteouts"): applied, it removes it; in a
    // snapshot (a fresh directory per layer) it becomes a 0/0 device, made at the end unless this same layer
    // has an entry of that name, which stands.
    const victim = resolveInRoot(root, rel);
    mkdirSync(fsPath(path.dirname(victim)), { recursive: true });
    if (options.whiteouts === 'apply') removeKnown(victim, later);
    else later.whiteouts.push(rel);
    return;
  }
  const known = later.dirs.get(parent);
  const target = known ? path.join(known, base) : resolveInRoot(root, name);
  if (!known) {
    mkdirSync(fsPath(path.dirname(target)), { recursive: true });
    later.dirs.set(parent, path.dirname(target));
  }
  const placed = await place(header, body, target, root, report, later, chown, options.cacheContent);
  if (!placed) return; // skipped
  if (header.type === 'directory') later.dirs.set(name, target);
  if (placed === 'done') {
    // owner, mode and times set through the descriptor
  } else if (header.type !== 'symlink') {
    if (chown) quietly(() => lchownSync(fsPath(target), header.uid, header.gid));
    if (header.type !== 'hardlink') chmodSync(fsPath(target), header.mode);
  } else if (chown) {
    // A symlink keeps its owner too (lchown does not follow it), as tar and BuildKit's unpacking keep it.
    quietly(() => lchownSync(fsPath(target), header.uid, header.gid));
  }
  if (Object.keys(header.xattrs ?? {}).length) later.xattrs.set(name, header.xattrs!);
  else later.xattrs.delete(name);
  if (header.type === 'directory') later.dirTimes.push([name, header.mtime]);
  else if (placed === 'done') return;
  else if (header.type === 'symlink') quietly(() => lutimesSync(fsPath(target), header.mtime, header.mtime));
  else if (header.type !== 'hardlink') utimesSync(fsPath(target), header.mtime, header.mtime);
}

const errnoText: Record<string, string> = {
  ENOTDIR: 'a parent is not a directory',
  EEXIST: 'a file of that name is in the way',
  EISDIR: 'a directory of that name is in the way',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many levels of symbolic links',
  ENOSPC: 'no space left on the device',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
};

/** What an entry asks for that cannot be done (a whiteout of "..", a hard link to a directory). */
class EntryError extends TarError {}

/**
 * What went wrong with one entry, named by the entry and never by a host path (the root is a temp dir). Errors of
 * the archive's stream (truncated, corrupt) are the archive's, not the entry's, and pass as they are.
 */
function entryError(header: TarHeader, e: unknown, root: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  const ours =
    e instanceof EntryError ||
    e instanceof RootedPathError ||
    (code !== undefined && (e as NodeJS.ErrnoException).syscall !== undefined);
  if (!ours) return e as Error;
  const why =
    e instanceof TarError || e instanceof RootedPathError
      ? e.message
      : code && errnoText[code]
        ? errnoText[code]
        : (e as Error).message.split(root).join('');
  const err = new TarError(`entry ${JSON.stringify(header.name)}: ${why}`);
  if (code === 'ENOSPC') (err as NodeJS.ErrnoException).code = code;
  return err;
}

function quietly(f: () => void): void {
  try {
    f();
  } catch {
    // best effort, as for an unprivileged extraction
  }
}

/** Files up to this size are read whole and written with one call; bigger ones are streamed. */
const smallFile = 4 * 1024 * 1024;

/**
 * Makes `target` with `make`, which fails with EEXIST when something is there: that is removed and `make` tried
 * once more. Creating first and looking only on a clash spares a stat per entry (a fresh snapshot has no clashes).
 */
function create(target: string, later: Deferred, make: () => void): void {
  try {
    make();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    removeKnown(target, later);
    make();
  }
}

/**
 * Makes the entry at `target`: 'done' when its owner, mode and times are set too (a small file, through its
 * descriptor), true when the caller sets them, false when it could not be made here (a device without root).
 */
async function place(
  header: TarHeader,
  body: AsyncIterable<Buffer> & { resume(): void },
  target: string,
  root: string,
  report: ExtractReport,
  later: Deferred,
  chown: boolean,
  cacheContent = false,
): Promise<boolean | 'done'> {
  if (header.type === 'directory') {
    body.resume();
    try {
      mkdirSync(fsPath(target));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (lstatSync(fsPath(target)).isDirectory()) return true; // kept, with what is in it
      removeKnown(target, later);
      mkdirSync(fsPath(target));
    }
    return true;
  }
  switch (header.type) {
    case 'file': {
      if (header.size > smallFile) {
        if (lstatSync(fsPath(target), { throwIfNoEntry: false })) removeKnown(target, later);
        await pipeline(body, createWriteStream(fsPath(target), { mode: 0o600, flags: 'wx' }));
        return true;
      }
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c);
      const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      let fd = -1;
      // O_EXCL: never through whatever is at the name (a symlink an earlier entry made is replaced, not followed).
      create(target, later, () => {
        fd = openSync(fsPath(target), 'wx', 0o600);
      });
      try {
        for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
        if (chown) quietly(() => fchownSync(fd, header.uid, header.gid));
        fchmodSync(fd, header.mode);
        futimesSync(fd, header.mtime, header.mtime);
      } finally {
        closeSync(fd);
      }
      return 'done';
    }
    case 'symlink':
      body.resume();
      create(target, later, () => symlinkSync(fsPath(header.linkname ?? ''), fsPath(target)));
      return true;
    case 'hardlink': {
      body.resume();
      if (lstatSync(fsPath(target), { throwIfNoEntry: false })) removeKnown(target, later);
      // A hard link names an earlier entry of the archive (inside the root, never followed through a last symlink).
      const linked = cleanEntryName(header.linkname ?? '');
      const from = linked === '' ? undefined : resolveInRoot(root, linked);
      const st = from === undefined ? undefined : lstatSync(fsPath(from), { throwIfNoEntry: false });
      if (!from || !st)
        throw new EntryError(
          `hard link to ${JSON.stringify(header.linkname ?? '')}, which is not in the archive before it`,
        );
      if (st.isDirectory()) throw new EntryError(`hard link to ${JSON.stringify(header.linkname)}, a directory`);
      linkSync(fsPath(from), fsPath(target));
      return true;
    }
    case 'fifo':
      body.resume();
      if (lstatSync(fsPath(target), { throwIfNoEntry: false })) removeKnown(target, later);
      if (tool('mkfifo', ['-m', (header.mode & 0o777).toString(8), target])) return true;
      report.skipped.push(`fifo ${header.name}`);
      return false;
    case 'char':
    case 'block':
      body.resume();
      if (cacheContent) {
        report.skipped.push(`device ${header.name} (a cache holds no devices)`);
        return false;
      }
      if (lstatSync(fsPath(target), { throwIfNoEntry: false })) removeKnown(target, later);
      if (
        tool('mknod', [
          target,
          header.type === 'char' ? 'c' : 'b',
          String(header.devmajor ?? 0),
          String(header.devminor ?? 0),
        ])
      )
        return true;
      report.skipped.push(`device ${header.name} (needs root)`);
      return false;
  }
  return false;
}
