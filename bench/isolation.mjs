// Benchmark: RUN steps at docker's cost (issue 36), and RUN where nothing may be mounted. Each case is built with
// --no-cache and pushed to one local registry by docker 20.10 (`docker build`, then `docker push`: its image store
// keeps layers uncompressed until the push), docker 26.1 (BuildKit 0.13 through `buildx build --push`,
// --provenance=false) and hoist (`build --push`) with each of its executors: runc over overlayfs (where it may mount),
// proot and chroot (exec/directory-executor.ts: where a CI job's container may not mount). The cases: one `RUN true`
// on a busybox base and fifty of them (the difference over 49 is a step's own cost for each tool), and the RUN-heavy
// cases of bench:run on a debootstrap Debian base (twelve small steps, 200 MiB written in 2000 files, apt-get + a
// compile). Then the floor of the 200 MiB layer (`tar -c | gzip -1` of the same files), hoist's per-step profile
// (its --metadata-file), and the rebuild with nothing changed. Each build runs HOIST_BENCH_RUNS times (default 2),
// the disk settled before each (lib.mjs settle()), and the fastest is kept; the tools take turns. Prints figures and
// ratios; asserts nothing. Needs root, docker-registry, dockerd, runc, proot, python3, busybox-static, GNU time and
// docker 26 unpacked by the test set-up. `npm run bench:isolation` (builds first). HOIST_BENCH_ROOTFS: a ready
// rootfs tar to skip debootstrap; HOIST_BENCH_ONLY=busybox: only the busybox rows.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  hoistNode,
  hoistNodeVersion,
  measured,
  must,
  pushBusyboxBase,
  pushDebianBase,
  runHeavyCases,
  settle,
  startDockerd,
  startDockerd26,
  startRegistry,
  stopAll,
} from './lib.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-isolation-'));
const cli = path.resolve('dist/cli.js');
const runs = Number(process.env.HOIST_BENCH_RUNS || 2);
const only = process.env.HOIST_BENCH_ONLY;
const executors = ['runc', 'proot', 'chroot'];

const registry = await startRegistry(work, 'registry');
const { docker, dockerEnv, dockerd } = await startDockerd(work);
mkdirSync(path.join(work, 'd26'));
const d26 = await startDockerd26(path.join(work, 'd26'));
try {
  const store = path.join(work, 'store');
  const busybox = `${registry.host}/bench/busybox:1`;
  await pushBusyboxBase({ work, cli, store, base: busybox });
  const debian = `${registry.host}/bench/debian:bookworm`;
  if (only !== 'busybox') await pushDebianBase({ work, cli, store, base: debian });
  for (const b of only === 'busybox' ? [busybox] : [busybox, debian]) {
    must(docker, ['pull', '-q', b], { env: dockerEnv });
    must(d26.docker, ['pull', '-q', b], { env: d26.dockerEnv });
  }
  const steps = (n) => ({ Dockerfile: `FROM ${busybox}\n${'RUN true\n'.repeat(n)}` });
  const cases = {
    'busybox: one RUN true': steps(1),
    'busybox: 50 × RUN true': steps(50),
    ...(only === 'busybox' ? {} : runHeavyCases(debian)),
  };

  const meta = path.join(work, 'meta.json');
  const tools = {
    'docker 20.10': (ctx, tag) => {
      const b = measured(
        'docker build',
        docker,
        ['build', '-q', '--no-cache', '--network', 'host', '-t', tag, ctx],
        dockerEnv,
      );
      return { secs: b.secs + measured('docker push', docker, ['push', '-q', tag], dockerEnv).secs };
    },
    'docker 26.1': (ctx, tag) =>
      measured(
        'docker 26 buildx build',
        d26.docker,
        ['buildx', 'build', '-q', '--no-cache', '--provenance=false', '--network', 'host', '-t', tag, '--push', ctx],
        d26.dockerEnv,
      ),
    ...Object.fromEntries(
      executors.map((x) => [
        x,
        (ctx, tag) => {
          const m = measured(`hoist --isolation ${x}`, hoistNode, [
            cli,
            'build',
            '--store',
            store,
            '--isolation',
            x,
            '--no-cache',
            '--progress',
            'quiet',
            '--metadata-file',
            meta,
            '-t',
            tag,
            '--push',
            ctx,
          ]);
          return { ...m, profile: JSON.parse(readFileSync(meta, 'utf8'))['hoist.profile'] };
        },
      ]),
    ),
  };
  const rows = [];
  for (const [name, files] of Object.entries(cases)) {
    const ctx = path.join(work, `ctx-${rows.length}`);
    mkdirSync(ctx);
    for (const [f, text] of Object.entries(files)) writeFileSync(path.join(ctx, f), text);
    console.log(`${name} …`);
    const row = { name, best: {} };
    for (let i = 0; i < runs; i++) {
      const order = Object.keys(tools);
      for (let k = 0; k < i; k++) order.push(order.shift()); // a different tool first each round
      for (const t of order) {
        settle();
        const r = tools[t](ctx, `${registry.host}/bench/out-${t.replace(/[ .]/g, '')}:${rows.length}`);
        if (!row.best[t] || r.secs < row.best[t].secs) row.best[t] = r;
      }
    }
    // Nothing changed: every step from the store (the last build left its records there); hoist only.
    settle();
    row.noop = measured('hoist, nothing changed', hoistNode, [
      cli,
      'build',
      '--store',
      store,
      '--progress',
      'quiet',
      '-t',
      `${registry.host}/bench/noop:${rows.length}`,
      ctx,
    ]).secs;
    rows.push(row);
  }

  // The 200 MiB layer's floor: the same kind of files (2000 × 104857 random bytes) by tar and gzip -1, fastest of runs.
  let floor;
  if (only !== 'busybox') {
    const data = path.join(work, 'floor', 'data');
    mkdirSync(data, { recursive: true });
    must('sh', ['-c', `for i in $(seq 1 2000); do head -c 104857 /dev/urandom > ${data}/f$i; done`]);
    floor = Math.min(
      ...Array.from({ length: runs }, () => {
        settle();
        return measured('tar | gzip -1', 'sh', ['-c', `tar -C ${path.dirname(data)} -c data | gzip -1 > /dev/null`])
          .secs;
      }),
    );
    rmSync(path.dirname(data), { recursive: true, force: true });
  }

  const f = (n) => n.toFixed(2).padStart(8);
  const names = Object.keys(tools);
  console.log(
    `\n--no-cache, build + push; fastest of ${runs}; seconds, and each hoist executor against the faster docker`,
  );
  console.log(
    `${'case'.padEnd(56)} ${names.map((t) => t.padStart(12)).join(' ')}  ${executors.map((x) => `${x}/docker`.padStart(13)).join(' ')}`,
  );
  for (const r of rows) {
    const d = Math.min(r.best['docker 20.10'].secs, r.best['docker 26.1'].secs);
    console.log(
      `${r.name.padEnd(56)} ${names.map((t) => f(r.best[t].secs).padStart(12)).join(' ')}  ${executors.map((x) => (r.best[x].secs / d).toFixed(2).padStart(13)).join(' ')}`,
    );
  }
  const [one, fifty] = rows;
  console.log("\na RUN step's own cost: (50 steps − 1 step) / 49, milliseconds");
  console.log(
    names.map((t) => `${t} ${(((fifty.best[t].secs - one.best[t].secs) / 49) * 1000).toFixed(0)}`).join(', '),
  );
  console.log(
    "\nhoist's profile of a RUN step in its fastest 50-step build, mean milliseconds a step (phases of the step; they overlap)",
  );
  for (const x of executors) {
    const runSteps = fifty.best[x].profile.steps.filter((s) => s.step.includes('RUN'));
    const mean = {};
    for (const s of runSteps)
      for (const [k, v] of Object.entries(s.phases)) mean[k] = (mean[k] ?? 0) + v / runSteps.length;
    console.log(
      `  ${x.padEnd(7)} ${Object.entries(mean)
        .map(([k, v]) => `${k} ${(v * 1000).toFixed(1)}`)
        .join(', ')}`,
    );
  }
  if (floor !== undefined) {
    const big = rows.find((r) => r.name.includes('200 MiB'));
    const phases = Object.fromEntries(big.best.runc.profile.phases.map((p) => [p.phase, p.seconds]));
    console.log(
      `\nthe 200 MiB layer: tar -c | gzip -1 of the same files ${floor.toFixed(2)} s; hoist runc's phases in that build: ${Object.entries(
        phases,
      )
        .map(([p, s]) => `${p} ${s.toFixed(2)}`)
        .join(', ')}`,
    );
  }
  console.log('\nnothing changed, every step from the store (hoist; seconds)');
  for (const r of rows) console.log(`${r.name.padEnd(56)} ${f(r.noop)}`);
  const v20 = spawnSync(docker, ['version', '--format', '{{.Server.Version}}'], {
    env: dockerEnv,
    encoding: 'utf8',
  }).stdout.trim();
  const v26 = spawnSync(d26.docker, ['version', '--format', '{{.Server.Version}}'], {
    env: d26.dockerEnv,
    encoding: 'utf8',
  }).stdout.trim();
  console.log(
    `\ndocker ${v20}, docker ${v26}; hoist ${JSON.parse(readFileSync('package.json', 'utf8')).version} on node ${hoistNodeVersion}; ${new Date().toISOString()}`,
  );
} finally {
  await d26.stop();
  await stopAll(work, dockerd, registry);
}
