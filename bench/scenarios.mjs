// The CI scenarios of bench:cache (issue 27), side by side in one run: docker 20.10 (BuildKit 0.8, inline cache),
// docker 26.1 (BuildKit 0.13 through buildx, --provenance=false, a registry cache with mode=max, as
// build-push-action users run it) and hoist (a registry cache with mode=max), each building ciApp (lib.mjs) and
// pushing it to the same local registry; and the floor: the same work done by the fastest tools on the machine.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ciApp, compileCacheEnv, hoistNode, measured, must, settle } from './lib.mjs';

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const spread = (xs) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;

/** Writes the app's context into `dir` (only the files that differ from what is there). */
function writeApp(dir, base, round) {
  for (const [name, text] of Object.entries(ciApp(base, round))) {
    const p = path.join(dir, name);
    mkdirSync(path.dirname(p), { recursive: true });
    let old;
    try {
      old = readFileSync(p, 'utf8');
    } catch {}
    if (old !== text) writeFileSync(p, text);
  }
}

/**
 * The three builders. Each `run(kind)`: 'prime' (the first build, writing the cache), 'one' and 'nothing' (a fresh
 * runner: empty state, the cache in the registry; build and push), 'cold' (a fresh runner without cache; build
 * and push), 'local' (right after 'cold', on the state it left: the rebuild a developer runs, `-t` only).
 */
function builders({ work, cli, registry, ctx, d20, d26, ghaEnv }) {
  const h = `${registry.host}/ci/hoist`;
  const r20 = `${registry.host}/ci/docker20`;
  const r26 = `${registry.host}/ci/docker26`;
  const store = path.join(work, 'hoist-store');
  const meta = path.join(work, 'hoist-meta.json');
  let colds = 0;
  const hoistWith = (kind, gha) => {
    if (kind !== 'local') {
      rmSync(store, { recursive: true, force: true });
      settle();
    }
    const flags = gha
      ? {
          prime: ['--cache-to', 'type=gha,scope=ci,mode=max', '-t', `${h}:gha`, '--push'],
          one: [
            '--cache-from',
            'type=gha,scope=ci',
            '--cache-to',
            'type=gha,scope=ci,mode=max',
            '-t',
            `${h}:gha`,
            '--push',
          ],
          // a scope of its own each time: no index to read (the layers' entries are new: RUN writes new bytes)
          cold: ['--cache-to', `type=gha,scope=cold-${colds++},mode=max`, '-t', `${h}:gha-cold`, '--push'],
        }
      : {
          prime: ['--cache-to', `type=registry,ref=${h}:cache,mode=max`, '-t', `${h}:latest`, '--push'],
          one: [
            '--cache-from',
            `type=registry,ref=${h}:cache`,
            '--cache-to',
            `type=registry,ref=${h}:cache,mode=max`,
            '-t',
            `${h}:latest`,
            '--push',
          ],
          local: ['-t', `${h}:latest`],
          cold: ['--cache-to', `type=registry,ref=${h}:cache-cold,mode=max`, '-t', `${h}:cold`, '--push'],
        };
    flags.nothing = flags.one;
    // from empty state: no compile cache either; the local rebuild: the one its build without cache left
    const env = compileCacheEnv(gha ? ghaEnv : process.env, path.join(work, 'hoist-compile-cache'), kind !== 'local');
    const m = measured(
      'hoist build',
      hoistNode,
      [cli, 'build', '--store', store, '--progress', 'quiet', '--metadata-file', meta, ...flags[kind], ctx],
      env,
    );
    const md = JSON.parse(readFileSync(meta, 'utf8'));
    return { ...m, profile: md['hoist.profile'], cache: md['hoist.cache'] };
  };
  const fresh = (d) => {
    must(d.docker, ['system', 'prune', '-af'], { env: d.dockerEnv });
    must(d.docker, ['builder', 'prune', '-af'], { env: d.dockerEnv });
    settle();
  };
  const docker20 = (kind) => {
    if (kind !== 'local') fresh(d20);
    const tag = kind === 'cold' ? `${r20}:cold` : `${r20}:latest`;
    const args = [
      'build',
      '-q',
      '--network',
      'host',
      '--build-arg',
      'BUILDKIT_INLINE_CACHE=1',
      ...(kind === 'one' || kind === 'nothing' ? ['--cache-from', `${r20}:latest`] : []),
      '-t',
      tag,
      ctx,
    ];
    const b = measured('docker 20 build', d20.docker, args, { ...d20.dockerEnv, DOCKER_BUILDKIT: '1' });
    if (kind === 'local') return b;
    const p = measured('docker 20 push', d20.docker, ['push', '-q', tag], d20.dockerEnv);
    return { secs: b.secs + p.secs };
  };
  const docker26 = (kind) => {
    if (kind !== 'local') fresh(d26);
    const flags = {
      prime: ['--cache-to', `type=registry,ref=${r26}:cache,mode=max`, '-t', `${r26}:latest`, '--push'],
      one: [
        '--cache-from',
        `type=registry,ref=${r26}:cache`,
        '--cache-to',
        `type=registry,ref=${r26}:cache,mode=max`,
        '-t',
        `${r26}:latest`,
        '--push',
      ],
      local: ['-t', `${r26}:latest`],
      cold: ['--cache-to', `type=registry,ref=${r26}:cache-cold,mode=max`, '-t', `${r26}:cold`, '--push'],
    };
    flags.nothing = flags.one;
    return measured(
      'docker 26 buildx build',
      d26.docker,
      ['buildx', 'build', '-q', '--provenance=false', '--network', 'host', ...flags[kind], ctx],
      d26.dockerEnv,
    );
  };
  return {
    docker20,
    docker26,
    hoist: (kind) => hoistWith(kind, false),
    hoistGha: (kind) => hoistWith(kind, true),
    repos: { h, r20, r26 },
  };
}

/**
 * Runs the scenarios `rounds` times. Each round changes one source file (its first scenario builds on the cache the
 * previous round left), then runs nothing-changed on that, then the cold build and the local rebuild after it;
 * the tools take turns, in a different order each round.
 */
export function runScenarios({ work, cli, registry, base, d20, d26, ghaEnv, rounds }) {
  const ctx = path.join(work, 'ci-ctx');
  writeApp(ctx, base, 0);
  const b = builders({ work, cli, registry, ctx, d20, d26, ghaEnv });
  const tools = ['docker20', 'docker26', 'hoist', 'hoistGha'];
  console.log('the first builds (the caches the first round reads) …');
  for (const t of tools) b[t]('prime');
  const results = Object.fromEntries(
    ['local', 'nothing', 'one', 'cold'].map((k) => [k, Object.fromEntries(tools.map((t) => [t, []]))]),
  );
  for (let r = 1; r <= rounds; r++) {
    const order = tools.map((_, i) => tools[(i + r) % tools.length]);
    writeApp(ctx, base, r);
    for (const [kind, label] of [
      ['one', 'one source file changed'],
      ['nothing', 'nothing changed'],
      ['cold', 'no cache'],
    ]) {
      console.log(`round ${r} of ${rounds}: ${label}`);
      for (const t of order) {
        results[kind][t].push(b[t](kind));
        // the developer's rebuild with nothing changed: on the state the build without cache just left
        if (kind === 'cold' && t !== 'hoistGha') results.local[t].push(b[t]('local'));
      }
    }
  }
  return { results, repos: b.repos, ctx };
}

const sh = (script, env = process.env) => {
  const started = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`floor: ${script}: ${r.stderr}`);
  return { secs: Number(process.hrtime.bigint() - started) / 1e9, out: r.stdout };
};

/**
 * The floor: each phase of the one-file and cold builds done on the same data by the fastest tools here, timed one
 * by one (a settled disk before each, as the builders get). Answers each phase's median seconds and the command.
 */
export function measureFloor({ work, registry, repos, ctx, base, rounds }) {
  const inflate = spawnSync('sh', ['-c', 'command -v pigz'], { encoding: 'utf8' }).status === 0 ? 'pigz -dc' : 'zcat';
  const dir = path.join(work, 'floor');
  const reg = `http://${registry.host}`;
  const [, repoPath, tag] = /^[^/]+\/(.+):([^:]+)$/.exec(`${repos.h}:latest`);
  const accept =
    '-H "Accept: application/vnd.oci.image.manifest.v1+json" -H "Accept: application/vnd.docker.distribution.manifest.v2+json"';
  const manifest = JSON.parse(sh(`curl -sf ${accept} ${reg}/v2/${repoPath}/manifests/${tag}`).out);
  const baseManifest = (() => {
    const [, bp, bt] = /^[^/]+\/(.+):([^:]+)$/.exec(base);
    return { path: bp, m: JSON.parse(sh(`curl -sf ${accept} ${reg}/v2/${bp}/manifests/${bt}`).out) };
  })();
  const baseLayers = baseManifest.m.layers.map((l) => l.digest);
  // the final image's /opt/vendor layer: the same 200 files the build stage's RUN wrote
  const vendor = manifest.layers.find((l) => !baseLayers.includes(l.digest) && l.size > 10 << 20)?.digest;
  // RUN's lowers are a layer's tar and its EROFS index (src/layer/erofs.ts): the floor writes each tar as it inflates
  // and hashes it (the index is metadata, ~1% of the bytes, made from the headers in the same pass); it was `tar -x`
  // until the design changed.
  const pull = (digests) =>
    `set -o pipefail; mkdir -p ${dir}; ${digests.map((d, i) => `(curl -sf ${reg}/v2/${repoPath}/blobs/${d} | ${inflate} | tee >(sha256sum > /dev/null) > ${dir}/l${i}.tar) &`).join(' ')} wait`;
  const phases = {
    start: { cmd: 'node -e 0', script: `${hoistNode} -e 0` },
    resolve: {
      cmd: 'curl of the manifests and configs (base, cache)',
      script: `curl -sf ${accept} ${reg}/v2/${baseManifest.path}/manifests/${base.split(':').pop()} > /dev/null && curl -sf ${reg}/v2/${baseManifest.path}/blobs/${baseManifest.m.config.digest} > /dev/null && curl -sf ${accept} ${reg}/v2/${repoPath}/manifests/cache > /dev/null`,
    },
    'pull (one file)': {
      cmd: `curl | ${inflate} | tee >(sha256sum) > layer.tar, the base and the vendor layer at once`,
      script: pull([...baseLayers, vendor]),
    },
    'pull (cold)': { cmd: `curl | ${inflate} | tee >(sha256sum) > layer.tar, the base`, script: pull(baseLayers) },
    context: { cmd: 'tar -c src | sha256sum', script: `tar -cf - -C ${ctx} src | sha256sum > /dev/null` },
    'run (one file)': {
      cmd: 'the tar RUN on the host: tar -czf',
      script: `tar -czf ${dir}/app.tgz -C ${ctx}/src . && ls ${ctx}/src | wc -l > ${dir}/count`,
    },
    'run (cold)': {
      cmd: 'both RUNs on the host (200 × head -c 100k /dev/urandom; tar -czf)',
      script: `mkdir -p ${dir}/vendor && for i in $(seq 1 200); do head -c 102400 /dev/urandom > ${dir}/vendor/lib$i.so; done && tar -czf ${dir}/app.tgz -C ${ctx}/src . && ls ${ctx}/src | wc -l > ${dir}/count`,
    },
    'layers (one file)': {
      cmd: 'tar -c | gzip -1 of the new layers (src/, app.tgz twice), sha256sum',
      script: `tar -cf - -C ${ctx} src | gzip -1 | tee ${dir}/L1 | sha256sum > /dev/null && tar -cf - -C ${dir} app.tgz | gzip -1 | tee ${dir}/L2 | sha256sum > /dev/null && cp ${dir}/L2 ${dir}/L3`,
    },
    'layers (cold)': {
      cmd: 'the same, and the vendor files twice',
      script: `tar -cf - -C ${ctx} src | gzip -1 | tee ${dir}/L1 | sha256sum > /dev/null && tar -cf - -C ${dir} app.tgz | gzip -1 | tee ${dir}/L2 | sha256sum > /dev/null && tar -cf - -C ${dir} vendor | gzip -1 | tee ${dir}/L4 | sha256sum > /dev/null && cp ${dir}/L2 ${dir}/L3 && cp ${dir}/L4 ${dir}/L5`,
    },
    'push (one file)': { cmd: 'curl POST + PUT of the new layers', script: push(reg, ['L1', 'L2', 'L3'], dir) },
    'push (cold)': { cmd: 'curl POST + PUT of the new layers', script: push(reg, ['L1', 'L2', 'L3', 'L4', 'L5'], dir) },
  };
  const out = {};
  for (const [name, p] of Object.entries(phases)) {
    const secs = [];
    for (let i = 0; i < rounds; i++) {
      if (name.startsWith('pull') || name.startsWith('run') || name.startsWith('layers'))
        rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      if (name.startsWith('layers') || name.startsWith('push'))
        sh(phases[name.endsWith('(cold)') ? 'run (cold)' : 'run (one file)'].script);
      if (name.startsWith('push')) sh(phases[name.endsWith('(cold)') ? 'layers (cold)' : 'layers (one file)'].script);
      settle();
      secs.push(sh(p.script).secs);
    }
    out[name] = { secs: median(secs), cmd: p.cmd };
  }
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** A monolithic upload of each file (POST, then PUT with its digest), one after another. */
function push(reg, files, dir) {
  return files
    .map(
      (f) =>
        `d=sha256:$(sha256sum ${dir}/${f} | cut -d' ' -f1); loc=$(curl -sf -X POST -D - -o /dev/null ${reg}/v2/floor/push/blobs/uploads/ | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p'); case "$loc" in http*) ;; *) loc="${reg}$loc";; esac; curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary @${dir}/${f} "$loc&digest=$d" > /dev/null`,
    )
    .join(' && ');
}

/** The phases of hoist's median run of a scenario (its profile), by name. */
export function hoistPhases(runs) {
  const sorted = [...runs].sort((a, b) => a.secs - b.secs);
  const mid = sorted[Math.floor(sorted.length / 2)];
  return { secs: mid.secs, phases: Object.fromEntries(mid.profile.phases.map((p) => [p.phase, p.seconds])) };
}
