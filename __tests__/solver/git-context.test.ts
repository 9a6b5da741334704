// A Git repository as the build's context, as `docker buildx build https://…/r.git#ref:subdir` takes it: fetched
// with the machine's git from a real Git server (git's http-backend, helpers/git-server.ts), a private one with a
// token as GitHub serves a workflow's repository. Real parts: git, docker-registry, skopeo.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseGitContext } from '../../src/solver/git-context.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { hoist, hoistWithEnv } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { readBack } from '../helpers/readback.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, pathWithout, run } from '../helpers/tools.js';

describe('Git context URLs, as BuildKit reads them', () => {
  test.each([
    [
      'https://github.com/o/r.git#main:docker',
      { remote: 'https://github.com/o/r.git', ref: 'main', subdir: 'docker', host: 'github.com' },
    ],
    ['https://github.com/o/r.git', { remote: 'https://github.com/o/r.git', host: 'github.com' }],
    ['https://github.com/o/r.git#:sub/dir', { remote: 'https://github.com/o/r.git', subdir: 'sub/dir' }],
    [
      'https://github.com/o/r.git?ref=refs/pull/7/merge&subdir=app',
      { remote: 'https://github.com/o/r.git', ref: 'refs/pull/7/merge', subdir: 'app' },
    ],
    [
      'https://github.com/o/r.git?ref=v1&keep-git-dir=true&submodules=false',
      { ref: 'v1', keepGitDir: true, submodules: false },
    ],
    ['git@github.com:o/r.git#v1.2.3', { remote: 'git@github.com:o/r.git', ref: 'v1.2.3', host: 'github.com' }],
    ['github.com/o/r#main', { remote: 'https://github.com/o/r', ref: 'main' }],
    ['ssh://git@example.com:2222/o/r.git', { remote: 'ssh://git@example.com:2222/o/r.git', host: 'example.com:2222' }],
    ['git://example.com/o/r', { remote: 'git://example.com/o/r' }],
  ])('%s', (text, want) => {
    expect(parseGitContext(text)).toMatchObject(want);
  });

  test('directories and other URLs are not Git contexts; a bad ref or query is a clear error', () => {
    for (const t of ['.', 'docker', '/abs/dir', 'https://example.com/context.tar.gz', 'C:\\x', 'host:path'])
      expect(parseGitContext(t)).toBeUndefined();
    expect(() => parseGitContext('https://example.com/r.git#--upload-pack=x')).toThrow(
      /"--upload-pack=x" is not a ref or commit/,
    );
    expect(() => parseGitContext('https://example.com/r.git?ref=a..b')).toThrow(/is not a ref or commit/);
    expect(() => parseGitContext('https://[bad.git')).toThrow('Git context https://[bad.git: not a URL git can fetch');
    expect(parseGitContext('https://example.com/r.git?ref=main&checksum=ABC1234')).toMatchObject({
      ref: 'main',
      checksum: 'abc1234',
    });
    expect(() => parseGitContext('https://u:secret@example.com/r.git?bogus=1')).toThrow(
      'Git context https://example.com/r.git?bogus=1: unknown query parameter "bogus" (ref, subdir, keep-git-dir, submodules)',
    );
  });
});

describeWith(['git', 'docker-registry', 'busybox', 'skopeo'])('building from a Git context', () => {
  let reg: TestRegistry;
  let srv: GitServer;
  const token = 'ghs_gitcontexttoken0123456789';
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-gitctx-'));
  const store = path.join(work, 'store');
  let base = '';
  let commit = '';
  let n = 0;
  beforeAll(async () => {
    [reg, srv] = await Promise.all([startRegistry('anonymous'), startGitServer(token)]);
    base = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(base, store, work);
    srv.repo('acme/lib', { 'lib.txt': 'the library\n' }, { time: 1_690_000_000 });
    commit = srv.repo(
      'acme/app',
      {
        'docker/Dockerfile': `FROM ${base}\nCOPY . /src/\n`,
        'docker/app.txt': 'app\n',
        'docker/Dockerfile.alt': `FROM ${base}\nCOPY app.txt /alt.txt\n`,
        README: 'top\n',
        escape: { symlink: '/etc' },
      },
      {
        time: 1_700_000_000,
        tag: 'v1.0.0',
        private: true,
        submodule: { path: 'docker/vendor/lib', url: `${srv.url}/acme/lib.git` },
      },
    );
  }, 120_000);
  afterAll(async () => {
    await Promise.all([reg?.stop(), srv?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  const build = async (context: string, args: string[] = [], env: Record<string, string> = {}) => {
    const out = path.join(work, `out${n++}`);
    const r = await hoistWithEnv(env, [
      'build',
      '--store',
      store,
      '--progress',
      'plain',
      ...args,
      '-o',
      `type=local,dest=${out}`,
      context,
    ]);
    return { ...r, out };
  };
  const withToken = ['--secret', 'id=GIT_AUTH_TOKEN,env=HOIST_TEST_GIT_TOKEN'];
  const tokenEnv = { HOIST_TEST_GIT_TOKEN: token };

  test("a private repository, a ref and a directory: fetched with the token, submodules in, no .git, every file at the commit's time", async () => {
    const r = await build(`${srv.url}/acme/app.git#main:docker`, withToken, tokenEnv);
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
    expect(r.err).toContain(
      `context: ${srv.url}/acme/app.git at main (commit ${commit.slice(0, 12)}), directory docker`,
    );
    expect(readFileSync(path.join(r.out, 'src/app.txt'), 'utf8')).toBe('app\n');
    expect(readFileSync(path.join(r.out, 'src/vendor/lib/lib.txt'), 'utf8')).toBe('the library\n');
    expect(existsSync(path.join(r.out, 'src/README'))).toBe(false);
    expect(readdirSync(path.join(r.out, 'src')).some((f) => f.startsWith('.git'))).toBe(false);
    expect(statSync(path.join(r.out, 'src/app.txt')).mtimeMs / 1000).toBe(1_700_000_000);
    // the token went as a header (the server saw it), never into the output, the store or a file of the build
    expect(srv.requests.some((l) => l.includes('/acme/app.git/') && l.endsWith('authorized'))).toBe(true);
    expect(r.err).not.toContain(token);
    expect(spawnSync('grep', ['-rl', token, store, r.out, '--no-messages'], { encoding: 'utf8' })).toMatchObject({
      status: 1,
      stdout: '',
    });
  }, 120_000);

  test('the same commit built again gives the same image; a tag, a commit id and GIT_AUTH_TOKEN.<host> reach it too', async () => {
    const digests: string[] = [];
    for (const [context, secretId] of [
      [`${srv.url}/acme/app.git#main:docker`, 'GIT_AUTH_TOKEN'],
      [`${srv.url}/acme/app.git#v1.0.0:docker`, `GIT_AUTH_TOKEN.${srv.host}`],
      [`${srv.url}/acme/app.git#${commit}:docker`, 'GIT_AUTH_TOKEN'],
      [`${srv.url}/acme/app.git#${commit.slice(0, 10)}:docker`, 'GIT_AUTH_TOKEN'],
    ]) {
      const tag = `${reg.host}/git/app:${n++}`;
      const r = await hoistWithEnv(tokenEnv, [
        'build',
        '--store',
        path.join(work, `fresh${n}`),
        '--progress',
        'plain',
        '--secret',
        `id=${secretId},env=HOIST_TEST_GIT_TOKEN`,
        '-t',
        tag,
        '--push',
        context,
      ]);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      await readBack(tag);
      digests.push(r.out.trim());
    }
    expect(new Set(digests).size).toBe(1);
  }, 180_000);

  test('-f inside the context; BUILDKIT_CONTEXT_KEEP_GIT_DIR=1 keeps .git', async () => {
    const alt = await build(`${srv.url}/acme/app.git#main:docker`, [...withToken, '-f', 'Dockerfile.alt'], tokenEnv);
    expect(`${alt.code}\n${alt.err}`).toBe(`0\n${alt.err}`);
    expect(readFileSync(path.join(alt.out, 'alt.txt'), 'utf8')).toBe('app\n');
    const kept = await build(
      `${srv.url}/acme/app.git?ref=main&keep-git-dir=true`,
      [...withToken, '-f', 'docker/Dockerfile'],
      tokenEnv,
    );
    expect(`${kept.code}\n${kept.err}`).toBe(`0\n${kept.err}`);
    expect(existsSync(path.join(kept.out, 'src/.git/HEAD'))).toBe(true);
    const byArg = await build(
      `${srv.url}/acme/app.git#main`,
      [...withToken, '--build-arg', 'BUILDKIT_CONTEXT_KEEP_GIT_DIR=1', '-f', 'docker/Dockerfile'],
      tokenEnv,
    );
    expect(`${byArg.code}\n${byArg.err}`).toBe(`0\n${byArg.err}`);
    expect(existsSync(path.join(byArg.out, 'src/.git/HEAD'))).toBe(true);
    const dropped = await build(`${srv.url}/acme/app.git#main`, [...withToken, '-f', 'docker/Dockerfile'], tokenEnv);
    expect(existsSync(path.join(dropped.out, 'src/.git'))).toBe(false);
    expect(readFileSync(path.join(dropped.out, 'src/README'), 'utf8')).toBe('top\n');
  }, 120_000);

  test('what cannot be built fails at once, saying why: no token, no such ref, a directory that leads out, a file:// submodule, no git', async () => {
    const started = Date.now();
    const denied = await build(`${srv.url}/acme/app.git#main:docker`);
    expect(denied.code).toBe(1);
    expect(denied.err).toMatch(
      new RegExp(`hoist build: Git context ${srv.url}/acme/app.git: could not fetch main: .*`),
    );
    const noRef = await build(`${srv.url}/acme/app.git#no-such-branch`, withToken, tokenEnv);
    expect(noRef.err).toMatch(/could not fetch no-such-branch: .*couldn't find remote ref no-such-branch/);
    const sum = await build(`${srv.url}/acme/app.git?ref=main&checksum=0000000`, withToken, tokenEnv);
    expect(sum.err).toContain(
      `Git context ${srv.url}/acme/app.git: main is commit ${commit}, not the 0000000 the URL asks for`,
    );
    const out = await build(`${srv.url}/acme/app.git#main:escape`, withToken, tokenEnv);
    expect(out.code).toBe(1);
    expect(out.err).toMatch(/Git context .*: "escape" is not a directory of main/);
    // a submodule whose URL is a path of the machine the build runs on
    const local = path.join(work, 'host-repo');
    run('sh', [
      '-c',
      `git init -q ${local} && cd ${local} && echo secret > secret && git add secret && git -c user.name=x -c user.email=x@x commit -qm s`,
    ]);
    srv.repo('acme/sneaky', { Dockerfile: `FROM ${base}\nCOPY . /x/\n` }, { submodule: { path: 'host', url: local } });
    const sneaky = await build(`${srv.url}/acme/sneaky.git`);
    expect(sneaky.code).toBe(1);
    expect(sneaky.err).toMatch(
      /its submodules could not be fetched: .*clone of '.*host-repo' into submodule path .* failed/,
    );
    const noGit = pathWithout(['git']);
    try {
      const r = await build(`${srv.url}/acme/app.git`, [], { PATH: noGit });
      expect(r.err.trim()).toBe('hoist build: a Git context needs git on PATH: install git (apt-get install git)');
    } finally {
      rmSync(noGit, { recursive: true, force: true });
    }
    for (const r of [denied, noRef, sum, out, sneaky]) expect(r.err).not.toMatch(/\n\s+at /);
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);

  test('a plain directory that looks like a host path is still a directory', async () => {
    const r = await hoist(['build', '--store', store, '--progress', 'quiet', path.join(work, 'missing-dir')]);
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(/Git context/);
  });
});
