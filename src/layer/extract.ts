// Unpacks a layer tar into a directory without ever writing outside it: names are cleaned ("..", "/" and "./"
// cannot climb out), and every parent directory is resolved inside the root the way a chroot would see it, so a
// symlink in an earlier entry or layer (`etc -> /etc`, `x -> ../../..`) leads back into the root, never out.
// Whiteouts either delete what they name (applying layers one over another into one tree) or become overlayfs
// whiteouts (a snapshot used as a lower dir).
import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readTar, TarError, type TarHeader } from './tar.js';

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
export async function resolveInRoot(root: string, name: string): Promise<string> {
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
    let st;
    try {
      st = await lstat(p);
    } catch {
      done.push(part);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 255) throw new TarError(`too many levels of symbolic links resolving ${JSON.stringify(name)}`);
      const target = await readlink(p);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return last === undefined ? root : path.join(root, ...done, last);
}

async function removeAll(p: string): Promise<void> {
  await rm(p, { recursive: true, force: true });
}

function tool(program: string, args: string[]): boolean {
  return spawnSync(program, args, { stdio: 'ignore' }).status === 0;
}

export async function extractLayer(source: AsyncIterable<Buffer | Uint8Array>, root: string, options: ExtractOptions): Promise<ExtractReport> {
  const chown = options.chown ?? process.getuid?.() === 0;
  await mkdir(root, { recursive: true });
  const report: ExtractReport = { entries: 0, skipped: [] };
  const dirTimes: [string, number][] = [];
  for await (const { header, body } of readTar(source)) {
    report.entries++;
    const name = cleanEntryName(header.name);
    if (name === '') {
      body.resume();
      continue;
    }
    const base = path.posix.basename(name);
    const target = await resolveInRoot(root, name);
    await mkdir(path.dirname(target), { recursive: true });
    if (options.whiteouts !== 'none' && base === opaqueWhiteout) {
      const dir = path.dirname(target);
      if (options.whiteouts === 'apply') {
        // Everything the lower layers put in this directory is gone; this layer's own entries follow it.
        for (const e of await readdir(dir)) await removeAll(path.join(dir, e));
      } else if (!tool('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir])) {
        report.skipped.push(`opaque whiteout of ${path.posix.dirname(name)} (needs setfattr)`);
      }
      continue;
    }
    if (options.whiteouts !== 'none' && base.startsWith(whiteoutPrefix)) {
      const victim = path.join(path.dirname(target), base.slice(whiteoutPrefix.length));
      await removeAll(victim);
      if (options.whiteouts === 'overlay' && !tool('mknod', [victim, 'c', '0', '0'])) report.skipped.push(`whiteout of ${name} (needs root)`);
      continue;
    }
    await place(header, body, target, root, report);
    if (!(await lstat(target).catch(() => undefined))) continue; // skipped above
    if (header.type !== 'symlink') {
      if (chown) await lchown(target, header.uid, header.gid).catch(() => undefined);
      if (header.type !== 'hardlink') await chmod(target, header.mode);
    }
    for (const [k, v] of Object.entries(header.xattrs ?? {})) {
      if (!tool('setfattr', ['-h', '-n', k, '-v', `0s${v.toString('base64')}`, target])) report.skipped.push(`xattr ${k} of ${name}`);
    }
    if (header.type === 'directory') dirTimes.push([target, header.mtime]);
    else if (header.type === 'symlink') await lutimes(target, header.mtime, header.mtime).catch(() => undefined);
    else if (header.type !== 'hardlink') await utimes(target, header.mtime, header.mtime);
  }
  // Directory times last: creating their children changed them.
  for (const [d, t] of dirTimes.reverse()) await utimes(d, t, t).catch(() => undefined);
  return report;
}

async function place(header: TarHeader, body: AsyncIterable<Buffer> & { resume(): void }, target: string, root: string, report: ExtractReport): Promise<void> {
  const existing = await lstat(target).catch(() => undefined);
  if (header.type === 'directory') {
    if (existing && !existing.isDirectory()) await removeAll(target);
    if (!existing?.isDirectory()) await mkdir(target);
    body.resume();
    return;
  }
  if (existing) await removeAll(target);
  switch (header.type) {
    case 'file':
      await pipeline(body, createWriteStream(target, { mode: 0o600 }));
      return;
    case 'symlink':
      body.resume();
      await symlink(header.linkname ?? '', target);
      return;
    case 'hardlink': {
      body.resume();
      const source = await resolveInRoot(root, header.linkname ?? '');
      await link(source, target);
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
