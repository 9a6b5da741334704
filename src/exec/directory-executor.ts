// RUN where nothing may be mounted (a CI job in a container without privileges: GitLab's docker and Kubernetes
// executors, Tekton/Argo/Jenkins pods): each stage's root is a real directory, its layers unpacked into it once (ahead,
// while earlier stages run) and the layers of later steps applied on top (one directory per stage: unpacking the image
// again for every step costs seconds each, measured in docs/benchmarks.md). A step is entered through proot (ptrace; /proc, /dev, /sys, /etc/hosts,
// /etc/resolv.conf and the step's mounts bound in) or, without proot, chroot (no /proc or /sys; the mounts' content,
// hosts and resolv.conf copied in before the step and out after it). The layer is what changed in the directory:
// indexed before, compared after (tree-diff.ts).
// The container is the boundary here: a step runs as the job's root, beside it (docs/security.md).
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  fstatSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  statSync,
  type Stats,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { chmod, copyFile, lchown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FsIndex } from '../layer/fs-index.js';
import type { Layer } from '../layer/layer.js';
import { formatPlatform, type Platform } from '../image/platform.js';
import { ensureEmulation, qemuUserProgram, runsNatively } from './emulation.js';
import {
  emptyAt,
  fdPath,
  fdPathFor,
  openAt,
  openInside,
  pinExact,
  pinParent,
  type PinOptions,
  removeAt,
  removeInside,
  removeTree,
  statAt,
} from '../layer/pinned.js';
import { resolveInside } from '../layer/rooted.js';
import { xattrTool } from '../layer/xattr.js';
import { spoolLayer, writeLayer } from '../layer/writer.js';
import type { ImageState } from '../solver/state.js';
import { homeOf } from '../solver/users.js';
import type { Store } from '../store/store.js';
import { onInterrupt, removeSync } from './cleanup.js';
import { withoutMountStubs } from './diff.js';
import {
  type Executor,
  IsolationError,
  type ProcessSpec,
  type StepLayer,
  type StepMount,
  type StepRoot,
} from './executor.js';
import { copyTree } from './mounts.js';
import { ExecError } from './overlay.js';
import { chrooted, descendantsOf, endStep, killAll, mayTraceOthers, prootLoader, reportingShell } from './proot.js';
import { pidNamespaceProgram, underWarden } from './warden.js';
import { onPath, python3, streamLines } from './process.js';
import type { RunResult } from './runc.js';
import type { Cleanup, Staged } from './staging.js';
import { diffTree, indexTree, type TreeIndex } from './tree-diff.js';
import { extractState } from './unpack.js';

/** A stage's root directory: the layers applied to it so far (by diffID), and its index when up to date. */
interface StageDir {
  dir: string;
  applied: string[];
  index?: TreeIndex;
  /** the unpacking that warm() started; the directory is the stage's once it ends */
  ready?: Promise<void>;
}

/** Whether every directory from `/` down to `dir` may be searched by any user (a step's user reaches it by path under proot). */
export function searchableByAll(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const st = lstatSync(d, { throwIfNoEntry: false });
    if (st && (!st.isDirectory() || (st.mode & 0o001) === 0)) return false;
    if (d === '/') return true;
  }
}

export class DirectoryExecutor implements Executor {
  private readonly dirs = new Map<number, StageDir>();
  private readonly made: string[] = [];
  private readonly forget: (() => void)[] = [];
  private area: Promise<string> | undefined;
  private readonly unpacking: {
    stage: number;
    run: () => Promise<void>;
    resolve: () => void;
    reject: (e: unknown) => void;
  }[] = [];
  private unpackingNow = false;

  constructor(
    private readonly store: Store,
    readonly name: 'proot' | 'chroot',
    /** the proot or chroot program */
    private readonly program: string,
    readonly notice: string,
    /** python3's program, the warden of the steps (warden.ts): proot needs it (its seccomp filter is set there) */
    private readonly python?: string,
  ) {}

  /**
   * Where the stages' roots and the steps' files live: beside the store, or in the temp dir when a user other than
   * root could not reach the store by path (a step under USER reaches its root through proot by its path).
   */
  private workArea(): Promise<string> {
    this.area ??= (async () => {
      const parent = searchableByAll(this.store.root) ? path.join(this.store.root, 'tmp') : tmpdir();
      const dir = await mkdtemp(path.join(parent, `${process.pid}-run-`));
      await chmod(dir, 0o711);
      this.made.push(dir);
      this.forget.push(onInterrupt(() => removeSync(dir)));
      return dir;
    })();
    return this.area;
  }

  /** proot runs a foreign platform's programs under qemu-user itself (-q); chroot needs binfmt_misc's handler. */
  async emulation(platform: Platform, register: boolean): Promise<string | undefined> {
    if (this.name === 'chroot' || runsNatively(platform)) return ensureEmulation(platform, register);
    const qemu = qemuUserProgram(platform);
    if (!qemu)
      throw new ExecError(
        `RUN for ${formatPlatform(platform)} through proot needs qemu-user's program for it on PATH: install qemu-user-static (apt-get install qemu-user-static)`,
      );
    return qemu;
  }

  /**
   * A stage with a RUN to run starts unpacking its image into its directory now, while other stages run (the second
   * stage of a build from the same base is unpacked during the first one's steps, not after them).
   */
  warm(layers: readonly Layer[], stage: number): Promise<unknown>[] {
    const ids = layers.map((l) => l.diffID);
    const had = this.dirs.get(stage);
    if (had && (had.ready || (had.applied.length <= ids.length && had.applied.every((d, i) => ids[i] === d))))
      return [];
    const sd: StageDir = { dir: '', applied: [] };
    sd.ready = new Promise<void>((resolve, reject) => {
      // One unpacking at a time (each keeps this process's one thread busy: two at once finish no sooner than one
      // after the other), the one a step waits for first (root() moves it ahead).
      this.unpacking.push({
        stage,
        run: async () => {
          if (had) removeTree(had.dir);
          sd.dir = await this.stageDir();
          await extractState(this.store, layers, sd.dir);
          sd.applied.push(...ids);
        },
        resolve,
        reject,
      });
      // The first comes after the warm() calls of this moment: the earliest stage first (later ones copy from it).
      setImmediate(() => void this.nextUnpacking());
    });
    this.dirs.set(stage, sd);
    return [sd.ready];
  }

  private async nextUnpacking(): Promise<void> {
    if (this.unpackingNow) return;
    if (this.unpacking.length === 0) return;
    const first = this.unpacking.reduce((a, j, i) => (j.stage < this.unpacking[a].stage ? i : a), 0);
    const [job] = this.unpacking.splice(first, 1);
    this.unpackingNow = true;
    try {
      await job.run();
      job.resolve();
    } catch (e) {
      job.reject(e);
    } finally {
      this.unpackingNow = false;
      void this.nextUnpacking();
    }
  }

  private async stageDir(): Promise<string> {
    const dir = await mkdtemp(path.join(await this.workArea(), 'root-'));
    await chmod(dir, 0o755);
    return dir;
  }

  async view(state: ImageState, dir: string): Promise<{ path: string }> {
    // A stage whose steps ran here and are done is that directory already (nothing runs in it any more).
    const ids = state.layers.map((l) => l.diffID).join();
    for (const sd of this.dirs.values()) if (sd.index && sd.applied.join() === ids) return { path: sd.dir };
    await extractState(this.store, state.layers, dir);
    return { path: dir };
  }

  async stage(
    root: string,
    rel: string,
    _scratch: string,
    _cleanup: Cleanup,
    options: PinOptions = {},
  ): Promise<Staged> {
    const pinned = openInside(root, rel, options);
    closeSync(pinned.fd);
    return { path: path.join(root, pinned.rel), stats: pinned.stats };
  }

  /** proot binds cannot be read-only: a step is always given a copy, which it may change as it likes. */
  async viewOf(source: Staged, hidden: readonly string[]): Promise<string> {
    const dir = await mkdtemp(path.join(await this.workArea(), 'bind-'));
    await chmod(dir, 0o711);
    const copy = path.join(dir, 'copy');
    await copyTree(source.path, copy);
    if (source.stats.isDirectory())
      for (const h of hidden) await rm(path.join(copy, h), { recursive: true, force: true });
    return copy;
  }

  async root(state: ImageState, stage: number): Promise<StepRoot> {
    const ids = state.layers.map((l) => l.diffID);
    let sd = this.dirs.get(stage);
    if (sd?.ready) {
      const warmed = sd;
      const queued = this.unpacking.findIndex((j) => j.stage === stage);
      if (queued > 0) this.unpacking.unshift(...this.unpacking.splice(queued, 1));
      // An unpacking that failed is done again below, where its error is the step's.
      const ok = await warmed.ready!.then(
        () => true,
        () => false,
      );
      warmed.ready = undefined;
      if (!ok) warmed.applied = ['(failed)'];
    }
    if (!sd || sd.applied.length > ids.length || sd.applied.some((d, i) => ids[i] !== d)) {
      if (sd?.dir) removeTree(sd.dir);
      sd = { dir: await this.stageDir(), applied: [] };
      this.dirs.set(stage, sd);
    }
    const stageDir = sd;
    const rest: Layer[] = state.layers.slice(stageDir.applied.length);
    if (rest.length > 0) {
      await extractState(this.store, rest, stageDir.dir);
      stageDir.applied.push(...rest.map((l) => l.diffID));
      stageDir.index = undefined;
    }
    const before = (stageDir.index ??= indexTree(stageDir.dir));
    stageDir.index = undefined; // the step changes the directory: indexed again unless its layer says how
    const placement = new Placement(stageDir.dir);
    // What runc makes for every step: /proc, /dev and /sys (kept in the layer, as BuildKit keeps them), the files
    // /etc/hosts and /etc/resolv.conf are bound onto (left out when the image had none).
    for (const d of ['proc', 'dev', 'sys']) await placement.make(d, 'dir', false);
    for (const f of ['etc/hosts', 'etc/resolv.conf']) await placement.make(f, 'file');
    const store = this.store;
    let done = false;
    return {
      path: stageDir.dir,
      run: async (spec, onOutput, signal) => {
        const area = await this.workArea();
        // The step may run as another user, who reaches what is bound in by its path: the step's files go where
        // that user may look.
        const own = await mkdtemp(path.join(area, 'step-'));
        await chmod(own, 0o711);
        try {
          return await this.enter(stageDir.dir, spec, own, placement, onOutput, signal);
        } finally {
          removeTree(own);
        }
      },
      async layer(
        lower: FsIndex,
        targets: readonly string[],
        options: { sourceDateEpoch?: number; level?: number },
      ): Promise<StepLayer> {
        // What hoist put in goes first: the mounts' content (chroot), the mount points made for the step that it
        // left empty (as BuildKit removes its stubs), and the directories they were made in get their times back
        // (moby/buildkit#3148), compared without their inode times.
        await placement.takeOut();
        await placement.removeStubs();
        await placement.restoreTimes();
        const { entries, after } = await diffTree(stageDir.dir, before, new Set(placement.parents.keys()));
        const kept = withoutMountStubs(entries, lower, targets);
        for (const d of kept.dropped.sort().reverse()) removeInside(stageDir.dir, d);
        const layer =
          kept.entries.length === 0
            ? await writeLayer(store, [], options)
            : await spoolLayer(store, kept.entries, store.tmpPath(), options);
        stageDir.applied.push(layer.diffID);
        if (kept.dropped.length === 0) stageDir.index = after;
        done = true;
        return layer;
      },
      release: async () => {
        // A step that failed (or was stopped) left the directory as it was then: not the stage's any more.
        placement.close();
        if (done) return;
        this.dirs.delete(stage);
        removeTree(stageDir.dir);
      },
    };
  }

  /** Runs the step's process in `root`: its files (hosts, resolv.conf, mount sources) readable from `own`. */
  private async enter(
    root: string,
    spec: ProcessSpec,
    own: string,
    placement: Placement,
    onOutput: (line: string) => void,
    signal: AbortSignal,
  ): Promise<RunResult> {
    if (signal.aborted) return { exitCode: 137, tail: [] };
    const hosts = path.join(own, 'hosts');
    const resolv = path.join(own, 'resolv.conf');
    await copyFile(spec.hostsFile, hosts);
    await copyFile(spec.resolvConf, resolv);
    for (const f of [hosts, resolv]) await chmod(f, 0o644);
    if (spec.network === 'none')
      onOutput(
        `(--network=none cannot be honoured by ${this.name}: without namespaces the step has the container's network)`,
      );
    if (spec.shmSize)
      onOutput(`(shm-size cannot be honoured by ${this.name}: without a mount the step has the container's /dev/shm)`);
    const nonRoot = spec.uid !== 0 || spec.gid !== 0;
    const mounts = await this.mountSources(spec.mounts, own, nonRoot, placement);
    const hasShell = fileInside(root, '/bin/sh') !== undefined;
    // Run by a shell line that reports the command's status on fd 3 (proot.ts); without a shell in the image, the
    // command itself (its status is then proot's or chroot's).
    let argv: string[];
    let env: NodeJS.ProcessEnv = Object.fromEntries(
      spec.env.map((e) => [e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    const keep = new Set(Object.keys(env));
    if (env.SHLVL !== undefined) env.HOIST_SHLVL = env.SHLVL;
    const command = hasShell ? ['/bin/sh', '-c', reportingShell(keep), 'sh', spec.cwd, ...spec.args] : spec.args;
    // runc sets HOME from the image's passwd when the step's environment has none; so must this.
    if (env.HOME === undefined) {
      const passwd = fileInside(root, '/etc/passwd');
      env.HOME = homeOf(
        spec.uid,
        passwd && passwd.size < 16 * 1024 * 1024 ? readFileSync(passwd.abs, 'utf8') : undefined,
      );
    }
    if (this.name === 'proot') {
      const loader = prootLoader(this.program);
      if (loader) env.PROOT_LOADER = loader;
      // Without CAP_SYS_PTRACE a root step runs as proot's emulated root (-0): a switch of user inside the step is
      // then emulated too (the step goes on as real root), where a real one would leave proot unable to exec.
      const fakeRoot = spec.uid === 0 && !mayTraceOthers() ? ['-0'] : [];
      // The step's /dev is its own: the nodes it needs made in the stage's /dev (as for chroot), never the machine's
      // bound in (a bind is a path translation: a root step's `rm -rf /dev` would delete the machine's nodes). /sys
      // is not bound (proot binds cannot be read-only, as runc's is).
      await placement.devices();
      argv = [
        this.program,
        ...fakeRoot,
        '-v',
        '-1',
        '-r',
        root,
        '-w',
        spec.cwd,
        '-b',
        '/proc',
        '-b',
        `${hosts}:/etc/hosts`,
        '-b',
        `${resolv}:/etc/resolv.conf`,
      ];
      for (const [name] of devices)
        if (!lstatSync(path.join(root, 'dev', name), { throwIfNoEntry: false })) argv.push('-b', `/dev/${name}`);
      for (const m of mounts) argv.push('-b', `${m.source}:${m.destination}`);
      if (spec.emulator) argv.push('-q', spec.emulator);
      argv.push(...command);
    } else {
      // chroot binds nothing: each mount's content is put where the step sees it and taken out after it.
      for (const m of mounts) await placement.place(m, this.store.root);
      await placement.devices();
      await placement.placeFile('etc/hosts', readFileSync(hosts));
      await placement.placeFile('etc/resolv.conf', readFileSync(resolv));
      // chroot(2) needs root: the step's user and groups are set after it, by chroot itself.
      const groups = spec.additionalGids.length ? spec.additionalGids : [spec.gid];
      argv = [this.program, `--userspec=${spec.uid}:${spec.gid}`, `--groups=${groups.join(',')}`, root, ...command];
    }
    // proot: the step's user and groups (the primary group among them, as runc gives them) for the whole of proot,
    // set by setpriv, so that what the step makes is theirs (chroot sets them itself, above).
    if (this.name === 'proot') {
      const setpriv = onPath('setpriv');
      if (setpriv)
        argv = [
          setpriv,
          '--reuid',
          String(spec.uid),
          '--regid',
          String(spec.gid),
          ...(spec.additionalGids.length ? ['--groups', spec.additionalGids.join(',')] : ['--clear-groups']),
          '--',
          ...argv,
        ];
      else if (nonRoot || spec.additionalGids.some((g) => g !== 0))
        throw new ExecError(`RUN as ${spec.uid}:${spec.gid} needs setpriv (util-linux) where RUN cannot mount`);
    }
    // Every process of the step ends before anything of it is taken out (warden.ts): under the warden (python3, run
    // as hoist's user: proot's seccomp filter is set there, while still root), else in a PID namespace of its own
    // where one may be made, else by looking at /proc until nothing of it is left.
    const warden = this.python !== undefined;
    if (warden)
      ({ argv, env } = underWarden(this.python as string, argv, env, {
        seccomp: this.name === 'proot',
        uid: spec.uid,
      }));
    else {
      const unshare = pidNamespaceProgram();
      if (unshare) argv = [unshare, '--pid', '--fork', '--kill-child', '--', ...argv];
    }
    // The build's limits (--ulimit) on the whole of it, set by util-linux's prlimit (raising a hard limit needs
    // CAP_SYS_RESOURCE, which a container's root often lacks: prlimit then fails the step, saying so).
    if (spec.ulimits?.length) {
      const prlimit = onPath('prlimit');
      if (!prlimit) throw new ExecError(`ulimit where RUN cannot mount needs prlimit (util-linux) on PATH`);
      const value = (n: number) => (n < 0 ? 'unlimited' : String(n));
      argv = [prlimit, ...spec.ulimits.map((u) => `--${u.name}=${value(u.soft)}:${value(u.hard)}`), '--', ...argv];
    }
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env });
    // What is left of the step: the warden's descendants, or (chroot) what has the stage's directory as its root.
    const leftovers = () => (warden ? (child.pid ? descendantsOf(child.pid) : []) : chrooted(root));
    // The warden ends the step itself (and exits when nothing of it is left); hoist's own looks are for an exit of
    // hoist (the warden then goes too, PR_SET_PDEATHSIG).
    const endNow = () => (warden ? child.kill('SIGTERM') : killAll(leftovers()));
    const stopAll = () => {
      endNow();
      killAll(leftovers());
      if (!warden) child.kill('SIGKILL');
    };
    const forget = onInterrupt(stopAll);
    signal.addEventListener('abort', stopAll, { once: true });
    const lines = streamLines(child, onOutput);
    // fd 3: the shell's report of the command's status (a number), and the warden's word that the step killed its
    // tracer (`T<signal>`, warden.ts), which fails the step whatever the shell reported after it.
    let reported: number | undefined;
    let tracerKilled: number | undefined;
    let report = '';
    (child.stdio[3] as NodeJS.ReadableStream | null)?.on('data', (c: Buffer) => {
      report = (report + c.toString('latin1')).slice(-64);
      for (let nl = report.indexOf('\n'); nl >= 0; nl = report.indexOf('\n')) {
        const line = report.slice(0, nl).trim();
        report = report.slice(nl + 1);
        if (/^T\d+$/.test(line)) tracerKilled = Number(line.slice(1));
        else if (/^\d+$/.test(line)) reported = Number(line);
      }
      // The step's first process ended: what it left running is ended, as runc ends a container with its first process.
      setImmediate(endNow);
    });
    try {
      const code = await new Promise<number>((resolve, reject) => {
        child.on('error', (e) => reject(new ExecError(`cannot start ${this.name}: ${e.message}`)));
        child.on('close', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
      });
      lines.done();
      // The warden exits when nothing of the step is left; without it (chroot), the step's processes are ended here.
      if (!warden) await endStep(() => chrooted(root), spec);
      if (signal.aborted) return { exitCode: 137, tail: lines.tail };
      return { exitCode: tracerKilled !== undefined ? 128 + tracerKilled : (reported ?? code), tail: lines.tail };
    } finally {
      signal.removeEventListener('abort', stopAll);
      forget();
    }
  }

  /**
   * Each mount's source where the step's user can reach it by path, and its target made in the root (as runc makes
   * mount points; the layer leaves them out when the image had none): a cache directory as it is; for a step run
   * as another user, a file or directory of hoist's that such a user could not reach is copied into the step's own
   * directory (removed with it).
   */
  private async mountSources(
    mounts: readonly StepMount[],
    own: string,
    nonRoot: boolean,
    placement: Placement,
  ): Promise<PlacedMount[]> {
    const out: PlacedMount[] = [];
    for (const [i, m] of mounts.entries()) {
      let source = m.source ?? '';
      if (m.type === 'tmpfs') {
        source = path.join(own, `tmpfs-${i}`);
        await mkdir(source);
        await chmod(source, 0o1777);
      } else if (nonRoot && !searchableByAll(path.dirname(source))) {
        if (m.persistent)
          throw new ExecError(
            `a cache mount of a step run as another user must be reachable by that user, and hoist's store ${this.store.root} is not (a directory above it may not be searched by others): pass --store in a directory others may enter`,
          );
        if (lstatSync(source).isSocket())
          throw new ExecError(
            `an ssh mount of a step run as another user needs the agent's socket where that user may reach it; run the step as root or pass --store in a directory others may enter`,
          );
        const copy = path.join(own, `mount-${i}`);
        await copyTree(source, copy);
        source = copy;
      }
      const st = lstatSync(source, { throwIfNoEntry: false });
      // (a cache's directory that a step sharing the cache removed since it was staged: said as the runc executor says it)
      if (!st)
        throw new ExecError(
          `a mount source, ${m.destination}'s, was removed by another step while this one started (a cache mount shared with a step that deletes it?); nothing of it was mounted`,
        );
      if (this.name === 'chroot' && st.isSocket())
        throw new ExecError(
          `RUN --mount=type=ssh needs proot where RUN cannot mount (chroot cannot bind the agent's socket into the step): install proot`,
        );
      if (this.name === 'proot') await placement.make(m.destination, st.isDirectory() ? 'dir' : 'file');
      out.push({ source, destination: m.destination, ...(m.persistent ? { persistent: true } : {}) });
    }
    return out;
  }

  async close(): Promise<void> {
    // Unpackings not started are not wanted any more (the build ended, maybe with a failure); one under way ends first.
    for (const job of this.unpacking.splice(0)) job.reject(new ExecError('the build ended before this stage ran'));
    await Promise.allSettled([...this.dirs.values()].map((sd) => sd.ready));
    for (const f of this.forget.splice(0)) f();
    for (const d of this.made.splice(0)) {
      try {
        removeTree(d);
      } catch {}
    }
    this.dirs.clear();
  }
}

interface PlacedMount {
  source: string;
  destination: string;
  persistent?: boolean;
}

/** The device nodes runc's /dev gives a step, made for a chroot (CAP_MKNOD is in a container's default set). */
const devices: [string, number, number][] = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
];
/** runc's /dev links (a target) and /dev/shm (a directory), made for a step where the image has none */
const devLinks: [string, string | undefined][] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['shm', undefined],
];

/**
 * What hoist puts into a stage's root for one step — mount points (as runc makes them), and for chroot the mounts'
 * content and /dev's nodes — and takes out again before the step's layer is read, with the times of the
 * directories it touched (rel → mtime before). Before the step things are made by path (nothing of the step runs
 * yet); after it, everything is reached by descriptors, no symlink on the way followed (pinned.ts): the step may
 * have swapped a directory hoist made for a link to one of the machine's.
 */
class Placement {
  readonly parents = new Map<string, number>();
  /** what make() made, outermost first: a mount point and the directories made to hold it (relative to the root) */
  private readonly made: { rel: string; restore: boolean }[] = [];
  private readonly placed: {
    rel: string;
    made: boolean;
    cache?: number;
    was?: { mode: number; uid: number; gid: number };
    content?: Buffer;
    link?: string;
  }[] = [];

  constructor(private readonly root: string) {}

  private relOf(abs: string): string {
    return path.relative(this.root, abs);
  }

  /** Notes the modification time of `abs` (inside the root) before hoist changes it or something in it. */
  private note(abs: string): void {
    const rel = this.relOf(abs);
    if (this.parents.has(rel)) return;
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) this.parents.set(rel, st.mtimeMs / 1000);
  }

  /** chroot: `rel` holds `content` for the step (the image's own file written back after it). */
  async placeFile(rel: string, content: Buffer): Promise<void> {
    const r = resolveInside(this.root, rel, { followLast: true });
    if (r.stats && !r.stats.isFile()) return;
    if (r.stats) {
      this.note(r.abs);
      this.placed.push({ rel: this.relOf(r.abs), made: false, content: readFileSync(r.abs) });
      await writeFile(r.abs, content);
      return;
    }
    const made = await this.make(rel, 'file');
    await writeFile(made.abs, content);
    this.placed.push({ rel: this.relOf(made.abs), made: true });
  }

  /** Makes `rel` (symlinks on the way resolved inside the root) when nothing is there; true when it did. */
  async make(rel: string, kind: 'dir' | 'file', restore = true): Promise<{ abs: string; made: boolean }> {
    const r = resolveInside(this.root, rel, { followLast: true });
    if (r.stats) return { abs: r.abs, made: false };
    let existing = path.dirname(r.abs);
    while (existing !== this.root && !lstatSync(existing, { throwIfNoEntry: false })) existing = path.dirname(existing);
    if (restore) this.note(existing);
    const missing: string[] = [];
    for (let d = path.dirname(r.abs); d !== existing; d = path.dirname(d)) missing.unshift(d);
    for (const d of missing) this.made.push({ rel: this.relOf(d), restore });
    this.made.push({ rel: this.relOf(r.abs), restore });
    await mkdir(path.dirname(r.abs), { recursive: true });
    if (kind === 'dir') await mkdir(r.abs, { mode: 0o755 });
    else await writeFile(r.abs, '', { mode: 0o755 });
    await lchown(r.abs, 0, 0).catch(() => undefined);
    return { abs: r.abs, made: true };
  }

  /**
   * chroot: the mount's content copied to where the step sees it (over nothing, or an empty directory). A cache's
   * directory (in the store, which a concurrent step sharing the cache writes into) is pinned first — reached from
   * the store with no symlink on the way — and copied from and back to through that descriptor: a `source=`
   * swapped for a link to / meanwhile copies nothing of the machine in, and nothing of the step out onto it.
   */
  async place(m: PlacedMount, storeRoot: string): Promise<void> {
    let cache: number | undefined;
    let source = m.source;
    const rel = path.relative(storeRoot, m.source);
    if (m.persistent && !rel.startsWith('..') && !path.isAbsolute(rel)) {
      const pinned = pinExact(storeRoot, rel);
      if (!pinned?.stats.isDirectory()) {
        if (pinned) closeSync(pinned.fd);
        throw new ExecError(
          `the cache mount at ${m.destination} was replaced by another step while this one started (its directory is no longer one): run the build again`,
        );
      }
      cache = pinned.fd;
      source = fdPathFor(cache);
    }
    try {
      await this.placeFrom(m, source, cache);
    } catch (e) {
      if (cache !== undefined) closeSync(cache);
      throw e;
    }
  }

  private async placeFrom(m: PlacedMount, source: string, cache: number | undefined): Promise<void> {
    // (a pinned cache's source is its descriptor's magic link: followed to the directory itself)
    const src = cache !== undefined ? statSync(source) : lstatSync(source);
    const isDir = src.isDirectory();
    const target = await this.make(m.destination, isDir ? 'dir' : 'file');
    const st = lstatSync(target.abs);
    if (!target.made && !(isDir && st.isDirectory() && readdirSync(target.abs).length === 0))
      throw new ExecError(
        `chroot cannot show the mount at ${m.destination} over what the image has there: install proot (apt-get install proot python3)`,
      );
    this.note(target.abs);
    let was: { mode: number; uid: number; gid: number } | undefined;
    if (isDir) {
      // The directory shows as the mount's own (a new cache's mode and owner), as a bind would show it.
      if (!target.made) was = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      await chmod(target.abs, src.mode & 0o7777);
      await lchown(target.abs, src.uid, src.gid);
      for (const name of readdirSync(source)) {
        try {
          await copyTree(`${source}/${name}`, path.join(target.abs, name));
        } catch (e) {
          // a shared cache that a concurrent step changes as it is copied: an entry gone meanwhile is passed over
          if (cache !== undefined && !statAt(cache, name)) continue;
          if (cache !== undefined)
            throw new ExecError(
              `the cache mount at ${m.destination} changed while it was copied in (a step sharing it writes there: ${JSON.stringify(name)} could not be copied); run the build again`,
            );
          throw e;
        }
      }
    } else await copyTree(source, target.abs);
    this.placed.push({
      rel: this.relOf(target.abs),
      made: target.made,
      ...(cache !== undefined ? { cache } : {}),
      ...(was ? { was } : {}),
    });
  }

  /** chroot: /dev's usual nodes, where the image has none. */
  async devices(): Promise<void> {
    const dev = path.join(this.root, 'dev');
    if (!lstatSync(dev, { throwIfNoEntry: false })?.isDirectory()) return;
    for (const [name, major, minor] of devices) {
      const abs = path.join(dev, name);
      if (lstatSync(abs, { throwIfNoEntry: false })) continue;
      this.note(dev);
      const r = spawnSync('mknod', ['-m', '666', abs, 'c', String(major), String(minor)], { stdio: 'ignore' });
      if (r.status === 0) this.placed.push({ rel: `dev/${name}`, made: true });
    }
    // What runc's /dev has beside the nodes: the descriptors' links and a /dev/shm of the step's own.
    for (const [name, target] of devLinks) {
      const abs = path.join(dev, name);
      if (lstatSync(abs, { throwIfNoEntry: false })) continue;
      this.note(dev);
      if (target) await symlink(target, abs);
      else await mkdir(abs, { mode: 0o1777 }).then(() => chmod(abs, 0o1777));
      this.placed.push({ rel: `dev/${name}`, made: true, ...(target ? { link: target } : {}) });
    }
  }

  /**
   * `rel`'s directory pinned (no symlink on the way) and what is there now (not followed), for `act`; nothing is
   * done when the way there is not what hoist made.
   */
  private async at(rel: string, act: (dirFd: number, name: string, st: Stats) => Promise<void> | void): Promise<void> {
    const at = pinParent(this.root, rel);
    if (!at) return;
    try {
      const st = statAt(at.fd, at.name);
      if (st) await act(at.fd, at.name, st);
    } finally {
      closeSync(at.fd);
    }
  }

  /** What place() and devices() put in goes; a cache's content is copied back to the cache first. */
  async takeOut(): Promise<void> {
    try {
      for (const p of [...this.placed].reverse()) await this.takeOutOne(p);
    } finally {
      this.close();
    }
  }

  /** The caches' descriptors let go (after takeOut, or for a step that failed: its cache is not written back). */
  close(): void {
    for (const p of this.placed.splice(0)) if (p.cache !== undefined) closeSync(p.cache);
  }

  private async takeOutOne(p: Placement['placed'][number]): Promise<void> {
    await this.at(p.rel, async (dirFd, name, seen) => {
      // a link hoist made goes when it is still that link
      if (p.link !== undefined) {
        if (seen.isSymbolicLink() && readlinkSync(fdPath(dirFd, name)) === p.link) unlinkSync(fdPath(dirFd, name));
        return;
      }
      if (seen.isSymbolicLink()) return;
      const fd = openAt(dirFd, name);
      try {
        const st = fstatSync(fd);
        if (p.cache !== undefined && st.isDirectory()) {
          // the cache (pinned when placed) gets what the step left, copied from the pinned directory in the stage
          emptyAt(p.cache);
          for (const n of readdirSync(fdPath(fd))) {
            // (a step sharing the cache that writes the same name meanwhile keeps its own, as between two writers of a
            // shared cache: a cache is never why a step fails)
            await copyTree(fdPathFor(fd, n), fdPathFor(p.cache, n)).catch(() => undefined);
          }
        }
        if (p.made) removeAt(dirFd, name);
        else if (p.content) {
          if (st.isFile()) writeFileSync(fdPath(fd), p.content);
        } else if (st.isDirectory()) emptyAt(fd);
        if (p.was) {
          chmodSync(fdPath(fd), p.was.mode);
          chownSync(fdPath(fd), p.was.uid, p.was.gid);
        }
      } finally {
        closeSync(fd);
      }
    });
  }

  /**
   * The mount points make() made (not /proc, /dev, /sys: runc's stay) go when the step left them empty, innermost
   * first, with the directories made only to hold them; a directory the step wrote something into stays.
   */
  async removeStubs(): Promise<void> {
    for (const m of this.made.splice(0).reverse()) {
      if (!m.restore) continue;
      await this.at(m.rel, (dirFd, name, st) => {
        if (st.isFile() && st.size === 0) unlinkSync(fdPath(dirFd, name));
        if (!st.isDirectory()) return;
        const fd = openAt(dirFd, name);
        try {
          if (readdirSync(fdPath(fd)).length === 0) rmdirSync(fdPath(dirFd, name));
        } finally {
          closeSync(fd);
        }
      });
    }
  }

  /** The directories noted get their modification times back. */
  async restoreTimes(): Promise<void> {
    for (const [rel, mtime] of this.parents) {
      const pinned = pinExact(this.root, rel);
      if (!pinned) continue;
      try {
        utimesSync(fdPath(pinned.fd), pinned.stats.atimeMs / 1000, mtime);
      } finally {
        closeSync(pinned.fd);
      }
    }
  }
}

/** The no-mount executor this machine has: proot, else chroot; `why` says why RUN cannot mount. */
export function directoryExecutor(store: Store, which: 'proot' | 'chroot' | 'auto', why: string): DirectoryExecutor {
  const proot = which === 'chroot' ? undefined : onPath('proot');
  const python = python3();
  if (proot && python)
    return new DirectoryExecutor(
      store,
      'proot',
      proot,
      `RUN runs through proot (${why}): the container is the boundary between a step and this job`,
      python,
    );
  const lacking = !proot ? 'proot is not installed' : 'proot needs python3 for the system calls it does not translate';
  if (which === 'proot') throw new IsolationError(`--isolation proot: ${lacking} (apt-get install proot python3)`);
  const chroot = onPath('chroot');
  if (!chroot)
    throw new IsolationError(
      `RUN cannot run here: ${why}, and neither proot (with python3) nor chroot is installed (apt-get install proot python3)`,
    );
  // chroot needs nothing but node and coreutils; without python3 or the attr tools, file capabilities a step sets
  // (setcap) cannot be read, and the notice says so.
  const caps = xattrTool()
    ? ''
    : '; file capabilities a step sets (setcap) are not kept without python3 or the attr tools';
  // python3, where there is one, is the warden of chroot's steps too (warden.ts).
  return new DirectoryExecutor(
    store,
    'chroot',
    chroot,
    `RUN runs through chroot (${why}${which === 'chroot' ? '' : `; ${lacking}`}): a step has no /proc, /sys or /dev/pts, and its mounts are copied in and out; install proot and python3 for those${caps}`,
    python,
  );
}

/** A regular file at `p` inside `root` (symlinks resolved inside it), or undefined. */
function fileInside(root: string, p: string): { abs: string; size: number } | undefined {
  try {
    const r = resolveInside(root, p, { followLast: true });
    return r.stats?.isFile() ? { abs: r.abs, size: r.stats.size } : undefined;
  } catch {
    return undefined;
  }
}
