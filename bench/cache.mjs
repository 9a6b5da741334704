// Benchmark: the layer cache in the CI situation. The two-stage Debian app of `bench:run` is built and pushed by a
// runner that starts empty, with the previous build's cache in the local registry:
// - hoist: an empty store, `--cache-from type=registry,ref=…:cache` (written by the previous build with mode=max),
//   `--cache-to` a registry cache again and `--push`, as the Action runs it;
// - docker: dockerd's images and build cache wiped (`docker system prune -af`, `docker builder prune -af`) as a
//   fresh runner's would be, `docker build --cache-from` the previous image (built with BUILDKIT_INLINE_CACHE=1,
//   the cache docker can keep without buildx), then `docker push`.
// Scenarios: nothing changed, one source file changed, no cache at all. Each is run HOIST_BENCH_RUNS times (default
// 3) per tool, alternating, each on a settled disk (settle() in lib.mjs: synced, caches dropped); prints the median with min–max, the ratio of medians, hoist's peak RSS and what hoist
// reported as cached/downloaded/uploaded. Asserts nothing. Needs root, docker-registry, dockerd, debootstrap, runc
// and GNU time. Run with `npm run bench:cache` (builds first). HOIST_BENCH_ROOTFS: a ready rootfs tar to skip
// debootstrap. HOIST_BENCH_ONLY=mounts: only the cache-mount case.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { aptClean, measured, must, pushDebianBase, settle, startActionsCache, startDockerd, startRegistry, startSlowProxy, stopAll, twoStageApp } from './lib.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-cache-'));
const cli = path.resolve('dist/cli.js');
const runs = Number(process.env.HOIST_BENCH_RUNS ?? 3);

const registry = await startRegistry(work, 'registry');
const svc = await startActionsCache();
const ghaEnv = { ...process.env, ...svc.env, RUNNER_TEMP: path.join(work, 'runner-temp'), GITHUB_WORKSPACE: path.join(work, 'workspace'), TMPDIR: path.join(work, 'tmp') };
for (const d of ['runner-temp', 'workspace', 'tmp']) mkdirSync(path.join(work, d), { recursive: true });
delete ghaEnv.GITHUB_SERVER_URL;
const { docker, dockerEnv, dockerd } = await startDockerd(work);
const base = `${registry.host}/bench/debian:bookworm`;
const hoistRepo = `${registry.host}/bench/hoist-app`;
const dockerRepo = `${registry.host}/bench/docker-app`;

function context(name, greeting) {
  const dir = path.join(work, name);
  mkdirSync(dir);
  for (const [f, text] of Object.entries(twoStageApp(base, greeting))) writeFileSync(path.join(dir, f), text);
  return dir;
}

/**
 * hoist on an empty store, as a fresh runner: build, export the cache, push. `cacheFrom`: a registry cache ref, or
 * 'gha' for the Actions cache (read and written, scope `gha`); `extra`: more flags.
 */
function hoist(ctx, cacheFrom, extra = [], scope = 'gha', writeScope = scope) {
  const store = path.join(work, 'hoist-store');
  rmSync(store, { recursive: true, force: true });
  settle();
  const meta = path.join(work, 'hoist-meta.json');
  const args = [cli, 'build', '--store', store, '--progress', 'quiet', '--metadata-file', meta, ...extra];
  if (cacheFrom === 'gha') args.push('--cache-from', `type=gha,scope=${scope}`, '--cache-to', `type=gha,scope=${writeScope},mode=max`);
  else {
    if (cacheFrom) args.push('--cache-from', `type=registry,ref=${cacheFrom}`);
    args.push('--cache-to', `type=registry,ref=${hoistRepo}:cache-run,mode=max`);
  }
  args.push('-t', `${hoistRepo}:run`, '--push', ctx);
  const m = measured('hoist build', process.execPath, args, cacheFrom === 'gha' ? ghaEnv : process.env);
  const c = JSON.parse(readFileSync(meta, 'utf8'))['hoist.cache'];
  rmSync(store, { recursive: true, force: true });
  return { ...m, cache: c };
}

/** docker on a wiped daemon, as a fresh runner: build with inline cache, push. */
function dockerBuild(ctx, cacheFrom, tag = `${dockerRepo}:run`) {
  must(docker, ['system', 'prune', '-af'], { env: dockerEnv });
  must(docker, ['builder', 'prune', '-af'], { env: dockerEnv });
  settle();
  const args = ['build', '-q', '--network', 'host', '--build-arg', 'BUILDKIT_INLINE_CACHE=1', '-t', tag];
  if (cacheFrom) args.push('--cache-from', cacheFrom);
  const b = measured('docker build', docker, [...args, ctx], dockerEnv);
  const p = measured('docker push', docker, ['push', '-q', tag], dockerEnv);
  return { secs: b.secs + p.secs };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

try {
  await pushDebianBase({ work, cli, store: path.join(work, 'seed-store'), base });
  if (process.env.HOIST_BENCH_ONLY !== 'mounts') {
    const same = context('ctx', 'hi');
    const changed = context('ctx-changed', 'hello');

    // The previous build of each: hoist's registry cache (mode=max) and docker's image with its inline cache.
    console.log('the previous builds …');
    const seed = path.join(work, 'seed-store');
    must(process.execPath, [cli, 'build', '--store', seed, '--progress', 'quiet', '--cache-to', `type=registry,ref=${hoistRepo}:cache,mode=max`, '-t', `${hoistRepo}:prev`, '--push', same]);
    dockerBuild(same, undefined, `${dockerRepo}:prev`);

    const scenarios = [
      ['nothing changed', same, true, 0.2],
      ['one source file changed', changed, true, 0.5],
      ['no cache', same, false, 1.0],
    ];
    const rows = [];
    for (const [name, ctx, cached, goal] of scenarios) {
      const h = [];
      const d = [];
      for (let i = 0; i < runs; i++) {
        console.log(`${name}: run ${i + 1} of ${runs}`);
        h.push(hoist(ctx, cached ? `${hoistRepo}:cache` : undefined));
        d.push(dockerBuild(ctx, cached ? `${dockerRepo}:prev` : undefined));
      }
      rows.push({ name, goal, h, d });
    }

    // The Actions cache (type=gha) in the same situations: the previous build's entries in a local Actions cache
    // service (the tests' harness: the Twirp methods over Azurite), read and written through @actions/cache.
    must(process.execPath, [cli, 'build', '--store', path.join(work, 'gha-seed-store'), '--progress', 'quiet', '--cache-to', 'type=gha,scope=gha,mode=max', '-t', `${hoistRepo}:gha-prev`, '--push', same], { env: ghaEnv });
    for (const [name, ctx, cached, goal, d] of [
      ['gha: nothing changed', same, true, 0.2, rows[0].d],
      ['gha: one source file', changed, true, 0.5, rows[1].d],
      ['gha: cold (empty cache)', same, false, 1.0, rows[2].d],
    ]) {
      const h = [];
      for (let i = 0; i < runs; i++) {
        console.log(`${name}: run ${i + 1} of ${runs}`);
        // Each run reads the previous build's scope and the others write a scope of their own, so that each finds the cache as the
        // previous build left it (a run that wrote its records into the scope it reads would make the next one a
        // rebuild with nothing changed). Cold: a scope with no index (the layers' entries, shared by all scopes, are
        // new ones anyway: RUN steps give new files).
        // Nothing changed writes where it reads (and so writes nothing), as a CI rerun does.
        const writeScope = name === 'gha: nothing changed' ? 'gha' : `${name.replace(/\W+/g, '-')}-${i}`;
        h.push(hoist(ctx, 'gha', [], cached ? 'gha' : `cold-${i}`, writeScope));
      }
      rows.push({ name, goal, h, d });
    }

    console.log(`\nbuild and push on an empty runner, the previous build's cache in the registry; median (min–max) of ${runs} runs, seconds`);
    console.log('scenario                   docker build+push      hoist build+push   hoist/docker  goal   hoist peak RSS   hoist cached  downloaded   uploaded');
    for (const { name, goal, h, d } of rows) {
      const hs = h.map((r) => r.secs);
      const ratio = median(hs) / median(d.map((r) => r.secs));
      const c = h[0].cache;
      console.log(
        `${name.padEnd(24)} ${spread(d.map((r) => r.secs)).padStart(19)} ${spread(hs).padStart(20)} ${ratio.toFixed(2).padStart(13)}  ≤${goal.toFixed(1)} ${`${Math.max(...h.map((r) => r.rssMiB)).toFixed(0)} MiB`.padStart(15)} ${`${c.hits}/${c.hits + c.misses}`.padStart(13)} ${mib(c.downloadedBytes).padStart(11)} ${mib(c.uploadedBytes).padStart(10)}`,
      );
    }

  }

  // A cache mount kept across runs: apt's downloaded packages as a cache mount, the step rerun on a fresh runner (a
  // build arg changes) and the image pushed, with the mount kept in the Actions cache, in a registry cache, and not
  // kept. (Not apt's lists and pkgcache too: 160 MB that apt rewrites on every run, to save 6 MB of download.) The packages
  // come through a proxy that makes the mirror distant (HOIST_BENCH_SOURCE_RATE bytes a second, default 10 MB/s;
  // HOIST_BENCH_SOURCE_LATENCY ms a request, default 50): here the mirror is on the local network (135 MB/s), where
  // a download costs less than anything a cache can do.
  const rate = Number(process.env.HOIST_BENCH_SOURCE_RATE ?? 10_000_000);
  const latency = Number(process.env.HOIST_BENCH_SOURCE_LATENCY ?? 50);
  const source = await startSlowProxy({ bytesPerSecond: rate, latencyMs: latency });
  try {
    const mountCtx = path.join(work, 'ctx-mount');
    mkdirSync(mountCtx);
    const apt = `apt-get -o Acquire::http::Proxy=${source.url}`;
    writeFileSync(path.join(mountCtx, 'Dockerfile'), `FROM ${base}
ARG RUN_ID
RUN --mount=type=cache,target=/var/cache/apt/archives,sharing=locked echo "$RUN_ID" && rm -f /etc/apt/apt.conf.d/docker-clean && ${apt} update && ${apt} install -y --no-install-recommends gcc libc6-dev && ${aptClean.replace('/var/cache/apt/*', '/var/cache/apt/*.bin')}
`);
    const kinds = {
      gha: ['--cache-from', 'type=gha,scope=mounts', '--cache-to', 'type=gha,scope=mounts'],
      registry: ['--cache-from', `type=registry,ref=${hoistRepo}:mounts`, '--cache-to', `type=registry,ref=${hoistRepo}:mounts`],
      none: [],
    };
    const mountRun = (i, kind) => {
      const store = path.join(work, 'hoist-store');
      rmSync(store, { recursive: true, force: true });
      settle();
      return measured('hoist build', process.execPath, [cli, 'build', '--store', store, '--progress', 'quiet', '--build-arg', `RUN_ID=${i}-${kind}`, ...kinds[kind], '-t', `${hoistRepo}:mount-${kind}`, '--push', mountCtx], ghaEnv).secs;
    };
    mountRun('seed', 'gha');
    mountRun('seed', 'registry');
    const times = { gha: [], registry: [], none: [] };
    for (let i = 0; i < runs; i++) {
      console.log(`cache mount: run ${i + 1} of ${runs}`);
      for (const kind of Object.keys(times)) times[kind].push(mountRun(i, kind));
    }
    console.log(`\nRUN --mount=type=cache,target=/var/cache/apt/archives apt-get update && apt-get install gcc libc6-dev (41 packages, 53 MB), rerun on an empty runner and pushed; the mirror at ${(rate / 1e6).toFixed(0)} MB/s and ${latency} ms a request; seconds`);
    console.log(`  the mounts kept in the Actions cache   ${spread(times.gha)}   saved ${(median(times.none) - median(times.gha)).toFixed(2)} s`);
    console.log(`  the mounts kept in a registry cache    ${spread(times.registry)}   saved ${(median(times.none) - median(times.registry)).toFixed(2)} s`);
    console.log(`  not kept                               ${spread(times.none)}`);
  } finally {
    await source.stop();
  }

  const v = spawnSync(docker, ['version', '--format', '{{.Server.Version}}'], { env: dockerEnv, encoding: 'utf8' }).stdout.trim();
  console.log(`\ndocker ${v}; hoist ${JSON.parse(readFileSync('package.json', 'utf8')).version}; ${new Date().toISOString()}`);
} finally {
  await svc.stop();
  await stopAll(work, dockerd, registry);
}
