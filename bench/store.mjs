// Benchmark: a store left alone (issue 37) — load, faults and soak at full size, printing figures; it asserts
// nothing (the pass/fail parts, sized for CI, are __tests__/store/unattended.test.ts), but counts what must be 0.
//   load    builds at once on one store (1, 4 and 8; HOIST_BENCH_ROUNDS rounds each, default 20): four Dockerfiles
//           (one the same every round, three that change), two builds a repository with the same tags, half the
//           cache exports to one registry ref and half to one Actions cache scope, --store-max small enough that the
//           collection trims, and a `hoist prune` at a random moment of every round. Prints builds/minute and p50/p95
//           build time for each concurrency; counts failed builds, digests skopeo cannot read, the store check, the
//           store's size against its limit, leaked mounts.
//   faults  HOIST_BENCH_FAULTS (default 50) kills: builds SIGKILLed at a random moment of their work (a base of
//           20 MB pulled after `prune --all`, a RUN writing 300 files and their capture, a COPY, the push, the cache
//           export: the moment is classified from the build's progress), one in five a `hoist prune --all` killed
//           instead; after each, the same build again (it must succeed), `hoist store check` (0), mounts and loop
//           devices under the store (none). At the end every image a build reported is read back by skopeo.
//   soak    HOIST_BENCH_SOAK (default 200) builds in a row on one store, each after a random edit (one of five source
//           files, or the Dockerfile's RUN): time per build (first and last twenty), the store's size after each
//           against --store-max, and hoist's peak RSS (GNU time), first and last twenty.
// Needs root, docker-registry, runc, skopeo, busybox-static, GNU time; `npm run bench:store` (builds first);
// HOIST_BENCH_ONLY=load|faults|soak for one part.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hoistNode, hoistNodeVersion, must, pushBusyboxBase, startActionsCache, startRegistry } from './lib.mjs';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-store-'));
const cli = path.resolve('dist/cli.js');
const only = process.env.HOIST_BENCH_ONLY;
const rounds = Number(process.env.HOIST_BENCH_ROUNDS || 20);

/** hoist as a child, timed by GNU time (wall seconds, peak RSS); `kill` after `killAfterMs` if given. */
function hoist(args, { env = process.env, killAfterMs } = {}) {
  const t0 = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%e %M', hoistNode, cli, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  let timer;
  if (killAfterMs !== undefined)
    timer = setTimeout(() => spawnSync('pkill', ['-KILL', '-P', String(child.pid)]), killAfterMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = err.trim().split('\n').pop() ?? '';
      const m = /^(\d+\.\d+) (\d+)$/.exec(last);
      resolve({
        code,
        out,
        err: m ? err.slice(0, err.lastIndexOf(last)) : err,
        secs: (performance.now() - t0) / 1000,
        rssMiB: m ? Number(m[2]) / 1024 : NaN,
        killed: /Command terminated by signal 9/.test(err),
      });
    }),
  );
}

const checkStore = (store) => {
  const r = spawnSync(hoistNode, [cli, 'store', 'check', '--store', store], { encoding: 'utf8' });
  return { status: r.status, text: `${r.stdout}${r.stderr}`.trim() };
};
const mountsUnder = (dir) =>
  spawnSync('sh', ['-c', `grep -cF ' ${dir}' /proc/mounts`], { encoding: 'utf8' }).stdout.trim();
const loopsOn = (dir) => spawnSync('sh', ['-c', `losetup -a | grep -cF '${dir}'`], { encoding: 'utf8' }).stdout.trim();
const readable = (ref) =>
  spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`], { encoding: 'utf8' }).status === 0;
const du = (dir) => Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const median = (xs) => quantile(xs, 0.5);
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
let ctxN = 0;
function context(files) {
  const dir = path.join(work, `ctx${ctxN++}`);
  mkdirSync(dir);
  for (const [k, v] of Object.entries(files)) writeFileSync(path.join(dir, k), v);
  return dir;
}

const registry = await startRegistry(work, 'registry');
const cache = await startActionsCache();
const ghaEnv = { ...process.env, ...cache.env, RUNNER_TEMP: path.join(work, 'runner-temp'), GITHUB_WORKSPACE: work };
mkdirSync(ghaEnv.RUNNER_TEMP);
try {
  const base = `${registry.host}/bench/busybox:1`;
  await pushBusyboxBase({ work, cli, store: path.join(work, 'base-store'), base });
  console.log(`hoist on node ${hoistNodeVersion}; ${new Date().toISOString()}`);

  if (!only || only === 'load') {
    const store = path.join(work, 'load-store');
    const limit = 40_000_000;
    const dockerfiles = (round) => [
      `FROM ${base}\nRUN echo same > /same && head -c 3000000 /dev/zero > /zeros\n`,
      `FROM ${base} AS build\nRUN echo ${round} > /r && head -c 2000000 /dev/urandom > /noise\nFROM ${base}\nCOPY --from=build /r /noise /\n`,
      `FROM ${base}\nCOPY f.txt /\nRUN mkdir /many && for i in $(seq 1 200); do echo ${round}-$i > /many/$i; done\n`,
      `FROM ${base}\nRUN head -c 1500000 /dev/urandom > /r${round}\n`,
    ];
    console.log(
      `\n## load: ${rounds} rounds at each concurrency, --store-max ${mb(limit)}, a prune at a random moment of each round`,
    );
    console.log(
      '| at once | builds | failed | builds/minute | p50 | p95 | collections | manifests put again | store after (limit) | skopeo unreadable | store check | mounts left |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of [1, 4, 8]) {
      const times = [];
      const failures = [];
      const reported = [];
      let collections = 0;
      let putAgain = 0;
      const t0 = performance.now();
      for (let round = 0; round < rounds; round++) {
        const files = dockerfiles(`${c}-${round}`);
        const builds = Array.from({ length: c }, (_, i) => {
          const ctx = context({ Dockerfile: files[(i + round) % 4], 'f.txt': `${c} ${round} ${i}\n` });
          const repo = `${registry.host}/load/app${(i + round) % 4}`;
          const caching =
            i % 2 === 0
              ? [
                  '--cache-from',
                  `${registry.host}/load/cache`,
                  '--cache-to',
                  `type=registry,ref=${registry.host}/load/cache,mode=max`,
                ]
              : ['--cache-from', 'type=gha,scope=load', '--cache-to', 'type=gha,scope=load,mode=max'];
          return hoist(
            [
              'build',
              '--store',
              store,
              '--store-max',
              String(limit),
              '--progress',
              'plain',
              '-t',
              `${repo}:${round % 3}`,
              '--push',
              ...caching,
              ctx,
            ],
            { env: ghaEnv },
          ).then((r) => ({ r, repo }));
        });
        // (a random moment of the round: within the time the last round's builds took)
        await new Promise((r) => setTimeout(r, Math.random() * (times.length ? median(times) : 1) * 1000));
        const pruned = await hoist(['prune', '--store', store]);
        if (pruned.code !== 0) failures.push(`prune: ${pruned.err.slice(-300)}`);
        for (const { r, repo } of await Promise.all(builds)) {
          times.push(r.secs);
          if (/^store: over its limit of /m.test(r.err)) collections++;
          if (/the manifest put again/.test(r.err)) putAgain++;
          if (r.code !== 0) failures.push(r.err.slice(-500));
          else reported.push(`${repo}@${r.out.trim().split('\n').pop()}`);
        }
      }
      const minutes = (performance.now() - t0) / 60000;
      const unreadable = reported.filter((ref) => !readable(ref)).length;
      const checked = checkStore(store);
      console.log(
        `| ${c} | ${times.length} | ${failures.length} | ${(times.length / minutes).toFixed(1)} | ${median(times).toFixed(2)} s | ${quantile(times, 0.95).toFixed(2)} s | ${collections} | ${putAgain} | ${mb(du(path.join(store, 'blobs')) + du(path.join(store, 'lowers')) + du(path.join(store, 'snapshots')) + du(path.join(store, 'records')) + du(path.join(store, 'indexes')))} (${mb(limit)}) | ${unreadable} | ${checked.status} | ${mountsUnder(store)} |`,
      );
      for (const f of failures.slice(0, 3)) console.log(`   failed: ${f.replace(/\n/g, '\n     ')}`);
      if (checked.status !== 0) console.log(`   store check: ${checked.text}`);
    }
  }

  if (!only || only === 'faults') {
    const runs = Number(process.env.HOIST_BENCH_FAULTS || 50);
    const store = path.join(work, 'fault-store');
    // a base with 20 MB of its own to pull
    const bigBase = `${registry.host}/bench/big:1`;
    const baseCtx = context({ Dockerfile: `FROM ${base}\nCOPY blob /blob\n`, blob: randomBytes(20_000_000) });
    must(hoistNode, [
      cli,
      'build',
      '--store',
      path.join(work, 'base-store'),
      '--progress',
      'quiet',
      '-t',
      bigBase,
      '--push',
      baseCtx,
    ]);
    const ctx = context({
      Dockerfile: `FROM ${bigBase}\nARG RUN=0\nRUN mkdir /d && for i in $(seq 1 300); do head -c 20000 /dev/urandom > /d/f$i; done\nCOPY big.bin /\n`,
      'big.bin': randomBytes(8_000_000),
    });
    const args = (i) => [
      'build',
      '--store',
      store,
      '--progress',
      'plain',
      '--build-arg',
      `RUN=${i}`,
      '-t',
      `${registry.host}/faults/app:${i}`,
      '--push',
      '--cache-to',
      `type=registry,ref=${registry.host}/faults/cache,mode=max`,
      ctx,
    ];
    const phaseOf = (err) => {
      const lines = err
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('#') || l.startsWith('pushed'));
      const last = lines.at(-1) ?? '';
      if (/^pushed/.test(last)) return 'cache export';
      if (/^#\d+ DONE/.test(last) && /COPY big\.bin/.test(lines.at(-2) ?? '')) return 'export and push';
      if (/\bRUN\b/.test(last) || /^#2 DONE/.test(last)) return 'RUN and its layer';
      if (/COPY/.test(last)) return 'COPY';
      if (/FROM/.test(last) && !/DONE/.test(last)) return 'pull';
      return lines.length === 0 ? 'start and pull' : 'pull';
    };
    must(hoistNode, [cli, 'prune', '--all', '--store', store]);
    const whole = (await hoist(args(0))).secs;
    const pruneSecs = (await hoist(['prune', '--all', '--store', store])).secs;
    console.log(
      `\n## faults: ${runs} kills (SIGKILL) at random moments; the whole build takes ${whole.toFixed(1)} s, a prune --all after it ${pruneSecs.toFixed(2)} s`,
    );
    const phases = {};
    let nextFailed = 0;
    let broken = 0;
    let leakedMounts = 0;
    let leakedLoops = 0;
    const reported = [];
    const t0 = performance.now();
    for (let i = 1; i <= runs; i++) {
      must(hoistNode, [cli, 'prune', '--all', '--store', store]);
      let phase;
      if (i % 5 === 0) {
        // a prune killed: a store full of a build's work first
        const b = await hoist(args(1000 + i));
        if (b.code === 0) reported.push(`${registry.host}/faults/app:${1000 + i}`);
        const p = await hoist(['prune', '--all', '--store', store], {
          killAfterMs: (0.3 + Math.random() * 0.7) * pruneSecs * 1000,
        });
        phase = p.killed ? 'prune' : 'prune (had finished)';
      } else {
        const b = await hoist(args(i), { killAfterMs: Math.random() * whole * 1000 });
        phase = b.killed ? phaseOf(b.err) : 'had finished';
        if (!b.killed && b.code === 0) reported.push(`${registry.host}/faults/app:${i}`);
      }
      phases[phase] = (phases[phase] ?? 0) + 1;
      const next = await hoist(args(2000 + i));
      if (next.code !== 0) {
        nextFailed++;
        console.log(`   the build after kill ${i} (${phase}) failed: ${next.err.slice(-600)}`);
      } else reported.push(`${registry.host}/faults/app:${2000 + i}`);
      const checked = checkStore(store);
      if (checked.status !== 0) {
        broken++;
        console.log(`   store check after kill ${i} (${phase}): ${checked.text}`);
      }
      leakedMounts += Number(mountsUnder(store));
      leakedLoops += Number(loopsOn(store));
    }
    const lost = reported.filter((ref) => !readable(ref)).length;
    console.log(
      `kills by moment: ${Object.entries(phases)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    console.log(
      `| faults injected | next build failed | store check not clean | leaked mounts | leaked loop devices | images reported | images lost | minutes |`,
    );
    console.log('|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${runs} | ${nextFailed} | ${broken} | ${leakedMounts} | ${leakedLoops} | ${reported.length} | ${lost} | ${((performance.now() - t0) / 60000).toFixed(1)} |`,
    );
  }

  if (!only || only === 'soak') {
    const n = Number(process.env.HOIST_BENCH_SOAK || 200);
    const store = path.join(work, 'soak-store');
    const limit = 60_000_000;
    const files = { Dockerfile: '', ...Object.fromEntries([0, 1, 2, 3, 4].map((i) => [`src${i}.txt`, `file ${i}\n`])) };
    const dockerfile = (v) =>
      `FROM ${base} AS build\nCOPY src0.txt src1.txt /src/\nRUN echo ${v} > /v && head -c 1000000 /dev/urandom > /noise && cat /src/* > /all\nFROM ${base}\nCOPY --from=build /all /v /noise /app/\nCOPY src2.txt src3.txt src4.txt /app/\nRUN ls /app > /app/list\n`;
    files.Dockerfile = dockerfile(0);
    const ctx = context(files);
    const secs = [];
    const rss = [];
    const sizes = [];
    let failed = 0;
    let collections = 0;
    const collectSecs = [];
    const entries = [];
    const count = () =>
      ['blobs/sha256', 'records', 'indexes', 'verified', 'snapshots', 'lowers'].map(
        (d) => readdirSync(path.join(store, d), { withFileTypes: false }).length,
      );
    for (let i = 0; i < n; i++) {
      const pick = Math.floor(Math.random() * 6);
      if (pick === 5) writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile(i));
      else
        writeFileSync(path.join(ctx, `src${pick}.txt`), `file ${pick} edit ${i} ${randomBytes(8).toString('hex')}\n`);
      const r = await hoist([
        'build',
        '--store',
        store,
        '--store-max',
        String(limit),
        '--progress',
        'plain',
        '-t',
        `${registry.host}/soak/app:${i % 10}`,
        '--push',
        ctx,
      ]);
      if (r.code !== 0) failed++;
      const c = /^store: over its limit of .* in (\d+\.\d+) s/m.exec(r.err);
      if (c) {
        collections++;
        collectSecs.push(Number(c[1]));
      }
      secs.push(r.secs);
      if (i === 19 || i === n - 1) entries.push(count());
      rss.push(r.rssMiB);
      sizes.push(
        ['blobs', 'lowers', 'snapshots', 'records', 'indexes'].reduce((t, d) => t + du(path.join(store, d)), 0),
      );
    }
    const first = (xs) => xs.slice(0, 20);
    const last = (xs) => xs.slice(-20);
    console.log(`\n## soak: ${n} builds in a row, a random edit before each, --store-max ${mb(limit)}`);
    console.log(
      '| builds | failed | collections (mean s) | median s (first 20 / middle 20 / last 20) | p95 s (first 20 / last 20) | peak RSS MiB (first 20 / last 20) | store max / last (limit) | store check | tmp entries left |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    const checked = checkStore(store);
    const middle = (xs) => xs.slice(Math.floor(xs.length / 2) - 10, Math.floor(xs.length / 2) + 10);
    const meanCollect = collectSecs.length ? collectSecs.reduce((a, b) => a + b, 0) / collectSecs.length : 0;
    console.log(
      `| ${n} | ${failed} | ${collections} (${meanCollect.toFixed(2)}) | ${median(first(secs)).toFixed(2)} / ${median(middle(secs)).toFixed(2)} / ${median(last(secs)).toFixed(2)} | ${quantile(first(secs), 0.95).toFixed(2)} / ${quantile(last(secs), 0.95).toFixed(2)} | ${Math.max(...first(rss)).toFixed(0)} / ${Math.max(...last(rss)).toFixed(0)} | ${mb(Math.max(...sizes))} / ${mb(sizes.at(-1))} (${mb(limit)}) | ${checked.status} | ${readdirSync(path.join(store, 'tmp')).length} |`,
    );
    console.log(
      `entries after build 20 and after build ${n} (blobs, cache records, layer indexes, verified notes, snapshots, lowers): ${entries.map((e) => e.join(', ')).join(' / ')}`,
    );
  }
} finally {
  await cache.stop();
  registry.child.kill();
  spawnSync('sh', ['-c', `grep ' ${work}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l`]);
  rmSync(work, { recursive: true, force: true });
}
