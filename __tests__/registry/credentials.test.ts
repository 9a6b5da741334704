// Where credentials come from, with real files and a real credential-helper program on PATH (a shell script
// speaking the docker-credential-helpers protocol).
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DockerCredentials, eraseCredential, storeCredential } from '../../src/registry/credentials.js';
import { parseChallenges } from '../../src/registry/challenge.js';
import { joinScopes, splitScope } from '../../src/registry/auth.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function home(config?: object, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-creds-'));
  mkdirSync(path.join(dir, '.docker'));
  if (config) writeFileSync(path.join(dir, '.docker', 'config.json'), JSON.stringify(config));
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  // A helper that knows one server and logs what it was asked.
  writeFileSync(
    path.join(bin, 'docker-credential-fake'),
    `#!/bin/sh\nread server\necho "$1 $server" >> ${dir}/helper.log\nif [ "$1" = get ]; then\n  case "$server" in\n    helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"hu","Secret":"hs"}';;\n    tokened.example.com) echo '{"ServerURL":"tokened.example.com","Username":"<token>","Secret":"refresh-me"}';;\n    *) echo "credentials not found in native keychain"; exit 1;;\n  esac\nfi\n`,
  );
  chmodSync(path.join(bin, 'docker-credential-fake'), 0o755);
  return { HOME: dir, PATH: `${bin}:${process.env.PATH}`, XDG_RUNTIME_DIR: path.join(dir, 'run'), ...extra };
}

describe('DockerCredentials', () => {
  test('auths: base64 auth, Docker Hub under its v1 URL, legacy URL keys', async () => {
    const env = home({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hub:pw') },
        'https://quay.io/v1/': { auth: b64('q:pw:with:colons') },
        'r.example.com:5000': { username: 'u', password: 'p' },
      },
    });
    const c = new DockerCredentials(env);
    expect(await c.get('docker.io')).toEqual({ username: 'hub', password: 'pw' });
    expect(await c.get('quay.io')).toEqual({ username: 'q', password: 'pw:with:colons' });
    expect(await c.get('r.example.com:5000')).toEqual({ username: 'u', password: 'p' });
    expect(await c.get('other.example.com')).toBeUndefined();
  });

  test('credHelpers win over credsStore, which wins over auths; "not found" means anonymous', async () => {
    const env = home({
      credHelpers: { 'helped.example.com': 'fake', 'tokened.example.com': 'fake' },
      credsStore: 'fake',
      auths: { 'plain.example.com': { auth: b64('a:b') } },
    });
    const c = new DockerCredentials(env);
    expect(await c.get('helped.example.com')).toEqual({ username: 'hu', password: 'hs' });
    expect(await c.get('tokened.example.com')).toEqual({ identityToken: 'refresh-me' });
    expect(await c.get('plain.example.com')).toEqual({ username: 'a', password: 'b' });
    expect(readFileSync(path.join(env.HOME as string, 'helper.log'), 'utf8')).toContain('get plain.example.com');
  });

  test('a missing helper program is a clear error', async () => {
    const env = home({ credsStore: 'nonexistent' });
    await expect(new DockerCredentials(env).get('x.example.com')).rejects.toThrow(
      /docker-credential-nonexistent is not installed/,
    );
  });

  test('DOCKER_AUTH_CONFIG overrides the file; podman auth.json is read when Docker has nothing', async () => {
    const env = home(
      { auths: { 'r.example.com': { auth: b64('file:pw') } } },
      { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { 'r.example.com': { auth: b64('env:pw') } } }) },
    );
    expect(await new DockerCredentials(env).get('r.example.com')).toEqual({ username: 'env', password: 'pw' });
    mkdirSync(path.join(env.XDG_RUNTIME_DIR as string, 'containers'), { recursive: true });
    writeFileSync(
      path.join(env.XDG_RUNTIME_DIR as string, 'containers', 'auth.json'),
      JSON.stringify({ auths: { 'podman.example.com': { auth: b64('pod:pw') } } }),
    );
    expect(await new DockerCredentials(env).get('podman.example.com')).toEqual({ username: 'pod', password: 'pw' });
    const bad = home(undefined, { DOCKER_AUTH_CONFIG: '{nope' });
    await expect(new DockerCredentials(bad).get('x')).rejects.toThrow(/DOCKER_AUTH_CONFIG is not valid JSON/);
  });

  test('identity and registry tokens from auths', async () => {
    const env = home({
      auths: {
        'acr.example.io': { username: '00000000-0000-0000-0000-000000000000', identitytoken: 'idt' },
        't.example.com': { registrytoken: 'rt' },
      },
    });
    const c = new DockerCredentials(env);
    expect(await c.get('acr.example.io')).toEqual({
      username: '00000000-0000-0000-0000-000000000000',
      identityToken: 'idt',
    });
    expect(await c.get('t.example.com')).toEqual({ registryToken: 'rt' });
  });

  test('store and erase write config.json as docker login does (mode 0600, other fields kept)', async () => {
    const env = home({ auths: {}, psFormat: 'table {{.ID}}' });
    env.DOCKER_CONFIG = path.join(env.HOME as string, '.docker');
    await storeCredential('docker.io', { username: 'me', password: 'secret' }, env);
    const file = path.join(env.DOCKER_CONFIG, 'config.json');
    const config = JSON.parse(readFileSync(file, 'utf8'));
    expect(config.auths['https://index.docker.io/v1/'].auth).toBe(b64('me:secret'));
    expect(config.psFormat).toBe('table {{.ID}}');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await eraseCredential('docker.io', env)).toBe(true);
    expect(JSON.parse(readFileSync(file, 'utf8')).auths).toEqual({});
    expect(await eraseCredential('docker.io', env)).toBe(false);
  });

  test('with a credsStore, login goes to the helper', async () => {
    const env = home({ credsStore: 'fake' });
    env.DOCKER_CONFIG = path.join(env.HOME as string, '.docker');
    expect(await storeCredential('r.example.com', { username: 'u', password: 'p' }, env)).toBe(
      'docker-credential-fake',
    );
    expect(readFileSync(path.join(env.HOME as string, 'helper.log'), 'utf8')).toMatch(/^store /m);
  });
});

describe('WWW-Authenticate and scopes', () => {
  test('challenges with quoted commas and several schemes', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push repository:c:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example.com/token',
          service: 'registry.example.com',
          scope: 'repository:a/b:pull,push repository:c:pull',
        },
      },
    ]);
    expect(parseChallenges('Basic realm="x", Bearer realm="y",error="insufficient_scope"')).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'y', error: 'insufficient_scope' } },
    ]);
    expect(parseChallenges('Basic realm="a \\"quoted\\" realm"')[0].params.realm).toBe('a "quoted" realm');
  });

  test('scopes split and merge per resource; a port in the name survives', () => {
    expect(splitScope('repository:localhost:5000/x:pull,push')).toEqual([
      'repository:localhost:5000/x:pull',
      'repository:localhost:5000/x:push',
    ]);
    expect(joinScopes(['repository:a:pull', 'repository:a:push', 'repository:b:pull', 'registry:catalog:*'])).toEqual([
      'registry:catalog:*',
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });
});
