// The real parts the integration tests start (shared/DESIGN.md "Testing with real parts"), installed from
// Debian's packages when `npm test` runs as root and one is missing. Without root they are left alone and the
// tests that need them say so and skip.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packages = {
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  umoci: 'umoci',
  runc: 'runc',
  dockerd: 'docker.io',
  busybox: 'busybox-static',
  openssl: 'openssl',
  setfattr: 'attr',
  python3: 'python3', // xattrs where the attr tools are missing, as on GitHub's ubuntu runners
  sudo: 'sudo',
  debootstrap: 'debootstrap',
  'ssh-agent': 'openssh-client',
  zstd: 'zstd', // zstd layers where Node's zlib has none (before 22.15)
  'qemu-aarch64-static': 'qemu-user-static', // RUN for linux/arm64 under emulation
  proot: 'proot', // RUN where nothing may be mounted (the differential suite's proot cases)
  tinyproxy: 'tinyproxy', // HTTP_PROXY honoured by the registry client and ADD <url>
};

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** Installs what is missing of `wanted` (command → Debian package; the suite's list by default). */
export function installTestDeps(wanted = packages) {
  const missing = Object.entries(wanted)
    .filter(([cmd]) => !have(cmd))
    .map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !have('apt-get')) {
    console.log(`NOTICE: not root with apt-get; missing ${missing.join(', ')}: the tests that need them are skipped`);
    return;
  }
  console.log(`installing test dependencies: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // An index that fails to update (a mirror mid-sync, a foreign architecture's list) need not stop the install: the
  // packages may be in the lists that did update. What is still missing afterwards is said by name.
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  if (update.status !== 0) console.log('NOTICE: apt-get update reported a failure; installing from the lists it has');
  spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env,
  });
  // one at a time for what a failed batch left out (apt-get installs nothing of a batch with one unknown package)
  for (const [cmd, pkg] of Object.entries(wanted)) {
    if (!have(cmd))
      spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env,
      });
  }
  const still = Object.entries(wanted)
    .filter(([cmd]) => !have(cmd))
    .map(([, pkg]) => pkg);
  if (still.length)
    console.log(
      `NOTICE: apt-get could not install ${[...new Set(still)].join(', ')}: the tests that need them are skipped`,
    );
}

/**
 * Current BuildKit as the differential suite's judge: docker 26.1 (BuildKit 0.13, buildx 0.13, containerd 1.7) from
 * Debian 13's packages, unpacked into a directory of the suite's own (nothing installed system-wide; this Debian's
 * runc and libc serve). __tests__/helpers/dockerd.ts starts it on private sockets; where it could not be fetched,
 * the suite judges with the system's docker (20.10) and says so.
 */
export const docker26Dir = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'node_modules',
  '.cache',
  'hoist-docker26',
);

/**
 * Debian packages from a suite's own lists (fetched into `dir`, apart from the system's apt state), unpacked into
 * DIR/root: nothing installed. Answers whether apt-get fetched them all.
 */
function unpackDebs(dir, suite, packages, aptOptions = []) {
  const debs = path.join(dir, 'debs');
  const lists = path.join(dir, 'lists');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.join(lists, 'partial'), { recursive: true });
  mkdirSync(debs, { recursive: true });
  const sources = path.join(dir, `${suite}.sources`);
  writeFileSync(
    sources,
    `Types: deb\nURIs: http://deb.debian.org/debian\nSuites: ${suite}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`,
  );
  const apt = [
    '-o',
    `Dir::Etc::sourcelist=${sources}`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    `Dir::State::Lists=${lists}`,
    '-o',
    'APT::Get::List-Cleanup=0',
    '-o',
    'APT::Sandbox::User=root',
    ...aptOptions,
  ];
  const ok =
    spawnSync('apt-get', [...apt, 'update', '-qq'], { stdio: 'inherit' }).status === 0 &&
    spawnSync('apt-get', [...apt, 'download', ...packages], { cwd: debs, stdio: ['ignore', 'ignore', 'inherit'] })
      .status === 0;
  if (ok)
    for (const d of readdirSync(debs).filter((f) => f.endsWith('.deb')))
      spawnSync('dpkg-deb', ['-x', path.join(debs, d), path.join(dir, 'root')], { stdio: 'inherit' });
  rmSync(debs, { recursive: true, force: true });
  rmSync(lists, { recursive: true, force: true });
  return ok;
}

const canFetchDebs = () =>
  process.platform === 'linux' && process.getuid?.() === 0 && have('apt-get') && have('dpkg-deb');

export function fetchDocker26() {
  const root = path.join(docker26Dir, 'root');
  if (existsSync(path.join(root, 'usr', 'sbin', 'dockerd'))) return;
  if (!canFetchDebs()) {
    console.log("NOTICE: not root with apt-get: the differential suite judges with the system's docker (20.10)");
    return;
  }
  console.log("fetching docker 26 (BuildKit 0.13) from Debian 13's packages for the differential suite");
  unpackDebs(docker26Dir, 'trixie', ['docker.io', 'docker-buildx', 'docker-cli', 'containerd']);
  if (!existsSync(path.join(root, 'usr', 'sbin', 'dockerd')))
    console.log(
      "NOTICE: docker 26 could not be fetched: the differential suite judges with the system's docker (20.10)",
    );
}

/**
 * An arm64 busybox (Debian's busybox-static for arm64, from bookworm's own lists fetched into a directory of the
 * suite's) for the multi-platform tests' arm64 base image; its RUN steps run under qemu-user-static.
 */
export const arm64Dir = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'node_modules',
  '.cache',
  'hoist-arm64',
);

export function fetchArm64Busybox() {
  const busybox = path.join(arm64Dir, 'root', 'bin', 'busybox');
  if (existsSync(busybox) || !canFetchDebs()) return;
  unpackDebs(
    arm64Dir,
    'bookworm',
    ['busybox-static'],
    ['-o', 'APT::Architecture=arm64', '-o', 'APT::Architectures=arm64'],
  );
  if (!existsSync(busybox))
    console.log('NOTICE: the arm64 busybox could not be fetched: the emulated RUN tests are skipped');
}
