// The image verbs end to end against real parts: Debian's docker-registry (anonymous and htpasswd), skopeo and
// umoci as independent clients, and dockerd as the loader of what `hoist save` writes.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { digestOf } from '../../src/image/digest.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { makeImage, seed } from '../helpers/images.js';
import { hoist, hoistOk } from '../helpers/hoist.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';

const skopeoRaw = (ref: string) => run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
const skopeoDigest = (ref: string) => digestOf(Buffer.from(skopeoRaw(ref)));

/** An index over an amd64 and an arm64 image, pushed by the library client. */
async function seedIndex(client: RegistryClient, refText: string): Promise<{ index: string; children: string[] }> {
  const ref = parseReference(refText);
  const amd = makeImage({ files: [{ 'arch.txt': 'amd64' }] });
  const arm = makeImage({ files: [{ 'arch.txt': 'arm64' }], architecture: 'arm64' });
  const children = [];
  for (const [img, platform] of [
    [amd, { os: 'linux', architecture: 'amd64' }],
    [arm, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
  ] as const) {
    for (const b of [...img.layers, img.config]) await client.pushBlob(ref, b, () => Readable.from([b.bytes]));
    await client.putManifest(ref, img.manifest.digest, img.manifest.bytes, img.manifest.mediaType);
    children.push({
      mediaType: img.manifest.mediaType,
      digest: img.manifest.digest,
      size: img.manifest.size,
      platform,
    });
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: children,
    }),
  );
  await client.putManifest(ref, ref.tag as string, index, 'application/vnd.docker.distribution.manifest.list.v2+json');
  return { index: digestOf(index), children: children.map((c) => c.digest) };
}

describeWith(['docker-registry', 'skopeo', 'umoci'])('image verbs between real registries', () => {
  let a: TestRegistry;
  let b: TestRegistry;
  let client: RegistryClient;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-verbs-'));
  const store = path.join(work, 'store');
  const h = (argv: string[], options?: Parameters<typeof hoist>[1]) => hoistOk([...argv, '--store', store], options);

  beforeAll(async () => {
    [a, b] = await Promise.all([startRegistry('anonymous'), startRegistry('anonymous')]);
    client = new RegistryClient();
  });
  afterAll(async () => {
    await client?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('copy of a multi-platform index: same digests as skopeo reads back, every platform', async () => {
    const { index, children } = await seedIndex(client, `${a.host}/multi/app:1`);
    const r = await h(['copy', `${a.host}/multi/app:1`, `${b.host}/copied/app:1`]);
    expect(r.out).toContain(`digest: ${index}`);
    expect(skopeoDigest(`${b.host}/copied/app:1`)).toBe(index);
    for (const c of children) expect(skopeoDigest(`${b.host}/copied/app@${c}`)).toBe(c);
    const arm = JSON.parse(
      run('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${b.host}/copied/app:1`]),
    );
    expect(arm.Architecture).toBe('arm64');
  });

  test('copy of a single image, and a second copy uploads nothing', async () => {
    const img = makeImage({ files: [{ one: '1' }, { two: '2' }] });
    await seed(client, `${a.host}/single/app:v1`, img);
    await h(['copy', `${a.host}/single/app:v1`, `${b.host}/single/app:v1`]);
    expect(skopeoDigest(`${b.host}/single/app:v1`)).toBe(img.manifest.digest);
    const again = await h(['copy', `${a.host}/single/app:v1`, `${b.host}/single/app:v2`]);
    expect(again.out).toMatch(/0 uploaded, 0 mounted, 3 already there/);
  });

  test('copy --by-digest stores the manifest without a tag', async () => {
    const img = makeImage({ files: [{ bd: 'by digest' }] });
    await seed(client, `${a.host}/bydigest/app:v1`, img);
    const r = await h(['copy', '--by-digest', `${a.host}/bydigest/app:v1`, `${b.host}/bydigest/app`]);
    expect(r.out).toContain(`${b.host}/bydigest/app@${img.manifest.digest}`);
    expect(skopeoDigest(`${b.host}/bydigest/app@${img.manifest.digest}`)).toBe(img.manifest.digest);
    // No tag at all: distribution answers the tag list with 404 when a repository has none.
    expect((await hoist(['inspect', '--remote', `${b.host}/bydigest/app:latest`, '--store', store])).err).toMatch(
      /404 MANIFEST_UNKNOWN/,
    );
  });

  test('tag in the registry mounts instead of uploading', async () => {
    const img = makeImage({ files: [{ t: 'tag me' }] });
    await seed(client, `${a.host}/tags/src:1`, img);
    await h(['tag', `${a.host}/tags/src:1`, `${a.host}/tags/src:stable`]);
    const r = await h(['tag', `${a.host}/tags/src:1`, `${a.host}/tags/other:1`]);
    expect(r.out).toMatch(/0 uploaded, 2 mounted/);
    expect(skopeoDigest(`${a.host}/tags/src:stable`)).toBe(img.manifest.digest);
    expect(skopeoDigest(`${a.host}/tags/other:1`)).toBe(img.manifest.digest);
  });

  test('an image pushed by skopeo is pulled by hoist, and one pushed by hoist is read by skopeo', async () => {
    const layout = path.join(work, 'layout');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:v1`]);
    writeFileSync(path.join(work, 'payload.txt'), 'made by umoci\n');
    run('umoci', ['insert', '--image', `${layout}:v1`, path.join(work, 'payload.txt'), '/payload.txt']);
    run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${a.host}/byskopeo/img:v1`]);
    const theirs = skopeoDigest(`${a.host}/byskopeo/img:v1`);

    const pulled = await h(['pull', `${a.host}/byskopeo/img:v1`]);
    expect(pulled.out).toContain(`digest: ${theirs}`);
    expect((await h(['images'])).out).toMatch(new RegExp(`${a.host}/byskopeo/img\\s+v1\\s+[0-9a-f]{12}`));
    await h(['push', `${a.host}/byskopeo/img:v1`, `${b.host}/byhoist/img:v1`]);
    expect(skopeoDigest(`${b.host}/byhoist/img:v1`)).toBe(theirs);
    const config = JSON.parse(
      run('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${b.host}/byhoist/img:v1`]),
    );
    expect(config.rootfs.diff_ids).toHaveLength(1);
  });

  test('inspect and history, local and remote; rmi; prune', async () => {
    const img = makeImage({ files: [{ x: 'x' }] });
    await seed(client, `${a.host}/inspect/me:1`, img);
    const remote = JSON.parse((await h(['inspect', `${a.host}/inspect/me:1`])).out);
    expect(remote).toMatchObject({ Local: false, Digest: img.manifest.digest, ImageID: img.config.digest });
    // --raw is the registry's bytes and nothing more: their sha256 is the digest
    const raw = (await h(['inspect', '--raw', `${a.host}/inspect/me:1`])).out;
    expect(raw).toBe(img.manifest.bytes.toString());
    expect(digestOf(Buffer.from(raw))).toBe(img.manifest.digest);
    // the common options may come before the command, as docker's do
    const before = await hoistOk(['--store', store, 'inspect', '--raw', `${a.host}/inspect/me:1`]);
    expect(before.out).toBe(raw);
    expect((await hoistOk([`--store=${store}`, '--debug', 'images'])).code).toBe(0);
    await h(['pull', `${a.host}/inspect/me:1`]);
    const local = JSON.parse((await h(['inspect', `${a.host}/inspect/me:1`])).out);
    expect(local).toMatchObject({ Local: true, ImageID: img.config.digest });
    expect((await h(['history', `${a.host}/inspect/me:1`])).out).toMatch(/layer 0/);
    const id = img.config.digest.slice(7, 19);
    expect((await h(['rmi', id])).out).toContain(`Untagged: ${a.host}/inspect/me:1`);
    const pruned = await h(['prune']);
    expect(pruned.out).toMatch(/Deleted \d+ cache records, [1-9]\d* blobs/);
    expect(existsSync(path.join(store, 'blobs', 'sha256', img.layers[0].digest.slice(7)))).toBe(false);
    const missing = await hoist(['inspect', '--store', store, `${a.host}/inspect/none:1`]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/404 MANIFEST_UNKNOWN/);
  });

  test('save reads as docker-archive and oci-archive in skopeo; load brings it back', async () => {
    const img = makeImage({ files: [{ s: 'saved' }] });
    await seed(client, `${a.host}/save/me:1`, img);
    await h(['pull', `${a.host}/save/me:1`]);
    const tar = path.join(work, 'saved.tar');
    await h(['save', '-o', tar, `${a.host}/save/me:1`]);
    const asDocker = JSON.parse(run('skopeo', ['inspect', `docker-archive:${tar}`]));
    expect(asDocker.Layers).toEqual(img.layers.map((l) => l.digest).length ? expect.any(Array) : []);
    expect(JSON.parse(run('skopeo', ['inspect', '--config', `docker-archive:${tar}`])).rootfs.diff_ids).toEqual(
      img.diffIDs,
    );
    expect(JSON.parse(run('skopeo', ['inspect', '--raw', `oci-archive:${tar}`])).config.digest).toBe(img.config.digest);
    const other = path.join(work, 'store2');
    const loaded = await hoistOk(['load', '-i', tar, '--store', other]);
    expect(loaded.out).toContain(`Loaded image: ${a.host}/save/me:1`);
    expect(JSON.parse((await hoistOk(['inspect', `${a.host}/save/me:1`, '--store', other])).out)).toMatchObject({
      Local: true,
      Digest: img.manifest.digest,
    });
  });

  test('a docker-archive written by skopeo (legacy layout) loads', async () => {
    const img = makeImage({ files: [{ legacy: 'l' }] });
    await seed(client, `${a.host}/legacy/me:1`, img);
    const tar = path.join(work, 'legacy.tar');
    run('skopeo', [
      'copy',
      '--src-tls-verify=false',
      `docker://${a.host}/legacy/me:1`,
      `docker-archive:${tar}:legacy/me:1`,
    ]);
    const other = path.join(work, 'store3');
    expect((await hoistOk(['load', '-i', tar, '--store', other])).out).toContain('Loaded image: legacy/me:1');
    const info = JSON.parse((await hoistOk(['inspect', 'legacy/me:1', '--store', other])).out);
    expect(info.Config.rootfs.diff_ids).toEqual(img.diffIDs);
  });

  test('--registry-mirror serves docker.io pulls', async () => {
    const img = makeImage({ files: [{ m: 'from the mirror' }] });
    await seed(client, `${b.host}/library/mirrored:1`, img);
    const r = await h(['pull', '--registry-mirror', `http://${b.host}`, 'mirrored:1']);
    expect(r.out).toContain(`digest: ${img.manifest.digest}`);
    expect((await h(['images'])).out).toMatch(/^mirrored\s+1\s/m);
  });

  test('bad input: clear errors, exit codes', async () => {
    const upper = await hoist(['pull', `${a.host}/Upper/case`, '--store', store]);
    expect(upper).toMatchObject({ code: 2 });
    expect(upper.err).toMatch(/repository name must be lowercase/);
    const notTar = path.join(work, 'not.tar');
    writeFileSync(notTar, 'hello, not a tar');
    const r = await hoist(['import', notTar, 'x/y:1', '--store', store]);
    expect(r).toMatchObject({ code: 1 });
    expect(r.err).toMatch(/not a tar archive/);
    expect((await hoist(['load', '-i', path.join(work, 'nope.tar'), '--store', store])).err).toMatch(
      /ENOENT|no such file/,
    );
  });
});

describeWith(['docker-registry'])('login into an htpasswd registry', () => {
  let reg: TestRegistry;
  let src: TestRegistry;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-login-'));
  const saved = process.env.DOCKER_CONFIG;
  beforeAll(async () => {
    [reg, src] = await Promise.all([startRegistry('htpasswd'), startRegistry('anonymous')]);
    process.env.DOCKER_CONFIG = path.join(work, 'docker-config');
  });
  afterAll(async () => {
    process.env.DOCKER_CONFIG = saved;
    await Promise.all([reg?.stop(), src?.stop()]);
  });

  test('login --password-stdin, then copy into it; the password appears in no output', async () => {
    const client = new RegistryClient();
    await seed(client, `${src.host}/pub/app:1`, makeImage());
    await client.close();
    const password = reg.users.alice;
    const outputs: string[] = [];
    const denied = await hoist(['copy', `${src.host}/pub/app:1`, `${reg.host}/priv/app:1`]);
    outputs.push(denied.out, denied.err);
    expect(denied.code).toBe(1);
    expect(denied.err).toMatch(/hoist login 127\.0\.0\.1/);
    const bad = await hoist(['login', reg.host, '-u', 'alice', '--password-stdin'], { stdin: 'wrong-password\n' });
    outputs.push(bad.out, bad.err);
    expect(bad.code).toBe(1);
    const login = await hoistOk(['login', reg.host, '-u', 'alice', '--password-stdin'], { stdin: `${password}\n` });
    outputs.push(login.out, login.err);
    expect(login.out).toMatch(/Login Succeeded/);
    const config = JSON.parse(readFileSync(path.join(work, 'docker-config', 'config.json'), 'utf8'));
    expect(Buffer.from(config.auths[reg.host].auth, 'base64').toString()).toBe(`alice:${password}`);
    const copied = await hoistOk(['copy', `${src.host}/pub/app:1`, `${reg.host}/priv/app:1`, '--debug']);
    outputs.push(copied.out, copied.err);
    expect(copied.err).toMatch(/debug: PUT/);
    const out = await hoistOk(['logout', reg.host]);
    outputs.push(out.out, out.err);
    expect(
      JSON.parse(readFileSync(path.join(work, 'docker-config', 'config.json'), 'utf8')).auths[reg.host],
    ).toBeUndefined();
    for (const o of outputs) {
      expect(o).not.toContain(password);
      expect(o).not.toContain(Buffer.from(`alice:${password}`).toString('base64'));
    }
  });
});

describeWith(['docker-registry', 'dockerd', 'busybox'])('hoist save loads in docker and runs', () => {
  let d: Dockerd;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-docker-'));
  beforeAll(async () => {
    d = await startDockerd();
  }, 60_000);
  afterAll(async () => d?.stop());

  test('import a busybox root filesystem, save it, docker load and docker run it', async () => {
    const rootfs = path.join(work, 'rootfs');
    mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    writeFileSync(path.join(rootfs, 'bin', 'busybox'), readFileSync(run('sh', ['-c', 'command -v busybox']).trim()));
    chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
    symlinkSync('busybox', path.join(rootfs, 'bin', 'sh'));
    symlinkSync('busybox', path.join(rootfs, 'bin', 'echo'));
    run('tar', ['-C', rootfs, '-czf', path.join(work, 'rootfs.tar.gz'), '.']);
    const store = path.join(work, 'store');
    await hoistOk(['import', path.join(work, 'rootfs.tar.gz'), 'hoist-test/busybox:1', '--store', store]);
    writeFileSync(path.join(work, 'data.txt'), 'second image\n');
    run('tar', ['-C', work, '-cf', path.join(work, 'data.tar'), 'data.txt']);
    await hoistOk(['import', path.join(work, 'data.tar'), 'ghcr.io/hoist-test/data:2', '--store', store]);
    const tar = path.join(work, 'bb.tar');
    await hoistOk(['save', '-o', tar, 'hoist-test/busybox:1', 'ghcr.io/hoist-test/data:2', '--store', store]);
    const loaded = d.docker(['load', '-i', tar]);
    expect(loaded.stderr).toBe('');
    expect(loaded.stdout).toContain('Loaded image: hoist-test/busybox:1');
    expect(loaded.stdout).toContain('Loaded image: ghcr.io/hoist-test/data:2');
    const ran = d.docker([
      'run',
      '--rm',
      '--network',
      'none',
      'hoist-test/busybox:1',
      'sh',
      '-c',
      'echo hello from $(echo busybox)',
    ]);
    expect(ran.stderr).toBe('');
    expect(ran.stdout).toBe('hello from busybox\n');
  }, 60_000);
});
