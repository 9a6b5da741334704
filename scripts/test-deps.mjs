// The real parts the integration tests start (shared/DESIGN.md "Testing with real parts"), installed from
// Debian's packages when `npm test` runs as root and one is missing. Without root they are left alone and the
// tests that need them say so and skip.
import { spawnSync } from 'node:child_process';

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
  zstd: 'zstd', // @actions/cache compresses its entries with it (else gzip)
};

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

export function installTestDeps() {
  const missing = Object.entries(packages).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !have('apt-get')) {
    console.log(`NOTICE: not root with apt-get; missing ${missing.join(', ')}: the tests that need them are skipped`);
    return;
  }
  console.log(`installing test dependencies: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const install = update.status === 0 && spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (!install || install.status !== 0) console.log('NOTICE: apt-get could not install the test dependencies; the tests that need them are skipped');
}
