// Benchmark: two platforms in one build, linux/amd64 (native) and linux/arm64 (emulated: qemu-user-static under
// binfmt_misc), with a cache, on a runner that starts empty. The app is a release build as cross-building projects
// write it: a build stage FROM --platform=$BUILDPLATFORM (apt-get install tcc, a generator compiled and run, its
// output the same for every platform), a COPY-only asset stage FROM scratch (9 MB of files), and a final stage per
// platform on a busybox index that copies both in and runs one RUN (emulated for arm64).
// - hoist: `--platform linux/amd64,linux/arm64 --emulate`, an empty store, the previous build's registry cache
//   (mode=max), a registry cache written again, the index pushed;
// - docker (20.10's BuildKit, which builds one platform per `docker build` without buildx's container driver):
//   the daemon wiped, `docker build --platform` for each with `--cache-from` the previous build's image of that
//   platform (inline cache), both pushed, `docker manifest create/push` for the index.
// Scenarios: nothing changed; the generator's source changed (the build stage runs again, the assets do not, the
// final stage runs for each platform); no cache. Prints the median (min–max) of HOIST_BENCH_RUNS runs (default 3),
// the ratio, and which steps hoist ran for each platform (hoist.steps in its metadata): the second platform's
// build and asset stages are found in the store, never built twice. Asserts nothing. Needs root, docker-registry,
// dockerd, debootstrap, runc, qemu-user-static, GNU time. `npm run bench:platforms` (builds first); HOIST_BENCH_ROOTFS:
// a ready rootfs tar to skip debootstrap.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { arm64Dir, fetchArm64Busybox } from '../scripts/test-deps.mjs';
import { aptClean, measured, must, pushDebianBase, settle, startDockerd, startRegistry, stopAll } from './lib.mjs';

fetchArm64Busybox();
const arm64Busybox = path.join(arm64Dir, 'root', 'bin', 'busybox');
if (!existsSync(arm64Busybox) || !existsSync('/bin/busybox'))
  throw new Error('needs busybox-static (amd64) and the arm64 busybox (run as root with Debian mirror access)');

const work = mkdtempSync(path.join(tmpdir(), 'hoist-bench-platforms-'));
const cli = path.resolve('dist/cli.js');
const runs = Number(process.env.HOIST_BENCH_RUNS ?? 3);
const registry = await startRegistry(work, 'registry');
const { docker, dockerEnv, dockerd } = await startDockerd(work);
const debian = `${registry.host}/bench/debian:bookworm`;
const busybox = `${registry.host}/bench/busybox:multi`;
const hoistRepo = `${registry.host}/bench/hoist-multi`;
const dockerRepo = `${registry.host}/bench/docker-multi`;
const platforms = ['linux/amd64', 'linux/arm64'];

// The same asset files in every context.
const assets = Array.from({ length: 300 }, (_, i) => [`static/file-${i}.bin`, randomBytes(30_000)]);

function context(name, seed) {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'static'), { recursive: true });
  for (const [f, data] of assets) writeFileSync(path.join(dir, f), data);
  writeFileSync(path.join(dir, 'app.conf'), 'listen = 8080\n');
  writeFileSync(
    path.join(dir, 'gen.c'),
    `#include <stdio.h>\nint main(int argc, char **argv) {\n  unsigned x = ${seed};\n  for (int f = 0; f < 40; f++) {\n    char p[256]; snprintf(p, sizeof p, "%s/part-%d.txt", argv[1], f);\n    FILE *o = fopen(p, "w"); if (!o) return 1;\n    for (int i = 0; i < 4000; i++) { x = x * 1103515245 + 12345; fprintf(o, "%08x %d\\n", x, i); }\n    fclose(o);\n  }\n  return 0;\n}\n`,
  );
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    `FROM --platform=$BUILDPLATFORM ${debian} AS build
RUN apt-get update && apt-get install -y --no-install-recommends tcc libc6-dev && ${aptClean}
WORKDIR /src
COPY gen.c .
RUN tcc -o /gen gen.c && mkdir /out && /gen /out

FROM scratch AS assets
COPY static/ /static/

FROM ${busybox}
COPY --from=build /out /app/data
COPY --from=assets /static /app/static
COPY app.conf /etc/app.conf
RUN find /app -type f | wc -l > /app/count && uname -m > /app/arch
`,
  );
  return dir;
}

/** hoist on an empty store: both platforms, the registry cache read (when `cached`) and written, the index pushed. */
function hoist(ctx, cached) {
  const store = path.join(work, 'hoist-store');
  rmSync(store, { recursive: true, force: true });
  settle();
  const meta = path.join(work, 'hoist-meta.json');
  const args = [
    cli,
    'build',
    '--store',
    store,
    '--progress',
    'quiet',
    '--metadata-file',
    meta,
    '--platform',
    platforms.join(','),
    '--emulate',
  ];
  if (cached) args.push('--cache-from', `type=registry,ref=${hoistRepo}:cache`);
  args.push('--cache-to', `type=registry,ref=${hoistRepo}:cache-run,mode=max`, '-t', `${hoistRepo}:run`, '--push', ctx);
  const m = measured('hoist build', process.execPath, args);
  const steps = JSON.parse(readFileSync(meta, 'utf8'))['hoist.steps'].filter((s) =>
    /^(COPY|RUN|ADD)/.test(s.instruction),
  );
  rmSync(store, { recursive: true, force: true });
  return { ...m, steps };
}

/** docker on a wiped daemon: a build and a push per platform (inline cache), then the index. */
function dockerBuild(ctx, cached, tag = 'run') {
  must(docker, ['system', 'prune', '-af'], { env: dockerEnv });
  must(docker, ['builder', 'prune', '-af'], { env: dockerEnv });
  settle();
  let secs = 0;
  for (const p of platforms) {
    const arch = p.split('/')[1];
    const args = [
      'build',
      '-q',
      '--network',
      'host',
      '--platform',
      p,
      '--build-arg',
      'BUILDKIT_INLINE_CACHE=1',
      '-t',
      `${dockerRepo}:${tag}-${arch}`,
    ];
    if (cached) args.push('--cache-from', `${dockerRepo}:prev-${arch}`);
    secs += measured('docker build', docker, [...args, ctx], dockerEnv).secs;
    secs += measured('docker push', docker, ['push', '-q', `${dockerRepo}:${tag}-${arch}`], dockerEnv).secs;
  }
  spawnSync(docker, ['manifest', 'rm', `${dockerRepo}:${tag}`], { env: dockerEnv, stdio: 'ignore' });
  secs += measured(
    'docker manifest create',
    docker,
    [
      'manifest',
      'create',
      '--insecure',
      `${dockerRepo}:${tag}`,
      ...platforms.map((p) => `${dockerRepo}:${tag}-${p.split('/')[1]}`),
    ],
    dockerEnv,
  ).secs;
  secs += measured(
    'docker manifest push',
    docker,
    ['manifest', 'push', '--insecure', `${dockerRepo}:${tag}`],
    dockerEnv,
  ).secs;
  return { secs };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
/** Which steps hoist ran (not found in a cache) for a platform: `ran/all` and the stages they were in. */
function ranFor(steps, platform) {
  const mine = steps.filter((s) => s.platform === platform);
  const ran = mine.filter((s) => !s.cached);
  const stages = [...new Set(ran.map((s) => s.stage))];
  return `${ran.length}/${mine.length}${stages.length ? ` (${stages.join(', ')})` : ''}`;
}

try {
  await pushDebianBase({ work, cli, store: path.join(work, 'seed-store'), base: debian });
  // The busybox index, built by hoist for both platforms (this also registers qemu-aarch64 with binfmt_misc, which
  // docker's RUN for arm64 needs too).
  const bb = path.join(work, 'busybox-ctx');
  mkdirSync(bb);
  copyFileSync('/bin/busybox', path.join(bb, 'busybox-amd64'));
  copyFileSync(arm64Busybox, path.join(bb, 'busybox-arm64'));
  writeFileSync(
    path.join(bb, 'Dockerfile'),
    'FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n',
  );
  must(process.execPath, [
    cli,
    'build',
    '--store',
    path.join(work, 'seed-store'),
    '--progress',
    'quiet',
    '--platform',
    platforms.join(','),
    '--emulate',
    '-t',
    busybox,
    '--push',
    bb,
  ]);

  const same = context('ctx', 1);
  const changed = context('ctx-changed', 2);
  console.log('the previous builds …');
  must(process.execPath, [
    cli,
    'build',
    '--store',
    path.join(work, 'seed-store'),
    '--progress',
    'quiet',
    '--platform',
    platforms.join(','),
    '--emulate',
    '--cache-to',
    `type=registry,ref=${hoistRepo}:cache,mode=max`,
    '-t',
    `${hoistRepo}:prev`,
    '--push',
    same,
  ]);
  dockerBuild(same, false, 'prev');

  const rows = [];
  for (const [name, ctx, cached] of [
    ['nothing changed', same, true],
    ['generator source changed', changed, true],
    ['no cache', same, false],
  ]) {
    const h = [];
    const d = [];
    for (let i = 0; i < runs; i++) {
      console.log(`${name}: run ${i + 1} of ${runs}`);
      h.push(hoist(ctx, cached));
      d.push(dockerBuild(ctx, cached));
    }
    rows.push({ name, h, d });
  }

  console.log(
    `\ntwo platforms (linux/amd64 native, linux/arm64 emulated) built and pushed as one index on an empty runner; median (min–max) of ${runs} runs, seconds`,
  );
  console.log(
    'scenario                   docker build+push      hoist build+push   hoist/docker  hoist peak RSS   hoist ran: amd64 steps           arm64 steps',
  );
  for (const { name, h, d } of rows) {
    const hs = h.map((r) => r.secs);
    const ratio = median(hs) / median(d.map((r) => r.secs));
    console.log(
      `${name.padEnd(24)} ${spread(d.map((r) => r.secs)).padStart(19)} ${spread(hs).padStart(20)} ${ratio.toFixed(2).padStart(13)} ${`${Math.max(...h.map((r) => r.rssMiB)).toFixed(0)} MiB`.padStart(15)}   ${ranFor(h[0].steps, 'linux/amd64').padEnd(32)} ${ranFor(h[0].steps, 'linux/arm64')}`,
    );
  }
  const v = spawnSync(docker, ['version', '--format', '{{.Server.Version}}'], {
    env: dockerEnv,
    encoding: 'utf8',
  }).stdout.trim();
  console.log(
    `\ndocker ${v}; hoist ${JSON.parse(readFileSync('package.json', 'utf8')).version}; ${new Date().toISOString()}`,
  );
} finally {
  await stopAll(work, dockerd, registry);
}
