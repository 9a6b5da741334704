// RUN on a Debian base made by `debootstrap --variant=minbase` from Debian's mirror (the only distribution this
// machine can reach), pushed to a local docker-registry: apt-get installs, users, capabilities, compared with
// docker build as in differential.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Case, compareWithDocker } from '../helpers/differential.js';
import { type Dockerd, startDockerd } from '../helpers/dockerd.js';
import { hoistOk } from '../helpers/hoist.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

// apt leaves logs, caches and lists that differ from run to run; every install cleans them in the same RUN.
const clean = 'rm -rf /var/lib/apt/lists/* /var/log/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old';

const cases: Case[] = [
  {
    name: 'apt-get install of a package from Debian\'s mirror',
    dockerfile: `FROM {{BASE}}
RUN apt-get update && apt-get install -y --no-install-recommends hello && ${clean}
CMD ["hello"]
`,
    runs: 'Hello, world!\n',
  },
  {
    name: 'useradd, then USER by name: HOME, ownership, WORKDIR under it',
    dockerfile: `FROM {{BASE}}
RUN useradd -m -u 1500 -s /bin/bash builder && ${clean}
USER builder
WORKDIR /home/builder/app
RUN echo "$HOME $(id -un) $(pwd)" > where && touch owned
`,
  },
  {
    name: 'a file capability set by setcap survives into the layer',
    dockerfile: `FROM {{BASE}}
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin && cp /bin/true /usr/local/bin/bind-low && setcap cap_net_bind_service=+ep /usr/local/bin/bind-low && ${clean}
`,
  },
  {
    name: 'deleting documentation and locales of the base (many whiteouts)',
    dockerfile: `FROM {{BASE}}
RUN rm -rf /usr/share/doc /usr/share/man /usr/share/locale && mkdir /usr/share/doc
`,
  },
];

describeWith(['docker-registry', 'dockerd', 'debootstrap', 'runc'])('hoist build equals docker build on a Debian base', () => {
  let reg: TestRegistry;
  let d: Dockerd;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-deb-'));
  const store = path.join(work, 'store');
  let base = '';

  beforeAll(async () => {
    [reg, d] = await Promise.all([startRegistry('anonymous'), startDockerd()]);
    const root = path.join(work, 'rootfs');
    run('debootstrap', ['--variant=minbase', 'bookworm', root, 'http://deb.debian.org/debian']);
    run('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', path.join(work, 'debian.tar'), '.']);
    base = `${reg.host}/base/debian:bookworm`;
    await hoistOk(['import', path.join(work, 'debian.tar'), base, '--store', store]);
    await hoistOk(['push', base, '--store', store]);
  }, 600_000);
  afterAll(async () => {
    await d?.stop();
    await reg?.stop();
    // The root filesystem and the archives are half a gigabyte; CI machines can be short of disk.
    rmSync(work, { recursive: true, force: true });
  });

  test.each(cases.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    await compareWithDocker({ d, work, store, base, http: '' }, c, `deb${i}`);
  }, 300_000);
});
