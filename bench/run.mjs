// Benchmark: RUN-heavy Dockerfiles on a debootstrap Debian base, hoist build next to `docker build` (Debian's
// dockerd, BuildKit) in the same run, on the same base from the same local registry. Both have the base pulled
// before timing; both build with --no-cache (`npm run bench:cache` measures the caches). Each build runs twice and the
// faster is kept. Prints figures and ratios; asserts nothing. Needs root, docker-registry, dockerd, debootstrap,
// runc and GNU time. Run with `npm run bench:run` (builds first). HOIST_BENCH_ROOTFS: a ready rootfs tar to
// skip debootstrap.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { measured, runHeavyCases, startDebianBench, stopAll } from './lib.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-run-'));
const cli = path.resolve('dist/cli.js');

const { registry, docker, dockerEnv, dockerd, store, base } = await startDebianBench(work, cli);
try {
  const cases = runHeavyCases(base);

  const rows = [];
  for (const [name, files] of Object.entries(cases)) {
    const ctx = path.join(work, `ctx-${rows.length}`);
    mkdirSync(ctx);
    for (const [f, text] of Object.entries(files)) writeFileSync(path.join(ctx, f), text);
    const best = (f) => [f(), f()].sort((a, b) => a.secs - b.secs)[0];
    const d = best(() =>
      measured(
        'docker build',
        docker,
        ['build', '-q', '--no-cache', '--network', 'host', '-t', 'bench:docker', ctx],
        dockerEnv,
      ),
    );
    const h = best(() =>
      measured(
        'hoist build',
        process.execPath,
        [cli, 'build', '--store', store, '--no-cache', '--progress', 'quiet', '-t', 'bench:hoist', ctx],
        process.env,
      ),
    );
    // What CI does: build and push. docker compresses layers when it pushes; hoist has them compressed already.
    const tag = `${registry.host}/bench/out:${rows.length}`;
    const dp = best(() => {
      const b = measured(
        'docker build',
        docker,
        ['build', '-q', '--no-cache', '--network', 'host', '-t', tag, ctx],
        dockerEnv,
      );
      const p = measured('docker push', docker, ['push', '-q', tag], dockerEnv);
      spawnSync(docker, ['rmi', tag], { env: dockerEnv, stdio: 'ignore' });
      return { secs: b.secs + p.secs };
    });
    const hp = best(() =>
      measured(
        'hoist build --push',
        process.execPath,
        [cli, 'build', '--store', store, '--no-cache', '--progress', 'quiet', '-t', `${tag}-hoist`, '--push', ctx],
        process.env,
      ),
    );
    rows.push({ name, docker: d.secs, hoist: h.secs, hoistRss: h.rssMiB, dockerPush: dp.secs, hoistPush: hp.secs });
  }
  console.log('\nbuild only (docker keeps layers uncompressed; hoist writes them gzipped, ready to push)');
  console.log(
    'case                                                     docker s   hoist s   hoist/docker   hoist peak RSS MiB',
  );
  for (const r of rows)
    console.log(
      `${r.name.padEnd(56)} ${r.docker.toFixed(2).padStart(8)} ${r.hoist.toFixed(2).padStart(9)} ${(r.hoist / r.docker).toFixed(2).padStart(14)} ${r.hoistRss.toFixed(0).padStart(20)}`,
    );
  console.log('\nbuild and push to the local registry (docker build && docker push, against hoist build --push)');
  console.log('case                                                     docker s   hoist s   hoist/docker');
  for (const r of rows)
    console.log(
      `${r.name.padEnd(56)} ${r.dockerPush.toFixed(2).padStart(8)} ${r.hoistPush.toFixed(2).padStart(9)} ${(r.hoistPush / r.dockerPush).toFixed(2).padStart(14)}`,
    );
} finally {
  await stopAll(work, dockerd, registry);
}
