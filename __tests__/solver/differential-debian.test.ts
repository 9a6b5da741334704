// RUN on a Debian base made by `debootstrap --variant=minbase` from Debian's mirror (the only distribution this
// machine can reach), pushed to a local docker-registry: apt-get installs, users, capabilities, compared with
// docker build as in differential.test.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { debianCases as cases } from '../helpers/debian-cases.js';
import { compareWithDocker } from '../helpers/differential.js';
import { debianTar } from '../helpers/debian.js';
import { type Dockerd, startDockerd } from '../helpers/dockerd.js';
import { hoistOk } from '../helpers/hoist.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

describeWith(['docker-registry', 'dockerd', 'debootstrap', 'runc', 'ssh-agent'])(
  'hoist build equals docker build on a Debian base',
  () => {
    let reg: TestRegistry;
    let d: Dockerd;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-deb-'));
    const store = path.join(work, 'store');
    let base = '';
    let agent: ChildProcess | undefined;
    let savedAgent: string | undefined;

    beforeAll(async () => {
      [reg, d] = await Promise.all([startRegistry('anonymous'), startDockerd()]);
      base = `${reg.host}/base/debian:bookworm`;
      await hoistOk(['import', debianTar(), base, '--store', store]);
      await hoistOk(['push', base, '--store', store]);
      // An agent holding one key (SSH_AUTH_SOCK for both builders) and a second key as a file (--ssh keys=FILE).
      const sock = path.join(work, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
      for (const k of ['agent-key', 'file-key'])
        run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', path.join(work, k)]);
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 20));
      run('ssh-add', [path.join(work, 'agent-key')], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      savedAgent = process.env.SSH_AUTH_SOCK;
      process.env.SSH_AUTH_SOCK = sock;
    }, 600_000);
    afterAll(async () => {
      agent?.kill();
      if (savedAgent === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = savedAgent;
      await d?.stop();
      await reg?.stop();
      // The root filesystem and the archives are half a gigabyte; CI machines can be short of disk.
      rmSync(work, { recursive: true, force: true });
    });

    test.each(cases.map((c, i) => [c.name, c, i] as const))(
      '%s',
      async (_name, c, i) => {
        await compareWithDocker({ d, work, store, base, http: '' }, c, `deb${i}`);
      },
      300_000,
    );
  },
);
