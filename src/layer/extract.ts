// Unpacks a layer tar into a directory without ever writing outside it: names are cleaned ("..", "/" and "./"
// cannot climb out), and every parent directory is resolved inside the root the way a chroot would see it, so a
// symlink in an earlier entry or layer (`etc -> /etc`, `x -> ../../..`) leads back into the root, never out.
// Whiteouts either delete what they name (applying layers one over another into one tree) or become overlayfs
// whiteouts (a snapshot used as a lower dir).
import { spawnSync } from 'node:child_process';
import { chmodSync, createWriteStream, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readTar, TarError, type TarHeader, TarWriter } from './tar.js';

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
}

export interface ExtractReport {
  entries: number;
  /** what could not be made here (device nodes without root, xattrs without setfattr) */
  skipped: string[];
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

/**
 * The host path of `name` inside `root`, resolving symlinks among its parents within the root (absolute targets
 * are relative to the root, `..` stops at it). The last component is not followed: it is what gets replaced.
 */
export function resolveInRoot(root: string, name: string): string {
  const pending = cleanEntryName(name).split('/').filter(Boolean);
  const last = pending.pop();
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.' || part === '') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const p = path.join(root, ...done, part);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) {
      done.push(part);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 255) throw new TarError(`too many levels of symbolic links resolving ${JSON.stringify(name)}`);
      const target = readlinkSync(p);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return last === undefined ? root : path.join(root, ...done, last);
}

function removeAll(p: string): void {
  rmSync(p, { recursive: true, force: true });
}

/**
 * 0/0 character devices at `paths` (inside `root`, parents resolved there just before): one GNU tar run over an
 * archive of device entries (Node has no mknod), else mknod for each.
 */
async function makeWhiteouts(root: string, paths: string[]): Promise<boolean> {
  if (paths.length === 0) return true;
  const w = new TarWriter();
  const chunks: Buffer[] = [];
  w.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((r) => w.stream.once('end', r));
  for (const p of paths) await w.entry({ name: path.relative(root, p), type: 'char', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, devmajor: 0, devminor: 0 });
  await w.finish();
  await ended;
  const r = spawnSync('tar', ['-x', '--numeric-owner', '--no-overwrite-dir', '-C', root, '-f', '-'], { input: Buffer.concat(chunks), stdio: ['pipe', 'ignore', 'ignore'] });
  if (r.status === 0) return true;
  return paths.every((p) => lstatSync(p, { throwIfNoEntry: false }) || tool('mknod', [p, 'c', '0', '0']));
}

/** Runs `program args… paths…` over all paths, as many per run as fit comfortably on a command line. */
function inBatches(program: string, args: string[], paths: string[]): boolean {
  let ok = true;
  for (let i = 0; i < paths.length;) {
    const batch: string[] = [];
    let bytes = 0;
    while (i < paths.length && (batch.length === 0 || bytes + paths[i].length < 64 * 1024)) {
      bytes += paths[i].length + 1;
      batch.push(paths[i++]);
    }
    ok = tool(program, [...args, ...batch]) && ok;
  }
  return ok;
}

function tool(program: string, args: string[]): boolean {
  return spawnSync(program, args, { stdio: 'ignore' }).status === 0;
}

export async function extractLayer(source: AsyncIterable<Buffer | Uint8Array>, root: string, options: ExtractOptions): Promise<ExtractReport> {
  const chown = options.chown ?? process.getuid?.() === 0;
  await mkdir(root, { recursive: true });
  const report: ExtractReport = { entries: 0, skipped: [] };
  const dirTimes: [string, number][] = [];
  const whiteouts: string[] = [];
  const opaqueDirs: string[] = [];
  // Metadata calls are synchronous: microseconds each, where a trip through the thread pool cost tens of
  // microseconds per call and ten or more calls per entry (a 200 MB base took seconds more to unpack).
  for await (const { header, body } of readTar(source)) {
    report.entries++;
    options.headers?.push(header);
    const name = cleanEntryName(header.name);
    if (name === '') {
      body.resume();
      continue;
    }
    const base = path.posix.basename(name);
    const target = resolveInRoot(root, name);
    mkdirSync(path.dirname(target), { recursive: true });
    if (options.whiteouts !== 'none' && base === opaqueWhiteout) {
      const dir = path.dirname(target);
      if (options.whiteouts === 'apply') {
        // Everything the lower layers put in this directory is gone; this layer's own entries follow it.
        for (const e of readdirSync(dir)) removeAll(path.join(dir, e));
      } else {
        opaqueDirs.push(dir);
      }
      body.resume();
      continue;
    }
    if (options.whiteouts !== 'none' && base.startsWith(whiteoutPrefix)) {
      const victim = path.join(path.dirname(target), base.slice(whiteoutPrefix.length));
      // A whiteout hides what lower layers hold (OCI image spec, "Whiteouts"): applied, it removes it; in a
      // snapshot (a fresh directory per layer) it becomes a 0/0 device, made at the end unless this same layer
      // has an entry of that name, which stands.
      if (options.whiteouts === 'apply') removeAll(victim);
      else whiteouts.push(victim);
      body.resume();
      continue;
    }
    await place(header, body, target, root, report);
    if (!lstatSync(target, { throwIfNoEntry: false })) continue; // skipped above
    if (header.type !== 'symlink') {
      if (chown) quietly(() => lchownSync(target, header.uid, header.gid));
      if (header.type !== 'hardlink') chmodSync(target, header.mode);
    }
    for (const [k, v] of Object.entries(header.xattrs ?? {})) {
      if (!tool('setfattr', ['-h', '-n', k, '-v', `0s${v.toString('base64')}`, target])) report.skipped.push(`xattr ${k} of ${name}`);
    }
    if (header.type === 'directory') dirTimes.push([target, header.mtime]);
    else if (header.type === 'symlink') quietly(() => lutimesSync(target, header.mtime, header.mtime));
    else if (header.type !== 'hardlink') utimesSync(target, header.mtime, header.mtime);
  }
  // Overlay whiteouts all at once (a tool run per whiteout cost milliseconds each, for thousands of them). Their
  // paths are resolved inside the root again: a later entry of the layer may have made a parent a symlink, and
  // the tools would follow it out of the root.
  const again = (p: string) => resolveInRoot(root, path.relative(root, p));
  const devices = whiteouts.map(again).filter((w) => !lstatSync(w, { throwIfNoEntry: false }));
  if (!(await makeWhiteouts(root, devices))) report.skipped.push(`${devices.length} whiteouts (needs root)`);
  if (!inBatches('setfattr', ['-h', '-n', 'trusted.overlay.opaque', '-v', 'y', '--'], opaqueDirs.map(again))) report.skipped.push(`${opaqueDirs.length} opaque whiteouts (needs setfattr)`);
  // Directory times last: creating their children changed them.
  for (const [d, t] of dirTimes.reverse()) quietly(() => utimesSync(d, t, t));
  return report;
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

async function place(header: TarHeader, body: AsyncIterable<Buffer> & { resume(): void }, target: string, root: string, report: ExtractReport): Promise<void> {
  const existing = lstatSync(target, { throwIfNoEntry: false });
  if (header.type === 'directory') {
    if (existing && !existing.isDirectory()) removeAll(target);
    if (!existing?.isDirectory()) mkdirSync(target);
    body.resume();
    return;
  }
  if (existing) removeAll(target);
  switch (header.type) {
    case 'file':
      if (header.size <= smallFile) {
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c);
        writeFileSync(target, Buffer.concat(chunks), { mode: 0o600 });
      } else {
        await pipeline(body, createWriteStream(target, { mode: 0o600 }));
      }
      return;
    case 'symlink':
      body.resume();
      symlinkSync(header.linkname ?? '', target);
      return;
    case 'hardlink': {
      body.resume();
      linkSync(resolveInRoot(root, header.linkname ?? ''), target);
      return;
    }
    case 'fifo':
      body.resume();
      if (!tool('mkfifo', ['-m', (header.mode & 0o777).toString(8), target])) report.skipped.push(`fifo ${header.name}`);
      return;
    case 'char':
    case 'block':
      body.resume();
      if (!tool('mknod', [target, header.type === 'char' ? 'c' : 'b', String(header.devmajor ?? 0), String(header.devminor ?? 0)])) {
        report.skipped.push(`device ${header.name} (needs root)`);
      }
      return;
  }
}
