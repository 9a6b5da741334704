// How RUN steps run: the executor, one per build, chosen once. Two backends sit behind the same interface, and the
// solver does not ask which one it has:
// - runc (overlay-executor.ts): the step's root is an overlay of the image's unpacked layers (snapshots in the
//   store) over a fresh upper dir, the process runs in the OCI runtime, the upper dir is the layer. Needs mounts
//   and namespaces (root on a VM, or sudo).
// - proot / chroot (directory-executor.ts): where the job itself runs in a container that may not mount (GitLab's
//   and Kubernetes executors), each stage's root is a real directory the layers are unpacked into; a step is
//   entered through proot (ptrace: /proc, /dev, /sys and the mounts bound in without privileges) or chroot, and
//   the layer is what a walk after the step finds changed since the walk before it (tree-diff.ts).
import { runProcess } from './process.js';
import { mkdir, mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FsIndex } from '../layer/fs-index.js';
import type { Ulimit } from './sandbox.js';
import type { Layer } from '../layer/layer.js';
import type { Platform } from '../image/platform.js';
import type { PinOptions } from '../layer/pinned.js';
import type { LayerInProgress, WrittenLayer } from '../layer/writer.js';
import type { ImageState } from '../solver/state.js';
import type { Store } from '../store/store.js';
import { ExecError } from './overlay.js';
import type { RunResult } from './runc.js';
import type { Cleanup, Staged } from './staging.js';

export type Isolation = 'auto' | 'runc' | 'proot' | 'chroot';
export const isolations: readonly Isolation[] = ['auto', 'runc', 'proot', 'chroot'];

/** One RUN --mount (or the step's own /dev/pipes) as the runtime is to show it. */
export interface StepMount {
  destination: string;
  type: 'bind' | 'tmpfs';
  /** a bind's source on this machine */
  source?: string;
  readonly?: boolean;
  /** a tmpfs's size option */
  size?: string;
  /** a cache directory: what the step writes there is kept */
  persistent?: boolean;
}

export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  hostname: string;
  hostsFile: string;
  resolvConf: string;
  network: 'host' | 'none';
  mounts: StepMount[];
  /** /dev/shm's size in bytes (64 MiB unless set) */
  shmSize?: number;
  /** resource limits (the build's --ulimit) */
  ulimits?: Ulimit[];
  /** the emulator emulation() answered, for a foreign platform */
  emulator?: string;
}

/** What the step changed, as a layer (hashed, its blob written now or being written). */
export type StepLayer = WrittenLayer | LayerInProgress;

/** A step's root filesystem while the step runs. */
export interface StepRoot {
  /** the root as a directory of this machine (the image's /etc/passwd is read there, WORKDIR made there) */
  readonly path: string;
  run(spec: ProcessSpec, onOutput: (line: string) => void, signal: AbortSignal): Promise<RunResult>;
  /**
   * The layer of what the step changed. `lower`: the image before the step; `targets`: its mount points (what was
   * made only to hold them is left out, as BuildKit removes its mount stubs).
   */
  layer(
    lower: FsIndex,
    targets: readonly string[],
    options: { sourceDateEpoch?: number; level?: number },
  ): Promise<StepLayer>;
  /** undoes everything the root needed (after layer(), or when the step failed) */
  release(): Promise<void>;
}

export interface Executor {
  readonly name: 'runc' | 'proot' | 'chroot';
  /** said once in the log when RUN runs other than in runc: which executor, and why */
  readonly notice?: string;
  /**
   * Makes sure a RUN for `platform` can run here (natively or emulated; `register`: hoist may register qemu's
   * binfmt_misc handler): answers the emulator, said in the step's log, or throws what to do.
   */
  emulation(platform: Platform, register: boolean): Promise<string | undefined>;
  /** a stage (numbered as root() numbers it) with a RUN to run is about to need these layers: start unpacking them (answers what to wait for) */
  warm(layers: readonly Layer[], stage: number): Promise<unknown>[];
  /** an image's filesystem as a read-only directory in `dir` (COPY --from, mounts from=), and how to undo it */
  view(state: ImageState, dir: string): Promise<{ path: string; release?: () => Promise<void> }>;
  /** `rel` resolved inside `root` (never through the host), fixed as it is now for a mount's source */
  stage(root: string, rel: string, scratch: string, cleanup: Cleanup, options?: PinOptions): Promise<Staged>;
  /** what a mount shows of a staged source: read-only, or with writes thrown away; `hidden` left out */
  viewOf(
    source: Staged,
    hidden: readonly string[],
    writable: boolean,
    scratch: string,
    cleanup: Cleanup,
  ): Promise<string>;
  /** the root a RUN step of stage `stage` runs in, holding `state` */
  root(state: ImageState, stage: number, scratch: string): Promise<StepRoot>;
  close(): Promise<void>;
}

/** Thrown when the isolation asked for cannot work here (said at the first RUN's line). */
export class IsolationError extends ExecError {}

/**
 * Whether an overlay can be mounted here (and so runc given namespaces): one tried in a scratch directory. A job in a
 * container without privileges is refused (mount: permission denied); the answer is why, or undefined when it works.
 */
export async function overlayRefused(scratch: string): Promise<string | undefined> {
  // (named by this process: what an interrupted probe leaves is swept as a killed build's)
  const dir = await mkdtemp(path.join(scratch, `${process.pid}-probe-`));
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(path.join(dir, d));
    await writeFile(path.join(dir, 'l', 'f'), '');
    // Read-only (two lower dirs, no upper dir): unmounting an overlay with an upper dir syncs the file system it is on,
    // which right after a build that wrote a base's tar waited 0.4 s for its writeback on every next build.
    // (run as children, not synchronously: the build resolves its bases meanwhile)
    const r = await runProcess('mount', [
      '-t',
      'overlay',
      'overlay',
      '-r',
      '-o',
      `lowerdir=${dir}/l:${dir}/u`,
      `${dir}/m`,
    ]);
    if (r.status !== 0)
      return (r.stderr || r.error?.message || `mount exited ${r.status}`).trim().replace(`${dir}/m`, 'a test mount');
    await runProcess('umount', [`${dir}/m`]);
    const u = await runProcess('unshare', ['--mount', '--pid', '--fork', 'true']);
    if (u.error === undefined && u.status !== 0) return (u.stderr || 'unshare: namespaces refused').trim();
    return undefined;
  } finally {
    await rmdir(path.join(dir, 'm')).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

export type ExecutorFactory = (store: Store, scratch: () => Promise<string>) => Promise<Executor>;
