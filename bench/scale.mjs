// Benchmark: a big context in one COPY. HOIST_BENCH_FILES files (default 20,000) of HOIST_BENCH_FILE_KIB KiB each
// (default 50: about 1 GB in all, text that compresses as source code does) copied by `COPY . /ctx/` onto scratch,
// built (and written as an image in the store, no push) by hoist and by docker 20.10 — cold (empty store, pruned
// daemon, settled disk) — then rebuilt with nothing changed on a warm page cache: the context read and hashed
// again, every step a cache hit (hoist's hashing rate is the context's bytes over its `context` phase). Prints
// medians of HOIST_BENCH_RUNS (default 3). Asserts nothing. Needs root, dockerd and GNU time.
// `node bench/scale.mjs` after `npm run build`.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  compileCacheEnv,
  hoistNode,
  hoistNodeVersion,
  measured,
  must,
  settle,
  startDockerd,
  stopAll,
  startRegistry,
} from './lib.mjs';
import { median } from './scenarios.mjs';

const files = Number(process.env.HOIST_BENCH_FILES ?? 20_000);
const kib = Number(process.env.HOIST_BENCH_FILE_KIB ?? 50);
const runs = Number(process.env.HOIST_BENCH_RUNS ?? 3);
const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-scale-'));
const cli = path.resolve('dist/cli.js');
const registry = await startRegistry(work, 'registry');
const { docker, dockerEnv, dockerd } = await startDockerd(work);

try {
  const ctx = path.join(work, 'ctx');
  const line = (i, j) =>
    `export function f${i}_${j}(a, b) { return a * ${j} + b - ${i}; } // generated line ${j} of module ${i}\n`;
  for (let i = 0; i < files; i++) {
    const dir = path.join(ctx, `pkg${Math.floor(i / 200)}`);
    if (i % 200 === 0) mkdirSync(dir, { recursive: true });
    let text = '';
    for (let j = 0; text.length < kib * 1024; j++) text += line(i, j);
    writeFileSync(path.join(dir, `m${i}.js`), text.slice(0, kib * 1024));
  }
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY . /ctx/\n');
  const bytes = files * kib * 1024;
  console.log(`context: ${files} files, ${(bytes / 1e9).toFixed(2)} GB`);
  const store = path.join(work, 'store');
  const meta = path.join(work, 'meta.json');
  const hoist = (cold) => {
    if (cold) {
      rmSync(store, { recursive: true, force: true });
      settle();
    }
    const env = compileCacheEnv(process.env, path.join(work, 'compile-cache'), cold);
    const m = measured(
      'hoist build',
      hoistNode,
      [cli, 'build', '--store', store, '--progress', 'quiet', '--metadata-file', meta, '-t', 'scale:hoist', ctx],
      env,
    );
    const profile = JSON.parse(readFileSync(meta, 'utf8'))['hoist.profile'];
    return { ...m, context: profile.phases.find((p) => p.phase === 'context')?.seconds ?? 0 };
  };
  const dockerBuild = (cold) => {
    if (cold) {
      must(docker, ['system', 'prune', '-af'], { env: dockerEnv });
      must(docker, ['builder', 'prune', '-af'], { env: dockerEnv });
      settle();
    }
    return measured('docker build', docker, ['build', '-q', '-t', 'scale:docker', ctx], dockerEnv);
  };
  const rows = { hoistCold: [], hoistWarm: [], dockerCold: [], dockerWarm: [] };
  for (let i = 0; i < runs; i++) {
    console.log(`run ${i + 1} of ${runs}`);
    rows.hoistCold.push(hoist(true));
    rows.dockerCold.push(dockerBuild(true));
    rows.hoistWarm.push(hoist(false));
    rows.dockerWarm.push(dockerBuild(false));
  }
  const s = (r) => median(r.map((x) => x.secs));
  console.log(`hoist on node ${hoistNodeVersion}`);
  console.log(`\none COPY of ${files} files (${(bytes / 1e9).toFixed(2)} GB); median of ${runs}, seconds`);
  console.log(
    `cold (empty state):            docker ${s(rows.dockerCold).toFixed(2)}  hoist ${s(rows.hoistCold).toFixed(2)}  ratio ${(s(rows.hoistCold) / s(rows.dockerCold)).toFixed(2)}  hoist peak RSS ${Math.max(...rows.hoistCold.map((r) => r.rssMiB)).toFixed(0)} MiB`,
  );
  const ctxSecs = median(rows.hoistWarm.map((r) => r.context));
  console.log(
    `rebuild, nothing changed:      docker ${s(rows.dockerWarm).toFixed(2)}  hoist ${s(rows.hoistWarm).toFixed(2)}  ratio ${(s(rows.hoistWarm) / s(rows.dockerWarm)).toFixed(2)}  hoist's context phase ${ctxSecs.toFixed(2)} s: ${(bytes / 1e9 / ctxSecs).toFixed(2)} GB/s`,
  );
} finally {
  await stopAll(work, dockerd, registry);
}
