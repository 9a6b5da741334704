// Benchmark: the CI scenarios (issue 27). The app of lib.mjs's ciApp (two stages on a Debian base: a RUN writing 200
// vendor files of 100 kB, 300 source files copied and tarred by a second RUN, both copied into the final stage) is
// built and pushed to one local registry by docker 20.10 (BuildKit 0.8, inline cache), docker 26.1 (BuildKit 0.13
// through buildx, --provenance=false, a registry cache with mode=max) and hoist (a registry cache with mode=max;
// and the Actions cache, type=gha, through the tests' local service), each from empty state as a fresh runner
// (hoist: an empty store; docker: `system prune -af` and `builder prune -af`; the disk settled: see settle()):
// - local rebuild, nothing changed: right after the build without cache, on the state it left (`-t` only, no push);
// - fresh runner, nothing changed; one source file changed; no cache (build and push).
// Then the floor: each phase done on the same data by the fastest tools here (curl, pigz -d or zcat, sha256sum,
// tar -x, tar -c | gzip -1, curl uploads), beside hoist's own profile of its median run (--metadata-file's
// hoist.profile). Prints medians (min–max) of HOIST_BENCH_RUNS rounds (default 3) and the ratios to the best docker.
// Asserts nothing. Needs root, docker-registry, dockerd, runc, GNU time, and docker 26 unpacked by the test set-up.
// `npm run bench:cache` (builds first). HOIST_BENCH_ROOTFS: a ready rootfs tar to skip debootstrap.
// HOIST_BENCH_ONLY=mounts: only the cache-mount case; =scenarios: only the scenarios.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  aptClean,
  hoistNodeVersion,
  measured,
  pushDebianBase,
  settle,
  startActionsCache,
  startDockerd,
  startDockerd26,
  startRegistry,
  startSlowProxy,
  stopAll,
} from './lib.mjs';
import { hoistPhases, measureFloor, median, runScenarios, spread } from './scenarios.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-cache-'));
const cli = path.resolve('dist/cli.js');
const runs = Number(process.env.HOIST_BENCH_RUNS ?? 3);
const only = process.env.HOIST_BENCH_ONLY;

const registry = await startRegistry(work, 'registry');
const svc = await startActionsCache().catch((e) => {
  registry.child.kill(); // nothing left running when the run cannot start
  throw e;
});
const ghaEnv = {
  ...process.env,
  ...svc.env,
  RUNNER_TEMP: path.join(work, 'runner-temp'),
  GITHUB_WORKSPACE: path.join(work, 'workspace'),
  TMPDIR: path.join(work, 'tmp'),
};
for (const d of ['runner-temp', 'workspace', 'tmp', 'd26']) mkdirSync(path.join(work, d), { recursive: true });
delete ghaEnv.GITHUB_SERVER_URL;
const { docker, dockerEnv, dockerd } = await startDockerd(work);
const d26 = only === 'mounts' ? undefined : await startDockerd26(path.join(work, 'd26'));
const base = `${registry.host}/bench/debian:bookworm`;
const hoistRepo = `${registry.host}/bench/hoist-app`;
class Done extends Error {}
const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

try {
  await pushDebianBase({ work, cli, store: path.join(work, 'seed-store'), base });
  if (only !== 'mounts') {
    const d20 = { docker, dockerEnv: { ...dockerEnv, DOCKER_BUILDKIT: '1' } };
    const { results, repos, ctx } = runScenarios({ work, cli, registry, base, d20, d26, ghaEnv, rounds: runs });
    console.log('the floor …');
    const floor = measureFloor({ work, registry, repos, ctx, base, rounds: runs });
    const f = (k) => floor[k].secs;
    const floorOf = {
      local: f('start') + f('context'),
      nothing: f('start') + f('resolve'),
      one:
        f('start') +
        f('resolve') +
        f('pull (one file)') +
        f('context') +
        f('run (one file)') +
        f('layers (one file)') +
        f('push (one file)'),
      cold:
        f('start') +
        f('resolve') +
        f('pull (cold)') +
        f('context') +
        f('run (cold)') +
        f('layers (cold)') +
        f('push (cold)'),
    };
    const rows = [
      ['local rebuild, nothing changed', 'local', 'hoist', 0.8],
      ['fresh runner, nothing changed', 'nothing', 'hoist', 0.08],
      ['fresh runner, one file changed', 'one', 'hoist', 0.5],
      ['no cache', 'cold', 'hoist', 0.6],
      ['gha: fresh, nothing changed', 'nothing', 'hoistGha', 0.08],
      ['gha: fresh, one file changed', 'one', 'hoistGha', 0.5],
      ['gha: no cache', 'cold', 'hoistGha', 0.6],
    ];
    console.log(
      `\nbuild (and push, but the local rebuild) from empty state; median (min–max) of ${runs} rounds, seconds; ratio: hoist / the faster docker`,
    );
    console.log(
      `${'scenario'.padEnd(31)} ${'docker 20.10'.padStart(18)} ${'docker 26.1'.padStart(18)} ${'hoist'.padStart(18)}  ratio   goal  floor  hoist RSS  cached  downloaded  uploaded  gha/registry (goal ≤1.10)`,
    );
    for (const [name, kind, tool, goal] of rows) {
      const secs = (t) => results[kind][t].map((r) => r.secs);
      const best = Math.min(median(secs('docker20')), median(secs('docker26')));
      const h = results[kind][tool];
      const c = h[0].cache;
      console.log(
        `${name.padEnd(31)} ${spread(secs('docker20')).padStart(18)} ${spread(secs('docker26')).padStart(18)} ${spread(secs(tool)).padStart(18)} ${(median(secs(tool)) / best).toFixed(2).padStart(6)} ≤${goal.toFixed(2)} ${floorOf[kind].toFixed(2).padStart(6)} ${`${Math.max(...h.map((r) => r.rssMiB)).toFixed(0)} MiB`.padStart(10)} ${`${c.hits}/${c.hits + c.misses}`.padStart(7)} ${mib(c.downloadedBytes).padStart(11)} ${mib(c.uploadedBytes).padStart(9)}${tool === 'hoistGha' ? `  ${(median(secs(tool)) / median(secs('hoist'))).toFixed(2).padStart(12)}` : ''}`,
      );
    }
    console.log(
      "\nwhere the time goes: hoist's phases in its median run (wall seconds; phases overlap) and the floor of each (median)",
    );
    const one = hoistPhases(results.one.hoist);
    const cold = hoistPhases(results.cold.hoist);
    const pairs = [
      ['start', 'start', 'start'],
      ['resolve', 'resolve', 'resolve'],
      ['cache-import', undefined, undefined],
      ['pull', 'pull (one file)', 'pull (cold)'],
      ['unpack', undefined, undefined],
      ['context', 'context', 'context'],
      ['run', 'run (one file)', 'run (cold)'],
      ['layer', 'layers (one file)', 'layers (cold)'],
      ['compress', undefined, undefined],
      ['export', 'push (one file)', 'push (cold)'],
      ['cache-export', undefined, undefined],
    ];
    const cell = (x) => (x === undefined ? '' : x.toFixed(2)).padStart(9);
    const local = hoistPhases(results.local.hoist);
    console.log(
      `local rebuild: ${Object.entries(local.phases)
        .map(([p, s]) => `${p} ${s.toFixed(3)}`)
        .join(', ')} (all ${local.secs.toFixed(2)} s)`,
    );
    console.log(
      `${'phase'.padEnd(13)} ${'one file'.padStart(9)} ${'floor'.padStart(9)} ${'no cache'.padStart(9)} ${'floor'.padStart(9)}  the floor's command`,
    );
    for (const [phase, fo, fc] of pairs) {
      console.log(
        `${phase.padEnd(13)} ${cell(one.phases[phase])} ${cell(fo && f(fo))} ${cell(cold.phases[phase])} ${cell(fc && f(fc))}  ${fo ? floor[fo].cmd : fc ? floor[fc].cmd : ''}${fc && fc !== fo && floor[fc].cmd !== floor[fo]?.cmd ? ` / ${floor[fc].cmd}` : ''}`,
      );
    }
    console.log(
      `${'all'.padEnd(13)} ${cell(one.secs)} ${cell(floorOf.one)} ${cell(cold.secs)} ${cell(floorOf.cold)}  (hoist: the wall time of the command; floor: the phases' sum)`,
    );
    const v26 = spawnSync(d26.docker, ['version', '--format', '{{.Server.Version}}'], {
      env: d26.dockerEnv,
      encoding: 'utf8',
    }).stdout.trim();
    const bx = spawnSync(d26.docker, ['buildx', 'version'], { env: d26.dockerEnv, encoding: 'utf8' }).stdout.trim();
    console.log(`docker 26: ${v26}, ${bx}`);
    console.log(
      `hoist on node ${hoistNodeVersion} (dist/cli.js; its compile cache emptied for every run from empty state)`,
    );
  }
  if (only === 'scenarios') throw new Done();

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
    writeFileSync(
      path.join(mountCtx, 'Dockerfile'),
      `FROM ${base}
ARG RUN_ID
RUN --mount=type=cache,target=/var/cache/apt/archives,sharing=locked echo "$RUN_ID" && rm -f /etc/apt/apt.conf.d/docker-clean && ${apt} update && ${apt} install -y --no-install-recommends gcc libc6-dev && ${aptClean.replace('/var/cache/apt/*', '/var/cache/apt/*.bin')}
`,
    );
    const kinds = {
      gha: ['--cache-from', 'type=gha,scope=mounts', '--cache-to', 'type=gha,scope=mounts'],
      registry: [
        '--cache-from',
        `type=registry,ref=${hoistRepo}:mounts`,
        '--cache-to',
        `type=registry,ref=${hoistRepo}:mounts`,
      ],
      none: [],
    };
    const mountRun = (i, kind) => {
      const store = path.join(work, 'hoist-store');
      rmSync(store, { recursive: true, force: true });
      settle();
      return measured(
        'hoist build',
        process.execPath,
        [
          cli,
          'build',
          '--store',
          store,
          '--progress',
          'quiet',
          '--build-arg',
          `RUN_ID=${i}-${kind}`,
          ...kinds[kind],
          '-t',
          `${hoistRepo}:mount-${kind}`,
          '--push',
          mountCtx,
        ],
        ghaEnv,
      ).secs;
    };
    mountRun('seed', 'gha');
    mountRun('seed', 'registry');
    const times = { gha: [], registry: [], none: [] };
    for (let i = 0; i < runs; i++) {
      console.log(`cache mount: run ${i + 1} of ${runs}`);
      for (const kind of Object.keys(times)) times[kind].push(mountRun(i, kind));
    }
    console.log(
      `\nRUN --mount=type=cache,target=/var/cache/apt/archives apt-get update && apt-get install gcc libc6-dev (41 packages, 53 MB), rerun on an empty runner and pushed; the mirror at ${(rate / 1e6).toFixed(0)} MB/s and ${latency} ms a request; seconds`,
    );
    console.log(
      `  the mounts kept in the Actions cache   ${spread(times.gha)}   saved ${(median(times.none) - median(times.gha)).toFixed(2)} s`,
    );
    console.log(
      `  the mounts kept in a registry cache    ${spread(times.registry)}   saved ${(median(times.none) - median(times.registry)).toFixed(2)} s`,
    );
    console.log(`  not kept                               ${spread(times.none)}`);
  } finally {
    await source.stop();
  }

  const v = spawnSync(docker, ['version', '--format', '{{.Server.Version}}'], {
    env: dockerEnv,
    encoding: 'utf8',
  }).stdout.trim();
  console.log(
    `\ndocker ${v}; hoist ${JSON.parse(readFileSync('package.json', 'utf8')).version}; ${new Date().toISOString()}`,
  );
} catch (e) {
  if (!(e instanceof Done)) throw e;
} finally {
  await svc.stop();
  await d26?.stop();
  await stopAll(work, dockerd, registry);
}
