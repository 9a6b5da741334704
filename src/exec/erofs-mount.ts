// RUN's lowers as EROFS tar indexes (layer/erofs.ts) mounted read-only, each with its tar as the index's second
// device: a base layer becomes a lower in milliseconds, where unpacking it created thousands of files.
//
// How they are mounted is judged once per process from the kernel (erofsChoice), and confirmed by the first mount:
//   file  the index and its tar as files (Linux 6.12's file-backed EROFS mounts): no loop device at all. mount(8)
//         would set up a loop device for a file by itself, so mount(2) is called from python3 (ctypes): one helper
//         process for the build (MountHelper), many mounts a request.
//   loop  the tar on a read-only loop device (`losetup -r`) and the index through mount's own `-o loop`; both are
//         detached as soon as the mount holds them (the kernel frees them when it unmounts).
//   none  no EROFS in the kernel, no root, or the first mount refused either way (ErofsUnavailableError): the
//         layers are unpacked into directories as before, said once in the log.
// Nothing is mounted to find this out: a probe cost a python3 start and two mounts on every build's way.
// HOIST_LOWERS=directories|erofs|erofs-loop forces a kind (the tests run both; a forced kind never falls back).
// Every mount is under a directory of the store's tmp/ named by this process's pid: what a killed build leaves is
// unmounted by its helper as hoist's end of the pipe closes, else by the next build's sweep (leftovers.ts).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { release } from 'node:os';
import path from 'node:path';
import { onInterrupt, removeSync, unmountSync } from './cleanup.js';
import { pythonXattrs } from '../layer/xattr.js';
import { python3, runProcess } from './process.js';

export type ErofsMode = 'file' | 'loop';

export interface ErofsChoice {
  mode?: ErofsMode;
  /** why the layers are unpacked instead (said once in the log) */
  why?: string;
}

/**
 * mount(2) and umount2(2) from python3 (ctypes): one process for the whole build, started while the base downloads,
 * asked one line of JSON at a time. When hoist goes (its end of the pipe closes: an exit, a SIGKILL), it detaches
 * whatever it mounted that is still mounted, so that a killed build leaves no index mounted.
 */
const helper = `
import base64, ctypes, json, os, signal, sys
${pythonXattrs}
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
libc = ctypes.CDLL(None, use_errno=True)
mine = []
def loop(path):
    # LOOP_CTL_GET_FREE, then LOOP_CONFIGURE (Linux 5.8) read-only and autoclear: the device goes with its last user.
    import fcntl, struct
    backing = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        control = os.open('/dev/loop-control', os.O_RDWR | os.O_CLOEXEC)
        try:
            for _ in range(20):
                n = fcntl.ioctl(control, 0x4C82)
                dev = os.open('/dev/loop%d' % n, os.O_RDONLY | os.O_CLOEXEC)
                config = bytearray(304)
                struct.pack_into('=I', config, 0, backing)
                struct.pack_into('=I', config, 60, 1 | 4)
                try:
                    fcntl.ioctl(dev, 0x4C0A, bytes(config))
                    return dev, '/dev/loop%d' % n
                except OSError as err:
                    os.close(dev)
                    if err.errno != 16:
                        raise
            raise OSError(16, 'no free loop device')
        finally:
            os.close(control)
    finally:
        os.close(backing)
def serve():
    for line in sys.stdin:
        out = []
        for item in json.loads(line):
            if item[0] == 'mount':
                r = libc.mount(item[1].encode(), item[3].encode(), b'erofs', 1, ('device=' + item[2]).encode())
                e = ctypes.get_errno()
                if r == 0:
                    mine.append(item[3])
            elif item[0] == 'mount-loop':
                held = []
                try:
                    meta, meta_dev = loop(item[1])
                    held.append(meta)
                    tar, tar_dev = loop(item[2])
                    held.append(tar)
                    r = libc.mount(meta_dev.encode(), item[3].encode(), b'erofs', 1, ('device=' + tar_dev).encode())
                    e = ctypes.get_errno()
                    if r == 0:
                        mine.append(item[3])
                except OSError as err:
                    r, e = -1, err.errno or 5
                for fd in held:
                    os.close(fd)
            elif item[0] == 'overlay':
                # (the lower dirs named relative to item[1], as mount(8) run there resolves them)
                os.chdir(item[1])
                try:
                    r = libc.mount(b'overlay', item[3].encode(), b'overlay', 1 if item[4] == 'ro' else 0, item[2].encode())
                    e = ctypes.get_errno()
                finally:
                    os.chdir('/')
                if r == 0:
                    mine.append(item[3])
            elif item[0] == 'xattrs':
                # [path, name, value] (base64) of the names item[2:] on everything under item[1], the root included
                names = [n.encode() for n in item[2:]]
                found = []
                try:
                    xattr_walk(os.fsencode(item[1]), names, lambda p, n, v: found.append([base64.b64encode(x).decode() for x in (p, n, v)]))
                    out.append(found)
                except Exception as err:
                    out.append(str(err) or 'failed')
                continue
            else:
                r = libc.umount2(item[1].encode(), 0)
                e = ctypes.get_errno()
                if r != 0 and e == 16:
                    r = libc.umount2(item[1].encode(), 2)
                    e = ctypes.get_errno()
                if r == 0 and item[1] in mine:
                    mine.remove(item[1])
            out.append('' if r == 0 else os.strerror(e))
        sys.stdout.write(json.dumps(out) + '\\n')
        sys.stdout.flush()
try:
    serve()
except Exception:
    pass
finally:
    for m in reversed(mine):
        libc.umount2(m.encode(), 2)
`;

class MountHelper {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (v: string[]) => void; reject: (e: Error) => void }[] = [];
  private buffered = '';
  private failure: Error | undefined;

  constructor() {
    this.child = spawn(python3() ?? 'python3', ['-c', helper], { stdio: ['pipe', 'pipe', 'pipe'] });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const w of this.waiting.splice(0)) w.reject(this.failure);
    };
    this.child.on('error', (e) => fail(new Error(`python3: ${e.message}`)));
    let stderr = '';
    this.child.stderr.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2000)));
    this.child.on('exit', (code) =>
      fail(new Error(`python3 exited (${code}): ${stderr.trim().split('\n').at(-1) ?? ''}`)),
    );
    this.child.stdin.on('error', () => undefined);
    this.child.stdout.on('data', (d: Buffer) => {
      this.buffered += d.toString();
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiting.shift()?.resolve(JSON.parse(line) as string[]);
        this.idle();
      }
    });
    this.idle();
  }

  /** Kept from holding hoist open while nothing is asked of it. */
  private idle(): void {
    if (this.waiting.length > 0) return;
    this.child.unref();
    (this.child.stdout as unknown as { unref?: () => void }).unref?.();
    (this.child.stderr as unknown as { unref?: () => void }).unref?.();
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
  }

  ask(items: string[][]): Promise<string[]> {
    if (this.failure) return Promise.reject(this.failure);
    this.child.ref();
    (this.child.stdout as unknown as { ref?: () => void }).ref?.();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${JSON.stringify(items)}\n`);
    });
  }
}

let mountHelper: MountHelper | undefined;
const python = (items: string[][]): Promise<string[]> => (mountHelper ??= new MountHelper()).ask(items);

/**
 * A RUN step's overlay mounted by the build's mount helper instead of a mount(8) process a step (and unmounted by it:
 * umount2, detached when busy): '' when done, else the kernel's reason. Undefined where there is no python3, or the
 * helper could not be asked: then mount(8). `cwd`: where the lower dirs' relative names in `options` are resolved.
 */
export async function helperMountOverlay(
  cwd: string,
  options: string,
  target: string,
  readOnly: boolean,
): Promise<string | undefined> {
  if (!python3()) return undefined;
  const said = (await python([['overlay', cwd, options, target, readOnly ? 'ro' : 'rw']]).catch(() => undefined))?.[0];
  return said ? `mount: ${said}` : said;
}

/**
 * The attributes `names` of everything under `root` (the root included), read by the build's mount helper (no
 * process a step: a getfattr run is ~4 ms): [path, name, value] each, or undefined where there is no python3 or the
 * helper could not be asked (then layer/xattr.ts's tools).
 */
export async function helperXattrTree(root: string, names: readonly string[]): Promise<Buffer[][] | undefined> {
  if (!python3()) return undefined;
  const said = (await python([['xattrs', root, ...names]]).catch(() => undefined))?.[0] as unknown;
  if (!Array.isArray(said)) return undefined;
  return said.map((t: string[]) => t.map((x) => Buffer.from(x, 'base64')));
}

/** `target` unmounted by the mount helper (detached when busy): whether it could. */
export async function helperUnmount(target: string): Promise<boolean> {
  if (!python3()) return false;
  return (await python([['umount', target]]).catch(() => ['?']))[0] === '';
}

/** No index could be mounted here, either way (the executor unpacks the layers instead, unless a kind was forced). */
export class ErofsUnavailableError extends Error {
  override readonly name = 'ErofsUnavailableError';
}

export interface IndexToMount {
  tar: string;
  index: string;
}

/** Mounts of EROFS indexes made by one executor, all undone by `close()` (or by a signal's clean-up). */
export class ErofsMounts {
  private readonly mounted: string[] = [];
  private counter = 0;
  private forget: (() => void) | undefined;

  /** why file-backed mounts were given up for loop devices, if they were */
  refusedFileBacked: string | undefined;
  /** the python3 helper mounts (and sets up loop devices); else mount(8) and losetup */
  private readonly viaHelper = python3() !== undefined;

  constructor(
    public mode: ErofsMode,
    /** a directory of the store's tmp/ named by this process's pid */
    private readonly dir: string,
  ) {}

  /**
   * Mounts each index with its tar at a new directory; answers the directories, in order. File-backed mounts the
   * kernel refuses (older than 6.12, or built without them) turn this set to loop devices for good.
   */
  async mount(list: readonly IndexToMount[]): Promise<string[]> {
    if (list.length === 0) return [];
    await mkdir(this.dir, { recursive: true });
    this.forget ??= onInterrupt(() => {
      for (const m of this.mounted.splice(0).reverse()) unmountSync(m);
      removeSync(this.dir);
    });
    const targets = list.map(() => path.join(this.dir, String(this.counter++)));
    for (const t of targets) await mkdir(t);
    let from = 0;
    if (this.mode === 'file') {
      const errors = await python(list.map((l, i) => ['mount', l.index, l.tar, targets[i]])).catch((e: Error) =>
        list.map(() => e.message),
      );
      for (const [i, e] of errors.entries()) if (!e) this.mounted.push(targets[i]);
      from = errors.findIndex((e) => e !== '');
      if (from < 0) return targets;
      if (this.mounted.length > 0) throw new Error(`cannot mount the EROFS index ${list[from].index}: ${errors[from]}`);
      this.refusedFileBacked = errors[from];
      this.mode = 'loop';
      from = 0;
    }
    if (this.viaHelper) {
      // Loop devices set up by the helper itself (ioctls): a millisecond a layer, where losetup and mount cost three
      // processes; without python3, those.
      const errors = await python(
        list.slice(from).map((l, i) => ['mount-loop', l.index, l.tar, targets[from + i]]),
      ).catch((e: Error) => list.slice(from).map(() => e.message));
      for (const [i, e] of errors.entries()) if (!e) this.mounted.push(targets[from + i]);
      const failed = errors.findIndex((e) => e !== '');
      if (failed < 0) return targets;
      const why = `cannot mount the EROFS index ${list[from + failed].index} on loop devices: ${errors[failed]}`;
      if (this.mounted.length === 0)
        throw new ErofsUnavailableError(
          `EROFS indexes cannot be mounted here (${this.refusedFileBacked ? `file-backed: ${this.refusedFileBacked}; ` : ''}on loop devices: ${errors[failed]})`,
        );
      throw new Error(why);
    }
    for (let i = from; i < list.length; i++) {
      try {
        await this.mountLoop(list[i], targets[i]);
      } catch (e) {
        // Nothing mounted yet, either way: this machine cannot mount indexes at all.
        if (this.mounted.length === 0)
          throw new ErofsUnavailableError(
            `EROFS indexes cannot be mounted here (${this.refusedFileBacked ? `file-backed: ${this.refusedFileBacked}; ` : ''}on loop devices: ${(e as Error).message})`,
          );
        throw e;
      }
    }
    return targets;
  }

  private async mountLoop(l: IndexToMount, target: string): Promise<void> {
    const loop = await runProcess('losetup', ['--show', '-f', '-r', l.tar]);
    const device = loop.stdout.trim();
    if (loop.status !== 0 || !device.startsWith('/dev/'))
      throw new Error(
        `cannot attach ${l.tar} to a loop device: ${(loop.stderr || loop.error?.message || '').trim().split('\n')[0]}`,
      );
    try {
      const r = await runProcess('mount', ['-t', 'erofs', '-o', `ro,loop,device=${device}`, l.index, target]);
      if (r.status !== 0)
        throw new Error(
          `cannot mount the EROFS index ${l.index}: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`,
        );
      this.mounted.push(target);
    } finally {
      // Detached now: while the mount holds it, the kernel only marks it to go when the mount goes.
      await runProcess('losetup', ['-d', device]);
    }
  }

  /** Unmounts everything this set mounted and removes its directory. */
  async close(): Promise<void> {
    const all = this.mounted.splice(0).reverse();
    if (all.length && this.viaHelper) {
      const errors = await python(all.map((m) => ['umount', m])).catch(() => all.map(() => 'python3 failed'));
      for (const [i, e] of errors.entries()) if (e) unmountSync(all[i]);
    } else {
      for (const m of all) unmountSync(m);
    }
    this.forget?.();
    this.forget = undefined;
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The kernel's release as numbers (6.12.5-foo → [6, 12]). */
function kernelRelease(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** Whether this kernel has EROFS: registered already, or built as a module mount(2) will load. */
function erofsInKernel(): boolean {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  if (/\terofs$/m.test(read('/proc/filesystems')) || existsSync('/sys/fs/erofs')) return true;
  const modules = `/lib/modules/${release()}`;
  return /\/erofs\.ko/.test(read(`${modules}/modules.dep`)) || /\/erofs\.ko/.test(read(`${modules}/modules.builtin`));
}

let chosen: ErofsChoice | undefined;

/**
 * How EROFS indexes are to be mounted here, judged without mounting anything (see the top of this file): file-backed
 * on Linux 6.12 and later with python3, else on loop devices; none without root or without EROFS in the kernel. The
 * first real mount confirms it (ErofsMounts falls back from file-backed to loop devices, and the executor from
 * indexes to directories, saying so); a forced kind that cannot be is an error.
 */
export function erofsChoice(env: NodeJS.ProcessEnv = process.env): ErofsChoice & { forced?: string } {
  chosen ??= guess(env.HOIST_LOWERS);
  return chosen;
}

function guess(forced: string | undefined): ErofsChoice & { forced?: string } {
  if (forced !== undefined && !['directories', 'erofs', 'erofs-loop'].includes(forced))
    throw new Error(`HOIST_LOWERS=${forced}: expected directories, erofs or erofs-loop`);
  if (forced === 'directories') return { why: 'HOIST_LOWERS=directories' };
  const cannot =
    process.getuid?.() !== 0
      ? 'EROFS indexes are mounted as root only'
      : !erofsInKernel()
        ? `this kernel (${release()}) has no EROFS`
        : undefined;
  if (cannot && forced) throw new Error(`HOIST_LOWERS=${forced}: ${cannot}`);
  if (cannot) return { why: cannot };
  const [major, minor] = kernelRelease();
  const fileBacked = (major > 6 || (major === 6 && minor >= 12)) && python3() !== undefined;
  return { mode: forced === 'erofs-loop' || !fileBacked ? 'loop' : 'file', ...(forced ? { forced } : {}) };
}

/**
 * Starts the mount helper ahead (python3 takes tens of milliseconds to start, ~0.1 s from a cold disk): while the
 * executor is chosen and the layers download. Only as root with python3, where it may be asked to mount.
 */
export function prestartHelper(): void {
  if (process.getuid?.() === 0 && python3()) mountHelper ??= new MountHelper();
}
