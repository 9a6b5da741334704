#!/usr/bin/env node
// The README's first command: build the example image and push it, on embedded defaults. No public registry is
// needed: this starts a local registry (Debian's docker-registry, on 127.0.0.1), makes a busybox base image from
// Debian's busybox-static with `hoist import` and pushes it there, then runs
//   hoist build --build-arg BASE=<that image> -t <registry>/example/hello:1 --push examples/hello
// and reads the image back from the registry. Missing packages are installed when run as root with apt-get.
// Only Node's standard library and the committed dist/cli.js are used: nothing needs `npm install` first.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'cli.js');
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

function need(packages) {
  const missing = Object.entries(packages)
    .filter(([cmd]) => !have(cmd))
    .map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0 || !have('apt-get')) {
    console.error(`quickstart: needs ${missing.join(', ')} (Debian packages); install them or run this as root`);
    process.exit(1);
  }
  console.log(`installing ${missing.join(' ')} …`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env }).status !== 0 ||
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    }).status !== 0
  ) {
    console.error('quickstart: apt-get failed');
    process.exit(1);
  }
}

function hoist(args, { quiet = false } = {}) {
  console.log(`$ hoist ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (!quiet) process.stdout.write(r.stdout);
  if (r.status !== 0) throw new Error(`hoist ${args[0]} failed (exit ${r.status})`);
  return r.stdout;
}

need({ 'docker-registry': 'docker-registry', busybox: 'busybox-static' });
const work = mkdtempSync(path.join(tmpdir(), 'hoist-quickstart-'));
const server = createServer();
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
await new Promise((r) => server.close(r));
writeFileSync(
  path.join(work, 'registry.yml'),
  `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${work}/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`,
);
const registry = spawn('docker-registry', ['serve', path.join(work, 'registry.yml')], { stdio: 'ignore' });
let code = 0;
try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v2/`)).ok) break;
    } catch {}
    if (i > 200) throw new Error('the local registry did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const host = `127.0.0.1:${port}`;
  console.log(`local registry: http://${host}`);

  // A busybox base image: the static binary, a few applet links, users for USER 1000.
  const rootfs = path.join(work, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp']) mkdirSync(path.join(rootfs, d), { recursive: true });
  writeFileSync(
    path.join(rootfs, 'bin', 'busybox'),
    readFileSync(spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim()),
  );
  chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'cat', 'echo', 'ls']) symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  writeFileSync(
    path.join(rootfs, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\n',
  );
  writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\napp:x:1000:\n');
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  spawnSync('tar', [
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '-C',
    rootfs,
    '-cf',
    path.join(work, 'busybox.tar'),
    '.',
  ]);
  const base = `${host}/example/busybox:1`;
  hoist(['import', path.join(work, 'busybox.tar'), base]);
  hoist(['push', base]);

  const image = `${host}/example/hello:1`;
  const metadata = path.join(work, 'metadata.json');
  const digest = hoist([
    'build',
    '--build-arg',
    `BASE=${base}`,
    '-t',
    image,
    '--push',
    '--metadata-file',
    metadata,
    path.join(root, 'examples', 'hello'),
  ]).trim();
  const remote = JSON.parse(hoist(['inspect', '--remote', image], { quiet: true }));
  console.log(`\nbuilt and pushed ${image}`);
  console.log(`  digest:   ${digest}`);
  console.log(`  image ID: ${remote.ImageID}`);
  console.log(`  layers:   ${remote.Manifest.layers.length}, cmd: ${JSON.stringify(remote.Config.config.Cmd)}`);
  console.log(`  metadata: ${JSON.stringify(JSON.parse(readFileSync(metadata, 'utf8'))['containerimage.digest'])}`);
  if (remote.Digest !== digest) throw new Error(`the registry holds ${remote.Digest}, the build said ${digest}`);
} catch (e) {
  console.error(`quickstart: ${e.message}`);
  code = 1;
} finally {
  registry.kill();
  rmSync(work, { recursive: true, force: true });
}
process.exit(code);
