// The Action's inputs as a step gives them (strings, as GitHub passes INPUT_* variables) → the typed request, and
// the credentials the step uses: table tests, no runner needed.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventGitContext, inputKinds, type InputName, readInputs } from '../../src/action/inputs.js';
import { ActionCredentials } from '../../src/action/login.js';

const read = (given: Partial<Record<InputName, string>>) => readInputs((n) => given[n] ?? '');

describe('readInputs', () => {
  test("nothing given: build-push-action's defaults (context ., no push, no load, cache auto)", () => {
    const i = read({});
    expect(i).toMatchObject({
      context: '.',
      tags: [],
      images: [],
      push: false,
      load: false,
      cache: 'auto',
      outputs: [],
      cacheFrom: [],
      cacheTo: [],
      noCache: false,
      notApplied: [],
    });
    expect(i.file).toBeUndefined();
    expect(i.platform).toBeUndefined();
  });

  test("metadata-action's outputs wired in as they arrive: newline lists; tags also split at commas", () => {
    const i = read({
      tags: 'ghcr.io/acme/app:1.2.3\nghcr.io/acme/app:1.2,ghcr.io/acme/app:latest\n',
      labels: 'org.opencontainers.image.title=app\norg.opencontainers.image.description=a, b and c\n',
      'build-args': 'A=1\n"MSG=x,y"\nEMPTY=\n',
    });
    expect(i.tags).toEqual(['ghcr.io/acme/app:1.2.3', 'ghcr.io/acme/app:1.2', 'ghcr.io/acme/app:latest']);
    expect(i.labels).toEqual(['org.opencontainers.image.title=app', 'org.opencontainers.image.description=a, b and c']);
    expect([...i.buildArgs]).toEqual([
      ['A', '1'],
      ['MSG', 'x,y'],
      ['EMPTY', ''],
    ]);
  });

  test('outputs, caches, secrets and ssh parsed as the CLI flags are', () => {
    const i = read({
      push: 'true',
      load: 'False',
      outputs: 'type=oci,dest=out.tar\ntype=image,name=r/app,push=true',
      'cache-from': 'type=gha,scope=web\ntype=registry,ref=r/app:cache',
      'cache-to': 'type=gha,mode=max,scope=web',
      secrets: 'token=abc=def\n',
      'secret-envs': 'npm=NPM_TOKEN,gh=GH',
      'secret-files': 'cert=./ca.pem',
      ssh: 'default',
      'no-cache-filters': 'deps,build',
      platforms: 'linux/arm64',
    });
    expect(i.push).toBe(true);
    expect(i.load).toBe(false);
    expect(i.outputs).toEqual([
      { type: 'oci', dest: 'out.tar', tar: true, names: undefined, ociMediaTypes: true },
      { type: 'registry', names: ['r/app'] },
    ]);
    expect(i.cacheFrom.map((c) => c.type)).toEqual(['gha', 'registry']);
    expect(i.cacheTo).toEqual([expect.objectContaining({ type: 'gha', mode: 'max', scope: 'web' })]);
    expect(Object.fromEntries(i.secrets)).toEqual({
      token: { value: 'abc=def' },
      npm: { env: 'NPM_TOKEN' },
      gh: { env: 'GH' },
      cert: { file: './ca.pem' },
    });
    expect([...i.ssh.keys()]).toEqual(['default']);
    expect(i.noCacheFilters).toEqual(['deps', 'build']);
    expect(i.platform).toMatchObject({ os: 'linux', architecture: 'arm64' });
  });

  test.each<[string, Partial<Record<InputName, string>>, RegExp]>([
    ['a boolean that is not one', { push: 'yes' }, /^input push: "yes" is not a boolean/],
    ['a build arg without a key', { 'build-args': 'A=1\n=x' }, /^input build-args: "=x" has an empty key/],
    ['a label without a key', { labels: '=x' }, /^input labels: "=x" has an empty key/],
    ['a platform that is none', { platforms: 'linux/amd64/v9/x' }, /^input platforms:/],
    ['an unknown cache mode', { cache: 'on' }, /^input cache: "on" is not auto or off/],
    ['an unknown isolation', { isolation: 'vm' }, /^input isolation: "vm" is not one of auto, runc, proot, chroot/],
    ['an unknown cache type', { 'cache-from': 'type=s3,bucket=x' }, /^input cache-from: /],
    ['an unknown output type', { outputs: 'type=tarball' }, /^input outputs: .*unknown type/],
  ])('%s fails naming the input', (_name, given, message) => {
    expect(() => read(given)).toThrow(message);
  });

  test('several platforms, emulation, push by digest and the merge inputs of the matrix recipe', () => {
    const i = read({
      platforms: 'linux/amd64,linux/arm64',
      emulate: 'true',
      outputs: 'type=image,name=r/app,push-by-digest=true,name-canonical=true,push=true',
    });
    expect(i.platforms.map((p) => p.architecture)).toEqual(['amd64', 'arm64']);
    expect(i.platform).toBeUndefined();
    expect(i.emulate).toBe(true);
    expect(i.outputs).toEqual([{ type: 'registry', names: ['r/app'], byDigest: true }]);
    expect(i.pushByDigest).toBe(false);
    expect(read({ 'push-by-digest': 'true' }).pushByDigest).toBe(true);
    expect(i.isolation).toBe('auto');
    expect(read({ isolation: 'proot' }).isolation).toBe('proot');
    const m = read({
      merge: `r/app@sha256:${'a'.repeat(64)}\nr/app@sha256:${'b'.repeat(64)}`,
      'merge-digests-dir': '/tmp/digests',
    });
    expect(m.merge).toHaveLength(2);
    expect(m.mergeDigestsDir).toBe('/tmp/digests');
  });

  test('inputs this version does not apply are said, not silently dropped', () => {
    const i = read({
      'build-contexts': 'alpine=docker-image://alpine:3',
      annotations: 'index:a=b',
      builder: 'builder-1',
    });
    expect(i.buildContexts).toEqual(['alpine=docker-image://alpine:3']);
    expect(i.notApplied).toEqual([expect.stringMatching(/^input builder: "builder-1" names a buildx builder/)]);
  });

  test('add-hosts, network, shm-size and ulimit: what every RUN gets; bad values fail naming the input', () => {
    const i = read({
      'add-hosts': 'docker:10.180.0.1\nfoo:10.0.0.1',
      network: 'none',
      'shm-size': '2g',
      ulimit: 'nofile=1024:1024\nnproc=3',
    });
    expect(i.sandbox).toEqual({
      addHosts: [
        { host: 'docker', ip: '10.180.0.1' },
        { host: 'foo', ip: '10.0.0.1' },
      ],
      network: 'none',
      shmSize: 2 * 1024 ** 3,
      ulimits: [
        { name: 'nofile', soft: 1024, hard: 1024 },
        { name: 'nproc', soft: 3, hard: 3 },
      ],
    });
    expect(read({ network: 'host' }).sandbox).toEqual({ network: 'host' });
    expect(read({}).sandbox).toEqual({});
    expect(() => read({ 'add-hosts': 'docker' })).toThrow('input add-hosts: add-host "docker": expected HOST:IP');
    expect(() => read({ network: 'bridge' })).toThrow(
      'input network: network "bridge": RUN takes default, host or none',
    );
    expect(() => read({ 'shm-size': 'big' })).toThrow('input shm-size: shm-size "big"');
    expect(() => read({ ulimit: 'nofile=2:1' })).toThrow(
      'input ulimit: ulimit "nofile=2:1": the soft limit 2 is above the hard limit 1',
    );
  });

  test('what hoist does not make is refused, saying what to write instead; provenance is read as build-push-action reads it', () => {
    for (const off of [
      { provenance: 'false' },
      { sbom: 'false' },
      { attests: 'type=sbom,disabled=true' },
      { call: 'build' },
      { allow: 'network.host' },
      { provenance: '' },
    ])
      expect(read(off).provenance).toBeUndefined();
    expect(read({ provenance: 'mode=max' }).provenance).toEqual({ mode: 'max' });
    expect(read({ provenance: 'true' }).provenance).toEqual({ mode: 'min' });
    expect(read({ attests: 'type=provenance,mode=max' }).provenance).toEqual({ mode: 'max' });
    expect(read({ attests: 'type=provenance,mode=min', provenance: 'mode=max' }).provenance).toEqual({ mode: 'max' });
    expect(() => read({ provenance: 'mode=full' })).toThrow('input provenance: provenance "mode=full"');
    expect(read({ sbom: 'true' }).sbom).toBe(true);
    expect(read({ attests: 'type=sbom' }).sbom).toBe(true);
    expect(read({}).sbom).toBe(false);
    expect(() => read({ sbom: 'generator=image' })).toThrow('input sbom: sbom "generator=image": generator= names');
    expect(() => read({ attests: 'type=spdx' })).toThrow(
      'input attests: "type=spdx": hoist makes type=provenance and type=sbom attestations',
    );
    expect(() => read({ 'cgroup-parent': 'foo' })).toThrow('input cgroup-parent:');
    expect(() => read({ call: 'check' })).toThrow('input call: "check": hoist only builds');
    expect(() => read({ allow: 'security.insecure' })).toThrow(
      'input allow: "security.insecure": RUN --security=insecure is not supported by hoist',
    );
  });

  test('every input kind is one lists.ts knows', () => {
    for (const k of Object.values(inputKinds)) expect(['string', 'bool', 'list', 'csv']).toContain(k);
  });
});

describe('ActionCredentials', () => {
  let home: string;
  beforeEach(() => {
    home = mkdtempSync(path.join(tmpdir(), 'hoist-login-'));
    mkdirSync(path.join(home, '.docker'));
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));
  const env = () => ({ HOME: home, DOCKER_CONFIG: path.join(home, '.docker') });
  const config = (auths: Record<string, string>) =>
    writeFileSync(
      path.join(home, '.docker', 'config.json'),
      JSON.stringify({
        auths: Object.fromEntries(
          Object.entries(auths).map(([k, v]) => [k, { auth: Buffer.from(v).toString('base64') }]),
        ),
      }),
    );

  test('the inputs log in to their registry (Docker Hub by default); others come from the docker config', async () => {
    config({ 'quay.io': 'robot:fromconfig', 'https://index.docker.io/v1/': 'hub:fromconfig' });
    const c = new ActionCredentials({ registry: 'registry.example.com:5000', username: 'u', password: 'p' }, env());
    expect(await c.get('registry.example.com:5000')).toEqual({ username: 'u', password: 'p' });
    expect(await c.get('quay.io')).toEqual({ username: 'robot', password: 'fromconfig' });
    expect(await c.get('docker.io')).toEqual({ username: 'hub', password: 'fromconfig' });
    const hub = new ActionCredentials({ username: 'me', password: 'tok' }, env());
    expect(hub.loginRegistry).toBe('docker.io');
    expect(await hub.get('docker.io')).toEqual({ username: 'me', password: 'tok' });
  });

  test("ghcr.io: an earlier login-action step's credentials first, else the github-token as the actor", async () => {
    const token = new ActionCredentials({ githubToken: 'ghs_x', actor: 'octocat' }, env());
    expect(await token.get('ghcr.io')).toEqual({ username: 'octocat', password: 'ghs_x' });
    expect(await token.get('quay.io')).toBeUndefined();
    config({ 'ghcr.io': 'bot:pat' });
    expect(await token.get('ghcr.io')).toEqual({ username: 'bot', password: 'pat' });
  });

  test('a username without a password (or the reverse) is an error', () => {
    expect(() => new ActionCredentials({ username: 'u' }, env())).toThrow(/username and password go together/);
    expect(() => new ActionCredentials({ password: 'p' }, env())).toThrow(/username and password go together/);
  });
});

describe("the default context: the event's Git context, as build-push-action makes it", () => {
  const sha = '860c1904a1ce19322e91ac35af1ab07466440c37';
  const run = { GITHUB_REPOSITORY: 'acme/app', GITHUB_SHA: sha };
  test.each([
    ['a branch push: the commit itself', { GITHUB_REF: 'refs/heads/main' }, `https://github.com/acme/app.git#${sha}`],
    [
      'a pull request: its merge ref',
      { GITHUB_REF: 'refs/pull/7/merge' },
      'https://github.com/acme/app.git#refs/pull/7/merge',
    ],
    [
      'a pull request with DOCKER_DEFAULT_GIT_CONTEXT_PR_HEAD_REF: its head',
      { GITHUB_REF: 'refs/pull/7/merge', DOCKER_DEFAULT_GIT_CONTEXT_PR_HEAD_REF: 'true' },
      'https://github.com/acme/app.git#refs/pull/7/head',
    ],
    [
      'GitHub Enterprise Server, the query form',
      {
        GITHUB_REF: 'refs/tags/v1',
        GITHUB_SERVER_URL: 'https://ghe.example.com/',
        BUILDX_SEND_GIT_QUERY_AS_INPUT: 'true',
      },
      `https://ghe.example.com/acme/app.git?ref=${sha}`,
    ],
  ])('%s', (_name, env, want) => {
    expect(eventGitContext({ ...run, ...env })).toBe(want);
  });

  test('context omitted or {{defaultContext}}[:dir] is that context, with github-token as GIT_AUTH_TOKEN.<host>; `.` is the checkout; outside a workflow, the checkout', () => {
    const env = { ...run, GITHUB_REF: 'refs/heads/main' };
    const read = (inputs: Record<string, string>, e: NodeJS.ProcessEnv = env) =>
      readInputs((n: InputName) => inputs[n] ?? '', e);
    const omitted = read({ 'github-token': 'ghs_x' });
    expect(omitted.context).toBe(`https://github.com/acme/app.git#${sha}`);
    expect(Object.fromEntries(omitted.secrets)).toEqual({ 'GIT_AUTH_TOKEN.github.com': { value: 'ghs_x' } });
    expect(read({ context: '{{defaultContext}}:docker' }).context).toBe(
      `https://github.com/acme/app.git#${sha}:docker`,
    );
    expect(
      read({ context: '{{defaultContext}}:docker' }, { ...env, BUILDX_SEND_GIT_QUERY_AS_INPUT: '1' }).context,
    ).toBe(`https://github.com/acme/app.git?ref=${sha}&subdir=docker`);
    // a GIT_AUTH_TOKEN the workflow gives wins; the checkout gets no token
    expect([...read({ 'github-token': 'ghs_x', secrets: 'GIT_AUTH_TOKEN=mine' }).secrets.keys()]).toEqual([
      'GIT_AUTH_TOKEN',
    ]);
    const checkout = read({ 'github-token': 'ghs_x', context: '.' });
    expect([checkout.context, checkout.secrets.size]).toEqual(['.', 0]);
    expect(read({ context: '{{defaultContext}}:sub' }, {}).context).toBe('sub');
    expect(read({}, {}).context).toBe('.');
  });
});
