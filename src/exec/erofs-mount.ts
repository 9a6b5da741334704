// RUN's lowers as EROFS tar indexes (layer/erofs.ts) mounted read-only, each with its tar as the index's second
// device: a base layer becomes a lower in milliseconds, where unpacking it created thousands of files.
//
// How they are mounted is chosen once per process, by mounting an index of an empty tar:
//   file  the index and its tar as files (Linux 6.12's file-backed EROFS mounts): no loop device at all. mount(8)
//         would set up a loop device for a file by itself, so mount(2) is called from python3 (ctypes), many at once.
//   loop  the tar on a read-only loop device (`losetup -r`) and the index through mount's own `-o loop`; both are
//         detached as soon as the mount holds them (the kernel frees them when it unmounts).
//   none  no EROFS in the kernel, no loop devices, no root: the layers are unpacked into directories as before.
// HOIST_LOWERS=directories|erofs|erofs-loop forces a kind (the tests run both).
// Every mount is under a directory of the store's tmp/ named by this process's pid: what a killed build leaves is
// unmounted by the next build's sweep (leftovers.ts), like its overlays.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ErofsIndexBuilder } from '../layer/erofs.js';
import { onInterrupt, removeSync, unmountSync } from './cleanup.js';
import { runProcess } from './process.js';

export type ErofsMode = 'file' | 'loop';

export interface ErofsChoice {
  mode?: ErofsMode;
  /** why the layers are unpacked instead (said once in the log) */
  why?: string;
}

/** mount(2) and umount2(2) for a list of paths, from python3: one process for every mount of a step's lowers. */
const helper = `
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
out = []
for item in json.loads(sys.argv[1]):
    if item[0] == 'mount':
        r = libc.mount(item[1].encode(), item[3].encode(), b'erofs', 1, ('device=' + item[2]).encode())
    else:
        r = libc.umount2(item[1].encode(), 0)
        if r != 0 and ctypes.get_errno() == 16:
            r = libc.umount2(item[1].encode(), 2)
    out.append('' if r == 0 else os.strerror(ctypes.get_errno()))
print(json.dumps(out))
`;

async function python(items: string[][]): Promise<string[]> {
  const r = await runProcess('python3', ['-c', helper, JSON.stringify(items)]);
  if (r.status !== 0) throw new Error(`python3: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').at(-1)}`);
  return JSON.parse(r.stdout) as string[];
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

  constructor(
    readonly mode: ErofsMode,
    /** a directory of the store's tmp/ named by this process's pid */
    private readonly dir: string,
  ) {}

  /** Mounts each index with its tar at a new directory; answers the directories, in order. */
  async mount(list: readonly IndexToMount[]): Promise<string[]> {
    if (list.length === 0) return [];
    await mkdir(this.dir, { recursive: true });
    this.forget ??= onInterrupt(() => {
      for (const m of this.mounted.splice(0).reverse()) unmountSync(m);
      removeSync(this.dir);
    });
    const targets = list.map(() => path.join(this.dir, String(this.counter++)));
    for (const t of targets) await mkdir(t);
    if (this.mode === 'file') {
      const errors = await python(list.map((l, i) => ['mount', l.index, l.tar, targets[i]]));
      for (const [i, e] of errors.entries()) if (!e) this.mounted.push(targets[i]);
      const failed = errors.findIndex((e) => e !== '');
      if (failed >= 0) throw new Error(`cannot mount the EROFS index ${list[failed].index}: ${errors[failed]}`);
      return targets;
    }
    for (const [i, l] of list.entries()) await this.mountLoop(l, targets[i]);
    return targets;
  }

  private async mountLoop(l: IndexToMount, target: string): Promise<void> {
    const loop = await runProcess('losetup', ['--show', '-f', '-r', l.tar]);
    const device = loop.stdout.trim();
    if (loop.status !== 0 || !device.startsWith('/dev/')) throw new Error(`cannot attach ${l.tar} to a loop device: ${(loop.stderr || loop.error?.message || '').trim()}`);
    try {
      const r = await runProcess('mount', ['-t', 'erofs', '-o', `ro,loop,device=${device}`, l.index, target]);
      if (r.status !== 0) throw new Error(`cannot mount the EROFS index ${l.index}: ${(r.stderr || r.error?.message || '').trim()}`);
      this.mounted.push(target);
    } finally {
      // Detached now: while the mount holds it, the kernel only marks it to go when the mount goes.
      await runProcess('losetup', ['-d', device]);
    }
  }

  /** Unmounts everything this set mounted and removes its directory. */
  async close(): Promise<void> {
    const all = this.mounted.splice(0).reverse();
    if (all.length && this.mode === 'file') {
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

let chosen: Promise<ErofsChoice> | undefined;

/** How EROFS indexes are mounted here (see the top of this file); tried once per process, in `scratch`. */
export function erofsChoice(scratch: string, env: NodeJS.ProcessEnv = process.env): Promise<ErofsChoice> {
  chosen ??= choose(scratch, env.HOIST_LOWERS);
  return chosen;
}

async function choose(scratch: string, forced: string | undefined): Promise<ErofsChoice> {
  if (forced === 'directories') return { why: 'HOIST_LOWERS=directories' };
  if (process.getuid?.() !== 0) return { why: 'EROFS indexes are mounted as root only' };
  const modes: ErofsMode[] = forced === 'erofs-loop' ? ['loop'] : forced === 'erofs' ? ['file', 'loop'] : ['file', 'loop'];
  const dir = await mkdtemp(path.join(scratch, `${process.pid}-erofs-probe-`));
  const why: string[] = [];
  try {
    const lower = { tar: path.join(dir, 'empty.tar'), index: path.join(dir, 'empty.erofs') };
    await writeFile(lower.tar, Buffer.alloc(1024));
    await writeFile(lower.index, new ErofsIndexBuilder().finish(1024));
    for (const mode of modes) {
      const probe = new ErofsMounts(mode, path.join(dir, mode));
      try {
        await probe.mount([lower]);
        return { mode };
      } catch (e) {
        why.push(`${mode === 'file' ? 'file-backed' : 'on loop devices'}: ${(e as Error).message.replace(lower.index, 'a test index')}`);
      } finally {
        await probe.close();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  const answer = { why: `EROFS indexes cannot be mounted here (${why.join('; ')})` };
  if (forced) throw new Error(`HOIST_LOWERS=${forced}: ${answer.why}`);
  return answer;
}
