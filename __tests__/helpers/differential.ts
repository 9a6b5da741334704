// The differential harness: a case (Dockerfile, context, build args) built by `docker build` (BuildKit of
// Debian's dockerd) and by hoist, compared by flattened filesystem and config (see flatten.ts), then loaded
// (and, when the case says, run) in docker.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Dockerd } from './dockerd.js';
import { comparableConfig, type FlatEntry, fsObject, readSaved } from './flatten.js';
import { hoist, hoistWithEnv } from './hoist.js';
import { run } from './tools.js';

export type FileSpec =
  | string
  | { content: string; mode?: number; uid?: number; gid?: number }
  | { symlink: string }
  /** a hard link to another of the context's files (named before it) */
  | { hardlink: string }
  /** mtime: seconds, set after every other file's (which are fixedTime) */
  | { dir: true; mode?: number; mtime?: number }
  /** a tar made by GNU tar of these files and symlinks (owned by 1234:5678), compressed with the given tool */
  | {
      tarOf: Record<string, string | { symlink: string } | { hardlink: string }>;
      compress?: 'gzip' | 'bzip2' | 'xz' | 'zstd';
    };

export interface Case {
  name: string;
  dockerfile: string;
  /** a feature Docker 20.10's BuildKit lacks: compared only when the reference is docker 26 (BuildKit 0.13) */
  current?: boolean;
  files?: Record<string, FileSpec>;
  buildArgs?: Record<string, string>;
  target?: string;
  /** what `docker run` of hoist's image prints */
  runs?: string;
  /**
   * Empty mount-point directories the BuildKit of Docker 20.10 leaves in the image. Current BuildKit removes the
   * stubs it made for RUN --mount targets (executor/stubs.go, MountStubsCleaner), and so does hoist; they are
   * taken out of docker's side only.
   */
  oldBuildkitStubs?: string[];
  /**
   * Attributes current BuildKit gives these paths where the BuildKit of Docker 20.10 gave others (e.g. owners of an
   * archive ADD --chown unpacks): set on docker's side, which a current docker already has.
   */
  currentBuildkit?: Record<string, Partial<FlatEntry>>;
  /**
   * Files holding `id`'s output: on docker's side the primary group is put among the groups, as current
   * BuildKit (and containerd) give a step since CVE-2023-25173 (a no-op where docker's BuildKit already does).
   */
  idOutputs?: string[];
  /** The same for the config: made on docker's side as current BuildKit writes it (a no-op where it already does). */
  currentBuildkitConfig?: (config: { history?: { created_by?: string; empty_layer?: boolean }[] }) => void;
  /** --secret id=ID,src=FILE for both builders, the file holding this text */
  secrets?: Record<string, string>;
  /** --ssh flags for both builders ({{WORK}}: the work directory; SSH_AUTH_SOCK is the caller's) */
  ssh?: string[];
  /** --build-context NAME=DIR for both builders: each a directory of these files */
  namedDirs?: Record<string, Record<string, FileSpec>>;
  /** --build-context NAME=docker-image://REF for both builders ({{BASE}}: the base image) */
  namedImages?: Record<string, string>;
}

export const fixedTime = 1_700_000_000;

/**
 * History texts that current BuildKit writes differently from the BuildKit in Docker 20.10 (the oracle here);
 * hoist follows current BuildKit (dockerfile2llb/convert.go: dispatchArg writes the values, dispatchCopy the
 * --chown/--chmod flags, HealthcheckConfig gained StartInterval, EXPOSE lists its ports). Both sides are reduced to what they share.
 */
export function normaliseHistory(config: Record<string, unknown>): Record<string, unknown> {
  for (const h of (config.history as { created_by?: string }[] | undefined) ?? []) {
    let t = h.created_by ?? '';
    if (t.startsWith('ARG '))
      t =
        'ARG ' +
        t
          .slice(4)
          .split(' ')
          .map((a) => a.split('=')[0])
          .join(' ');
    t = t.replace(/^((?:COPY|ADD)(?: --[a-z]+(?:=\S+)?)*) /, (m) => m.replace(/ --(chown|chmod)=\S+/g, ''));
    t = t.replace(/^(HEALTHCHECK &\{\[.*\] "[^"]*" "[^"]*" "[^"]*")(?: "[^"]*")?( '.*'\})$/, '$1$2');
    // Docker 20.10 printed EXPOSE's port map; current BuildKit the sorted list (testExportedHistory).
    t = t.replace(
      /^EXPOSE map\[(.*)\]$/,
      (_m, ports: string) =>
        `EXPOSE [${ports
          .split(' ')
          .map((p) => p.replace(/:\{\}$/, ''))
          .join(' ')}]`,
    );
    h.created_by = t;
  }
  return config;
}

export function writeContext(dir: string, c: Case, base: string, http: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'Dockerfile'), c.dockerfile.replaceAll('{{BASE}}', base).replaceAll('{{HTTP}}', http));
  for (const [name, spec] of Object.entries(c.files ?? {})) {
    const p = path.join(dir, name);
    mkdirSync(path.dirname(p), { recursive: true });
    if (typeof spec === 'string') writeFileSync(p, spec);
    else if ('symlink' in spec) symlinkSync(spec.symlink, p);
    else if ('hardlink' in spec) linkSync(path.join(dir, spec.hardlink), p);
    else if ('tarOf' in spec) {
      const src = mkdtempSync(path.join(tmpdir(), 'hoist-tarof-'));
      for (const [n, text] of Object.entries(spec.tarOf)) {
        mkdirSync(path.dirname(path.join(src, n)), { recursive: true });
        if (typeof text === 'string') writeFileSync(path.join(src, n), text);
        else if ('hardlink' in text) linkSync(path.join(src, text.hardlink), path.join(src, n));
        else symlinkSync(text.symlink, path.join(src, n));
      }
      run('sh', ['-c', `find . -exec touch -h -d @${fixedTime - 1000} {} +`], { cwd: src });
      const flag = { gzip: '--gzip', bzip2: '--bzip2', xz: '--xz', zstd: '--zstd' }[spec.compress ?? 'gzip'];
      run('tar', [
        '--format=posix',
        '--numeric-owner',
        '--owner=1234',
        '--group=5678',
        ...(spec.compress ? [flag] : []),
        '-C',
        src,
        '-cf',
        p,
        '.',
      ]);
    } else if ('dir' in spec) {
      mkdirSync(p, { recursive: true });
      if (spec.mode !== undefined) chmodSync(p, spec.mode);
    } else {
      writeFileSync(p, spec.content);
      if (spec.mode !== undefined) chmodSync(p, spec.mode);
      if (spec.uid !== undefined) chownSync(p, spec.uid, spec.gid ?? spec.uid);
    }
  }
  // Same mtimes for every file, so that both builders see (and must keep) the same ones.
  run('sh', ['-c', `find . -not -type l -exec touch -h -d @${fixedTime} {} +`], { cwd: dir });
  for (const [name, spec] of Object.entries(c.files ?? {}))
    if (typeof spec === 'object' && 'dir' in spec && spec.mtime !== undefined)
      utimesSync(path.join(dir, name), spec.mtime, spec.mtime);
  utimesSync(dir, fixedTime, fixedTime);
}

/** (the suite's start when scripts/test.mjs runs it: a reference docker built in another test file is as new) */
export const testStarted = Math.floor(Number(process.env.HOIST_TEST_STARTED ?? Date.now()) / 1000) - 60;

/** busybox id's output with the primary group among the groups (the kernel keeps them sorted by number). */
export function withPrimaryGroup(text: string): string {
  return text.replace(
    /^(uid=\S+ gid=(\d+)(\([^)]*\))?)(?: groups=(\S*))?$/gm,
    (_all, head: string, gid: string, name = '', groups = '') => {
      const list = groups ? groups.split(',') : [];
      const all = list.some((g: string) => parseInt(g, 10) === Number(gid)) ? list : [...list, `${gid}${name}`];
      return `${head} groups=${all.sort((a: string, b: string) => parseInt(a, 10) - parseInt(b, 10)).join(',')}`;
    },
  );
}

/** Files a RUN step wrote carry the time of that build, which differs between any two builds: not compared. */
export function withoutBuildTimes(fs: Record<string, FlatEntry>): Record<string, FlatEntry> {
  return Object.fromEntries(
    Object.entries(fs).map(([k, e]) => [
      k,
      e.mtime !== undefined && e.mtime >= testStarted ? { ...e, mtime: undefined } : e,
    ]),
  );
}

/**
 * Two trees as the comparison reads them: no build's time (withoutBuildTimes), and a directory's time only where
 * neither side's is a build's. A directory a step makes has the time of that build in BuildKit (WORKDIR, a COPY's
 * missing parents) where hoist gives the newest input's, to be reproducible; one whose time comes from the inputs
 * (a directory copied from the context or a stage) must have the same on both sides.
 */
export function comparableTrees(
  got: Map<string, FlatEntry>,
  want: Map<string, FlatEntry>,
): [Record<string, FlatEntry>, Record<string, FlatEntry>] {
  const g = withoutBuildTimes(fsObject(got));
  const w = withoutBuildTimes(fsObject(want));
  for (const [k, e] of Object.entries(g)) {
    const other = w[k];
    if (e.type !== 'directory' || other?.type !== 'directory' || (e.mtime !== undefined && other.mtime !== undefined))
      continue;
    g[k] = { ...e, mtime: undefined };
    w[k] = { ...other, mtime: undefined };
  }
  return [g, w];
}

export interface DifferentialEnv {
  d: Dockerd;
  work: string;
  store: string;
  base: string;
  http: string;
  /** --isolation for hoist's RUN steps (default: auto, which is runc here) */
  isolation?: 'proot' | 'chroot';
  /** how hoist is run (default: here, as a child): e.g. inside a container without privileges */
  hoist?: (argv: string[]) => Promise<{ code: number; err: string }>;
}

/**
 * Where docker's images of the cases are kept for this run: beside every test file's under scripts/test.mjs
 * (HOIST_TEST_SHARED, removed with the run), else this process's own.
 */
let ownReferences: string | undefined;
function referenceDir(): string {
  const shared = process.env.HOIST_TEST_SHARED;
  if (shared) {
    const dir = path.join(shared, 'docker-references');
    mkdirSync(dir, { recursive: true });
    return dir;
  }
  ownReferences ??= mkdtempSync(path.join(tmpdir(), 'hoist-docker-references-'));
  return ownReferences;
}

/** The files of a context as both builders read them (not its Dockerfile): names, kinds, modes, owners, times, bytes. */
function treeText(dir: string, rel = ''): string {
  return readdirSync(path.join(dir, rel))
    .sort()
    .map((name) => {
      const p = path.join(rel, name);
      if (p === 'Dockerfile') return '';
      const st = lstatSync(path.join(dir, p));
      const head = `${p} ${st.mode} ${st.uid}:${st.gid} ${st.mtimeMs}`;
      if (st.isSymbolicLink()) return `${head} -> ${readlinkSync(path.join(dir, p))}\n`;
      if (st.isDirectory()) return `${head}/\n${treeText(dir, p)}`;
      return `${head} ${createHash('sha256')
        .update(readFileSync(path.join(dir, p)))
        .digest('hex')}\n`;
    })
    .join('');
}

/** The base's manifest digest, which decides what FROM gives docker wherever the base is served from. */
const baseDigests = new Map<string, Promise<string>>();
function baseDigest(base: string): Promise<string> {
  let p = baseDigests.get(base);
  if (!p) {
    const m = /^([^/]+)\/(.+):([^:/]+)$/.exec(base);
    p = m
      ? fetch(`http://${m[1]}/v2/${m[2]}/manifests/${m[3]}`, {
          method: 'HEAD',
          headers: {
            accept:
              'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json',
          },
        }).then((r) => r.headers.get('docker-content-digest') ?? base)
      : Promise.resolve(base);
    baseDigests.set(base, p);
  }
  return p;
}

/**
 * What decides docker's image of a case: the docker, the base's digest (its name too when the Dockerfile uses it
 * beyond FROM), the web server's address when it is used (an ADD's URL is in the history), the context's files and
 * every flag the case gives.
 */
async function referenceKey(env: DifferentialEnv, c: Case, dir: string): Promise<string> {
  const beyondFrom = c.dockerfile.replace(/^FROM \{\{BASE\}\}/gm, '').includes('{{BASE}}');
  const key = {
    // a step's output may hold the day (useradd's /etc/shadow: days since 1970): an image of another day is not reused
    day: Math.floor(Date.now() / 86_400_000),
    major: env.d.major,
    base: await baseDigest(env.base),
    baseName: beyondFrom ? env.base : '',
    http: c.dockerfile.includes('{{HTTP}}') ? env.http : '',
    dockerfile: c.dockerfile,
    tree: treeText(dir),
    flags: [
      c.buildArgs,
      c.target,
      c.secrets,
      (c.ssh ?? []).map((s) => s.replaceAll('{{WORK}}', env.work)),
      c.namedDirs,
      c.namedImages,
    ],
  };
  return createHash('sha256').update(JSON.stringify(key)).digest('hex');
}

/** Builds one case with docker and with hoist and expects the same image. */
export async function compareWithDocker(env: DifferentialEnv, c: Case, i: number | string): Promise<void> {
  const { d, work, store, base, http } = env;
  if (c.current && d.major < 26) {
    process.stderr.write(`NOTICE: "${c.name}" needs docker 26 as the reference; skipped\n`);
    return;
  }
  const dir = path.join(work, `case${i}`);
  writeContext(dir, c, base, http);
  const args = Object.entries(c.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  if (c.target) args.push('--target', c.target);
  for (const [id, text] of Object.entries(c.secrets ?? {})) {
    const file = path.join(work, `case${i}-secret-${id}`);
    writeFileSync(file, text);
    args.push('--secret', `id=${id},src=${file}`);
  }
  for (const s of c.ssh ?? []) args.push('--ssh', s.replaceAll('{{WORK}}', work));
  for (const [name, files] of Object.entries(c.namedDirs ?? {})) {
    const named = path.join(work, `case${i}-named-${name}`);
    writeContext(named, { name, dockerfile: '', files }, base, http);
    rmSync(path.join(named, 'Dockerfile'));
    args.push('--build-context', `${name}=${named}`);
  }
  for (const [name, ref] of Object.entries(c.namedImages ?? {}))
    args.push('--build-context', `${name}=docker-image://${ref.replaceAll('{{BASE}}', base)}`);

  // The two builds run side by side (each waits on its own processes and downloads much of the time); docker's is
  // taken from an earlier build of the same case where there is one (the proot and chroot rounds, a Debian case
  // again in unprivileged.test.ts). dockerd runs here without a bridge (no iptables in the sandbox), so RUN steps
  // use the host's network.
  const theirTar = path.join(work, `case${i}-docker.tar`);
  const reference = (async () => {
    const kept = path.join(referenceDir(), `${await referenceKey(env, c, dir)}.tar`);
    if (existsSync(kept)) {
      copyFileSync(kept, theirTar);
      return { stderr: '', saved: 0 };
    }
    const built = await d.dockerAsync(['build', '-q', '--network', 'host', '-t', `case${i}:docker`, ...args, dir], {
      DOCKER_BUILDKIT: '1',
    });
    const saved = built.status === 0 ? await d.dockerAsync(['save', '-o', theirTar, `case${i}:docker`]) : undefined;
    if (built.stderr === '' && saved?.status === 0) {
      copyFileSync(theirTar, `${kept}.${process.pid}`);
      renameSync(`${kept}.${process.pid}`, kept);
    }
    return { stderr: built.stderr, saved: saved?.status };
  })();
  const ourTar = path.join(work, `case${i}-hoist.tar`);
  const ours = await (env.hoist ?? hoist)([
    'build',
    '--store',
    store,
    ...(env.isolation ? ['--isolation', env.isolation] : []),
    '--progress',
    'quiet',
    '-t',
    `case${i}:hoist`,
    ...args,
    '-o',
    `type=docker,dest=${ourTar}`,
    dir,
  ]);
  const theirs = await reference;
  expect(theirs.stderr).toBe('');
  expect(theirs.saved).toBe(0);
  expect(ours.err).toBe('');
  expect(ours.code).toBe(0);

  mkdirSync(path.join(work, `case${i}-d`));
  mkdirSync(path.join(work, `case${i}-h`));
  const want = await readSaved(theirTar, path.join(work, `case${i}-d`));
  const got = await readSaved(ourTar, path.join(work, `case${i}-h`));
  c.currentBuildkitConfig?.(want.config as Parameters<NonNullable<Case['currentBuildkitConfig']>>[0]);
  // Docker 20.10's BuildKit writes "OnBuild": null; current BuildKit leaves it out.
  const wantConfig = want.config.config as Record<string, unknown> | undefined;
  if (wantConfig && wantConfig.OnBuild === null) delete wantConfig.OnBuild;
  expect(normaliseHistory(comparableConfig(got.config))).toEqual(normaliseHistory(comparableConfig(want.config)));
  for (const stub of c.oldBuildkitStubs ?? []) want.fs.delete(stub);
  for (const [p, attrs] of Object.entries(c.currentBuildkit ?? {})) {
    const e = want.fs.get(p);
    if (e) want.fs.set(p, { ...e, ...attrs });
  }
  for (const p of c.idOutputs ?? []) {
    const e = want.fs.get(p);
    const text = want.texts.get(p);
    if (!e || text === undefined) continue;
    const now = withPrimaryGroup(text);
    want.fs.set(p, { ...e, size: Buffer.byteLength(now), sha256: createHash('sha256').update(now).digest('hex') });
  }
  // docker 26's containerd image store diffs a layer by walking both trees (containerd's walking differ), which
  // writes a new hard link to an unchanged lower file as a copy of it; BuildKit's overlay differ (buildkitd's own
  // snapshotter: the docker-container driver build-push-action sets up) writes the link, as hoist does.
  for (const [p, e] of got.fs) {
    const w = want.fs.get(p);
    const target = e.type === 'hardlink' && e.link ? got.fs.get(e.link) : undefined;
    if (
      w?.type === 'file' &&
      target?.type === 'file' &&
      target.sha256 === w.sha256 &&
      e.mode === w.mode &&
      e.uid === w.uid &&
      e.gid === w.gid
    )
      want.fs.set(p, e);
  }
  const [gotTree, wantTree] = comparableTrees(got.fs, want.fs);
  expect(gotTree).toEqual(wantTree);
  // And docker itself takes ours.
  const loaded = d.docker(['load', '-i', ourTar]);
  expect(loaded.stderr).toBe('');
  if (c.runs !== undefined) {
    // --load straight into the daemon, then run what it holds.
    if (!env.hoist) {
      const viaSocket = await hoistWithEnv({ DOCKER_HOST: d.host }, [
        'build',
        '--store',
        store,
        '--progress',
        'quiet',
        '-t',
        `case${i}:loaded`,
        ...args,
        '--load',
        dir,
      ]);
      expect(viaSocket.code).toBe(0);
      expect(d.docker(['run', '--rm', '--network', 'none', `case${i}:loaded`]).stdout).toBe(c.runs);
    }
    const ran = d.docker(['run', '--rm', '--network', 'none', `case${i}:hoist`]);
    expect(ran.stderr).toBe('');
    expect(ran.stdout).toBe(c.runs);
  }
}
