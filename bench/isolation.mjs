// Benchmark: RUN where nothing may be mounted. The RUN-heavy cases of bench/run.mjs built with --no-cache by
// docker build, by hoist with runc over overlayfs (its executor where it may mount), by hoist through proot and
// through chroot (exec/directory-executor.ts) — all in one run, on the same debootstrap Debian base in a local
// registry — and the no-op rebuild from the store with runc and with proot (the executor is not on that path).
// Each build runs HOIST_BENCH_RUNS times (default 2) and the fastest is kept; the disk is settled before each
// (bench/lib.mjs settle()). Prints figures and ratios; asserts nothing. Needs root, docker-registry, dockerd,
// debootstrap, runc, proot, python3 and GNU time. Run with `npm run bench:isolation`. HOIST_BENCH_ROOTFS: a ready
// rootfs tar to skip debootstrap.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { measured, runHeavyCases, settle, startDebianBench, stopAll } from './lib.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-isolation-'));
const cli = path.resolve('dist/cli.js');
const runs = Number(process.env.HOIST_BENCH_RUNS || 2);

const { registry, docker, dockerEnv, dockerd, store, base } = await startDebianBench(work, cli);
try {
  const cases = runHeavyCases(base);
  const best = (f) => {
    const all = [];
    for (let i = 0; i < runs; i++) {
      settle();
      all.push(f());
    }
    return all.sort((a, b) => a.secs - b.secs)[0];
  };
  const hoist = (isolation, ctx, extra = ['--no-cache']) => measured(`hoist --isolation ${isolation}`, process.execPath, [cli, 'build', '--store', store, '--isolation', isolation, ...extra, '--progress', 'quiet', '-t', 'bench:hoist', ctx]);
  const rows = [];
  for (const [name, files] of Object.entries(cases)) {
    const ctx = path.join(work, `ctx-${rows.length}`);
    mkdirSync(ctx);
    for (const [f, text] of Object.entries(files)) writeFileSync(path.join(ctx, f), text);
    const row = { name };
    row.docker = best(() => measured('docker build', docker, ['build', '-q', '--no-cache', '--network', 'host', '-t', 'bench:docker', ctx], dockerEnv)).secs;
    for (const i of ['runc', 'proot', 'chroot']) row[i] = best(() => hoist(i, ctx)).secs;
    // Nothing changed: every step from the store (the last build left its records there).
    for (const i of ['runc', 'proot']) row[`noop-${i}`] = best(() => hoist(i, ctx, [])).secs;
    rows.push(row);
  }
  // One directory per stage, or the image unpacked again for every step: what one unpacking of the base costs.
  const plain = path.join(work, 'ctx-plain');
  mkdirSync(plain);
  writeFileSync(path.join(plain, 'Dockerfile'), `FROM ${base}\n`);
  const unpack = best(() => measured('unpack the base', process.execPath, [cli, 'build', '--store', store, '--progress', 'quiet', '-o', `type=local,dest=${path.join(work, 'unpacked')}`, plain])).secs;

  const f = (n) => n.toFixed(2).padStart(8);
  console.log(`\n--no-cache, fastest of ${runs}; seconds, and each hoist executor against docker build and against hoist's runc`);
  console.log('case                                                       docker     runc    proot   chroot   runc/docker  proot/docker  proot/runc  chroot/runc');
  for (const r of rows) console.log(`${r.name.padEnd(56)} ${f(r.docker)} ${f(r.runc)} ${f(r.proot)} ${f(r.chroot)} ${(r.runc / r.docker).toFixed(2).padStart(12)} ${(r.proot / r.docker).toFixed(2).padStart(13)} ${(r.proot / r.runc).toFixed(2).padStart(11)} ${(r.chroot / r.runc).toFixed(2).padStart(12)}`);
  console.log('\nnothing changed, every step from the store; seconds');
  console.log('case                                                         runc    proot');
  for (const r of rows) console.log(`${r.name.padEnd(56)} ${f(r['noop-runc'])} ${f(r['noop-proot'])}`);
  console.log(`\nunpacking the Debian base once (type=local of FROM base): ${unpack.toFixed(2)} s — the cost per RUN step of unpacking the image again for every step, which one directory per stage pays once`);
} finally {
  await stopAll(work, dockerd, registry);
}
