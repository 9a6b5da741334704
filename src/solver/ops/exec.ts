// RUN: the step's process in the build's executor (exec/executor.ts: runc over an overlay of the image's layers, or
// proot/chroot in a plain directory where nothing may be mounted), its layer what it changed. Mounts: cache dirs in
// the store, secrets on a tmpfs, binds of the context or of a stage's or image's filesystem, tmpfs, ssh agent sockets.
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MountSpec } from '../../dockerfile/mounts.js';
import type { StageSource } from '../../dockerfile/plan.js';
import type { ExecOp } from '../../dockerfile/translate.js';
import { onInterrupt, removeSync } from '../../exec/cleanup.js';
import type { Executor, ProcessSpec, StepMount } from '../../exec/executor.js';
import { secretDirPrefix } from '../../exec/leftovers.js';
import { copyTree, secretValue, writeSecretFile } from '../../exec/mounts.js';
import { ExecError } from '../../exec/overlay.js';
import { formatPlatform } from '../../image/platform.js';
import { agentProxy } from '../../exec/ssh.js';
import type { Cleanup, Staged } from '../../exec/staging.js';
import { cleanEntryName, resolveInside, RootedPathError } from '../../layer/rooted.js';
import { cacheMountDir } from '../../store/cache-mounts.js';
import { type ExecUser, resolveExecUser } from '../users.js';
import type { OpContext, OpResult } from './op.js';
import { timed } from '../../profile.js';
import { storeDiskFull, storeFullAdvice } from '../../store/disk.js';

/** A step stopped because another one failed (that failure is the build's error). */
export class BuildStopped extends Error {
  override readonly name = 'BuildStopped';
  constructor() {
    super('stopped: another step failed');
  }
}

/** RUN reached without root: the command may run the build again under sudo. */
export class NeedsRootError extends Error {
  override readonly name = 'NeedsRootError';
  constructor() {
    super('RUN needs root for its overlay mount and container: run hoist as root, or as a user with passwordless sudo');
  }
}

export async function execRun(op: ExecOp, x: OpContext): Promise<OpResult> {
  if (process.getuid?.() !== 0) throw new NeedsRootError();
  const executor = await x.executor();
  // Another platform's binaries run emulated (said in the step's log).
  const emulator = await executor.emulation(x.platform, x.emulate);
  if (emulator && !x.signal.aborted) x.output(`(${formatPlatform(x.platform)} emulated through ${emulator})`);
  const lower = await x.state.fs(x.store);
  const scratch = await x.scratchDir();
  const root = await executor.root(x.state, x.stageIndex, scratch);
  // What this step's mounts hold (cache locks, secret files, ssh proxies), undone when it ends.
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const owner = await execUser(op.user, root.path);
    // Made where the path leads inside the image (its symlinks resolved there): joined to the host path as it is,
    // an image's absolute symlink (`w -> /etc`) would have mkdir write outside the root.
    await mkdir(resolveInside(root.path, op.cwd, { followLast: true }).abs, { recursive: true });
    const env = new Map(
      [...op.env, ...op.proxyEnv].map((e) => [e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e] as const),
    );
    const mounts: StepMount[] = [];
    const targets: string[] = [];
    if (op.script) {
      const pipes = await mkdtemp(path.join(scratch, 'pipes-'));
      await writeFile(path.join(pipes, op.script.name), op.script.data, { mode: 0o755 });
      mounts.push({ destination: '/dev/pipes', type: 'bind', source: pipes, readonly: true });
      targets.push('/dev/pipes');
    }
    for (const m of op.mounts) {
      targets.push(m.spec.target);
      mounts.push(...(await runMount(m.spec, m.from, env, scratch, cleanup, x, executor)));
    }
    const hosts = path.join(scratch, `hosts-${x.stageIndex}`);
    // BuildKit's generated hosts file, the build's extra hosts after it (--add-host)
    await writeFile(
      hosts,
      `127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n${(x.sandbox.addHosts ?? []).map((h) => `${h.ip}\t${h.host}\n`).join('')}`,
    );
    const resolv = path.join(scratch, `resolv-${x.stageIndex}`);
    await writeFile(resolv, await readFile('/etc/resolv.conf').catch(() => Buffer.from('nameserver 8.8.8.8\n')));
    const spec: ProcessSpec = {
      args: op.args,
      env: [...env.values()],
      cwd: op.cwd,
      uid: owner.uid,
      gid: owner.gid,
      additionalGids: owner.additionalGids ?? [],
      hostname: 'buildkitsandbox',
      hostsFile: hosts,
      resolvConf: resolv,
      network: stepNetwork(op.network, x.sandbox.network),
      mounts,
      ...(x.sandbox.shmSize ? { shmSize: x.sandbox.shmSize } : {}),
      ...(x.sandbox.ulimits?.length ? { ulimits: x.sandbox.ulimits } : {}),
      ...(emulator ? { emulator } : {}),
    };
    const result = await timed('run', () => root.run(spec, (line) => x.output(x.mask.apply(line)), x.signal));
    if (x.signal.aborted) throw new BuildStopped();
    if (result.exitCode !== 0) {
      // A step that met a full store (its files are in the store's disk) says only what its program said.
      const full = await storeDiskFull(x.store.root);
      throw new ExecError(
        `process ${JSON.stringify(op.args.join(' '))} did not complete successfully: exit code: ${result.exitCode}${
          result.tail.length
            ? `\n${result.tail
                .slice(-10)
                .map((l) => x.mask.apply(l))
                .join('\n')}`
            : ''
        }${full === undefined ? '' : `\n${storeFullAdvice(x.store.root, full)}`}`,
      );
    }
    return {
      layer: await timed('layer', () =>
        root.layer(lower, targets, { sourceDateEpoch: x.sourceDateEpoch, level: x.layerLevel }),
      ),
      time: x.time,
    };
  } finally {
    await root.release();
    for (const undo of cleanup.reverse()) await undo();
  }
}

/** RUN --network, or the build's network where the step says default; hoist's default is the host's network. */
function stepNetwork(
  step: 'default' | 'none' | 'host',
  build: 'default' | 'none' | 'host' | undefined,
): 'host' | 'none' {
  return (step === 'default' ? (build ?? 'default') : step) === 'none' ? 'none' : 'host';
}

/**
 * The user a RUN step runs as (resolveExecUser): the image's passwd and group are read unless USER is `uid:gid`,
 * from the step's mounted root (`merged`), each path resolved inside it (src/layer/rooted.ts).
 */
async function execUser(spec: string | undefined, merged: string): Promise<ExecUser> {
  if (spec && /^\d+:\d+$/.test(spec)) return resolveExecUser(spec, {});
  const read = async (f: string) => {
    const r = resolveInside(merged, f, { followLast: true });
    return r.stats?.isFile() ? readFile(r.abs, 'utf8') : undefined;
  };
  return resolveExecUser(spec ?? '', { passwd: await read('/etc/passwd'), group: await read('/etc/group') });
}

/** The mounts of one RUN --mount (cache dirs in the store, secrets on a tmpfs, binds of stages or context). */
async function runMount(
  m: MountSpec,
  from: StageSource | undefined,
  env: Map<string, string>,
  scratch: string,
  cleanup: (() => Promise<void>)[],
  x: OpContext,
  executor: Executor,
): Promise<StepMount[]> {
  switch (m.type) {
    case 'tmpfs':
      return [{ destination: m.target, type: 'tmpfs', ...(m.size ? { size: String(m.size) } : {}) }];
    case 'bind': {
      const { staged, hidden } = await stagedSource(from, m.from, m.source, scratch, cleanup, x, executor);
      return [
        {
          destination: m.target,
          type: 'bind',
          source: await executor.viewOf(staged, hidden, m.rw, scratch, cleanup),
          readonly: !m.rw,
        },
      ];
    }
    case 'cache': {
      const { dir, name, created, dropped } = await cacheMountDir(path.join(x.store.root, 'cache-mounts'), m, cleanup);
      if (dropped) x.warn(dropped);
      // A new cache may come from an earlier CI run (a cache backend keeps cache mounts); from= seeds a new cache with a directory of a stage or image (BuildKit: the cache starts as a copy of it).
      await x.cacheMount({ name, id: m.id, dir, created });
      if (from && (await readdir(dir)).length === 0)
        await seedCache(dir, (await stagedSource(from, m.from, m.source, scratch, cleanup, x, executor)).staged.path);
      const staged = await cacheSubdir(dir, from ? '' : m.source, scratch, cleanup, executor);
      return [{ destination: m.target, type: 'bind', source: staged.path, readonly: m.readonly, persistent: true }];
    }
    case 'secret': {
      const data = await secretValue(x.secrets.get(m.id));
      if (data) x.mask.add(data);
      if (!data) {
        // BuildKit's words ("secret ID: not found"), and what to pass.
        if (m.required)
          throw new ExecError(
            `secret ${m.id}: not found (the mount is required): pass --secret id=${m.id},src=FILE or --secret id=${m.id},env=VARIABLE`,
          );
        return [];
      }
      if (m.env) env.set(m.env, `${m.env}=${data.toString('utf8')}`);
      if (!m.target) return [];
      // Secrets stay on a tmpfs (/dev/shm) and are bound read-only: never in the upper dir, never in a layer.
      const dir = await mkdtemp(secretDirPrefix(existsSync('/dev/shm') ? '/dev/shm' : scratch));
      const forget = onInterrupt(() => removeSync(dir));
      cleanup.push(async () => {
        await rm(dir, { recursive: true, force: true });
        forget();
      });
      const file = await writeSecretFile(dir, m.id, data, m.mode);
      await chown(file, m.uid, m.gid).catch(() => undefined);
      return [{ destination: m.target, type: 'bind', source: file, readonly: true }];
    }
    case 'ssh': {
      // As BuildKit: an ssh mount needs `--ssh ID`; without it the mount is left out, or the step fails if required.
      if (!x.ssh.has(m.id)) {
        if (m.required)
          throw new ExecError(
            `RUN --mount=type=ssh,id=${m.id} is required: pass --ssh ${m.id} (the agent of SSH_AUTH_SOCK) or --ssh ${m.id}=SOCKET|KEY`,
          );
        return [];
      }
      const proxy = await agentProxy(await x.ssh.socket(m.id), m);
      cleanup.push(() => proxy.close());
      if (!env.has('SSH_AUTH_SOCK')) env.set('SSH_AUTH_SOCK', `SSH_AUTH_SOCK=${m.target}`);
      return [{ destination: m.target, type: 'bind', source: proxy.path }];
    }
  }
}

/**
 * A cache mount's `source=SUBDIR` (without from=): that directory of the cache is what the step sees (BuildKit:
 * llb.SourcePath on the cache mount, dockerfile2llb convert_runmount.go), resolved inside the cache (a symlink a
 * step left there leads back into it) and made when the cache does not have it yet. With from=, `source` picks
 * the directory of the stage or image the cache starts as, and the cache itself is mounted. Other steps may be
 * writing the cache meanwhile: what is mounted is what was resolved (exec/staging.ts).
 */
async function cacheSubdir(
  dir: string,
  source: string,
  scratch: string,
  cleanup: Cleanup,
  executor: Executor,
): Promise<Staged> {
  const name = cleanEntryName(source);
  let staged: Staged;
  try {
    staged = await executor.stage(dir, name, scratch, cleanup, { mkdir: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw new ExecError(`--mount=type=cache,source=${source}: ${(e as Error).message} in the cache`);
    if (e instanceof RootedPathError) throw new ExecError(`--mount=type=cache,source=${source}: ${e.message}`);
    throw e;
  }
  if (!staged.stats.isDirectory())
    throw new ExecError(`--mount=type=cache,source=${source}: /${name} in the cache is not a directory`);
  return staged;
}

let seeds = 0;

/**
 * A new (empty) cache's first content, copied from a stage or image: made beside the cache and moved in whole,
 * never written into a directory a concurrent step could be planting links in.
 */
async function seedCache(dir: string, source: string): Promise<void> {
  const tmp = `${dir}.seed-${process.pid}-${seeds++}`;
  try {
    await copyTree(source, tmp);
    await rename(tmp, dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e; // another step filled it first
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * What a mount's `source` names in its `from` (a stage or an image) or in the context, resolved inside that root
 * (a symlink there, `link -> /etc`, leads to the root's own files, never the host's) and staged, with what the
 * context holds below it that .dockerignore leaves out.
 */
async function stagedSource(
  from: StageSource | undefined,
  fromText: string | undefined,
  source: string,
  scratch: string,
  cleanup: Cleanup,
  x: OpContext,
  executor: Executor,
): Promise<{ staged: Staged; hidden: string[] }> {
  const root = from ? await x.sourceFiles(from) : x.context;
  const notFound = () =>
    new ExecError(`--mount source ${JSON.stringify(source)} not found in ${from ? fromText : 'the build context'}`);
  const found = root.find(source);
  if (!found) throw notFound();
  try {
    return { staged: await executor.stage(root.dir, found.real, scratch, cleanup), hidden: root.hidden(found) };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw notFound();
    throw e;
  }
}
