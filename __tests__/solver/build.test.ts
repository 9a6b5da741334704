// hoist build end to end: reproducibility, outputs (registry read back by skopeo, OCI archive and layout, local
// directory), the metadata and iid files, and errors that point at the Dockerfile line.
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { compressor } from '../../src/layer/compression.js';
import { digestOf } from '../../src/image/digest.js';
import { makeContext as context } from '../helpers/context.js';
import { hoist, hoistOk, hoistWithEnv } from '../helpers/hoist.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

const app = {
  Dockerfile: 'FROM scratch\nCOPY app/ /app/\nWORKDIR /app\nENV MODE=prod\nCMD ["/app/run"]\n',
  'app/run': '#!/bin/sh\necho run\n',
  'app/data/x.json': '{}',
};

describe('hoist build', () => {
  test('the same context twice gives the same image digest (two separate stores)', async () => {
    const dir = context(app);
    const a = await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-s1-')),
      dir,
    ]);
    const b = await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-s2-')),
      dir,
    ]);
    expect(a.out).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(b.out).toBe(a.out);
  });

  test("a stage no image holds keeps its layers in stored deflate blocks; the image's, every stage under a mode=max cache export, and a kept layer a later build publishes are compressed", async () => {
    // text that deflate shrinks
    const words = Array.from(
      { length: 40000 },
      (_, i) => ['build', 'layer', 'stage', 'cache', 'image', 'blob'][(i * 7919) % 6] + ((i * 104729) % 997),
    );
    const dir = context({
      Dockerfile:
        'FROM scratch AS build\nCOPY data.txt /built.txt\nFROM scratch\nCOPY --from=build /built.txt /copied.txt\nCOPY other.txt /other.txt\n',
      'data.txt': words.join(' '),
      'other.txt': words.reverse().join(' '),
    });
    /** the deflate level of a blob (0 or 6: hoist's gzip of its tar at that level gives its bytes), by the tar's first name */
    const levelOf = async (blob: Buffer) => {
      const tar = gunzipSync(blob);
      const again = async (level?: number) =>
        digestOf(Buffer.concat(await Readable.from([tar]).pipe(compressor('gzip', level)).toArray()));
      return [
        tar.subarray(0, 100).toString().replace(/\0.*$/s, ''),
        digestOf(blob) === (await again(0)) ? 0 : digestOf(blob) === (await again()) ? 6 : -1,
      ] as const;
    };
    const recorded = async (store: string) => {
      const out: Record<string, string> = {};
      for (const f of readdirSync(path.join(store, 'records'))) {
        const layer = JSON.parse(readFileSync(path.join(store, 'records', f), 'utf8')).layer as
          | { digest: string; stored?: boolean }
          | undefined;
        if (!layer) continue;
        const [name, level] = await levelOf(readFileSync(path.join(store, 'blobs', 'sha256', layer.digest.slice(7))));
        out[name] = `${level}${layer.stored ? ' stored' : ''}`;
      }
      return out;
    };
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-level-'));
    await hoistOk(['build', '--progress', 'quiet', '--store', store, dir]);
    expect(await recorded(store)).toEqual({ 'built.txt': '0 stored', 'copied.txt': '6', 'other.txt': '6' });
    // a later build on the same store whose image is the builder stage: taken from the cache, compressed for the
    // image, and its record names the compressed blob from then on
    const out = mkdtempSync(path.join(tmpdir(), 'hoist-level-out-'));
    const later = await hoistOk([
      'build',
      '--progress',
      'plain',
      '--store',
      store,
      '--target',
      'build',
      '-o',
      `type=oci,dest=${out}/image.tar`,
      dir,
    ]);
    expect(later.err).toMatch(/CACHED/);
    run('tar', ['-xf', `${out}/image.tar`, '-C', out]);
    const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8'));
    const manifest = JSON.parse(
      readFileSync(path.join(out, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'),
    );
    expect(manifest.layers).toHaveLength(1);
    expect(await levelOf(readFileSync(path.join(out, 'blobs', 'sha256', manifest.layers[0].digest.slice(7))))).toEqual([
      'built.txt',
      6,
    ]);
    expect(await recorded(store)).toEqual({ 'built.txt': '6', 'copied.txt': '6', 'other.txt': '6' });
    // a cache export of every stage compresses them all, and what it exports carries no `stored`
    const max = mkdtempSync(path.join(tmpdir(), 'hoist-level-max-'));
    await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      max,
      '--cache-to',
      `type=local,dest=${path.join(max, 'cache')},mode=max`,
      dir,
    ]);
    expect(await recorded(max)).toEqual({ 'built.txt': '6', 'copied.txt': '6', 'other.txt': '6' });
    const exported = readdirSync(path.join(max, 'cache'), { recursive: true, withFileTypes: true }).filter((e) =>
      e.isFile(),
    );
    expect(exported.length).toBeGreaterThan(3);
    expect(exported.filter((e) => readFileSync(path.join(e.parentPath, e.name)).includes('"stored"'))).toEqual([]);
  });

  test('SOURCE_DATE_EPOCH sets created and clamps file times', async () => {
    const dir = context(app);
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-s3-'));
    process.env.SOURCE_DATE_EPOCH = '1000';
    try {
      await hoistOk(['build', '--progress', 'quiet', '--store', store, '-t', 'sde:1', dir]);
    } finally {
      delete process.env.SOURCE_DATE_EPOCH;
    }
    const info = JSON.parse((await hoistOk(['inspect', 'sde:1', '--store', store])).out);
    expect(info.Config.created).toBe('1970-01-01T00:16:40.000Z');
    expect(info.Config.history.every((h: { created: string }) => h.created === '1970-01-01T00:16:40.000Z')).toBe(true);
    const out = mkdtempSync(path.join(tmpdir(), 'hoist-sde-'));
    process.env.SOURCE_DATE_EPOCH = '1000';
    try {
      await hoistOk(['build', '--progress', 'quiet', '--store', store, '-o', `type=local,dest=${out}`, dir]);
    } finally {
      delete process.env.SOURCE_DATE_EPOCH;
    }
    expect(Number(run('stat', ['-c', '%Y', path.join(out, 'app/run')]).trim())).toBe(1000);
  });

  test('SOURCE_DATE_EPOCH as a build arg does what the variable does, and wins over it; a bad value is refused', async () => {
    // BuildKit docs/build-repro.md: the SOURCE_DATE_EPOCH build arg (buildx passes the variable as that arg).
    const dir = context(app);
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-s4-'));
    process.env.SOURCE_DATE_EPOCH = '5';
    try {
      await hoistOk([
        'build',
        '--progress',
        'quiet',
        '--store',
        store,
        '--build-arg',
        'SOURCE_DATE_EPOCH=2000',
        '-t',
        'sde:2',
        dir,
      ]);
    } finally {
      delete process.env.SOURCE_DATE_EPOCH;
    }
    const info = JSON.parse((await hoistOk(['inspect', 'sde:2', '--store', store])).out);
    expect(info.Config.created).toBe('1970-01-01T00:33:20.000Z');
    const bad = await hoist([
      'build',
      '--progress',
      'quiet',
      '--store',
      store,
      '--build-arg',
      'SOURCE_DATE_EPOCH=yesterday',
      dir,
    ]);
    expect(bad).toMatchObject({
      code: 2,
      err: expect.stringContaining('invalid SOURCE_DATE_EPOCH build arg "yesterday"'),
    });
  });

  test('outputs: OCI archive and layout read by skopeo, a local directory, metadata and iid files', async () => {
    const dir = context(app);
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-out-'));
    const store = path.join(work, 'store');
    const r = await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      store,
      '-t',
      'example/app:1',
      '-o',
      `type=oci,dest=${work}/app.oci.tar`,
      '-o',
      `type=oci,dest=${work}/layout,tar=false`,
      '-o',
      `type=local,dest=${work}/rootfs`,
      '--metadata-file',
      `${work}/meta.json`,
      '--iidfile',
      `${work}/iid`,
      dir,
    ]);
    const digest = r.out.trim();
    const meta = JSON.parse(readFileSync(`${work}/meta.json`, 'utf8'));
    expect(meta['containerimage.digest']).toBe(digest);
    expect(meta['image.name']).toBe('docker.io/example/app:1');
    expect(meta['containerimage.config.digest']).toBe(readFileSync(`${work}/iid`, 'utf8'));
    expect(meta['hoist.steps'].map((s: { instruction: string; line: number }) => [s.line, s.instruction])).toEqual([
      [2, 'COPY app/ /app/'],
      [3, 'WORKDIR /app'],
    ]);
    expect(readFileSync(`${work}/rootfs/app/run`, 'utf8')).toBe(app['app/run']);
    expect(existsSync(`${work}/rootfs/app/data/x.json`)).toBe(true);
    expect((await hoistOk(['images', '--store', store])).out).toMatch(/example\/app\s+1\s/);
    if (existsSync('/usr/bin/skopeo')) {
      const raw = run('skopeo', ['inspect', '--raw', `oci-archive:${work}/app.oci.tar`]);
      expect(JSON.parse(raw).config.digest).toBe(meta['containerimage.config.digest']);
      const cfg = JSON.parse(run('skopeo', ['inspect', '--config', `oci:${work}/layout`]));
      expect(cfg.config.Cmd).toEqual(['/app/run']);
    }
  });

  test('ADD unpacks a zstd tar (which the BuildKit of Docker 20.10 does not); expectations written here', async () => {
    const dir = context({ Dockerfile: 'FROM scratch\nADD z.tar.zst /zst/\n' });
    const src = mkdtempSync(path.join(tmpdir(), 'hoist-zsrc-'));
    writeFileSync(path.join(src, 'z.txt'), 'zstd');
    run('tar', [
      '--zstd',
      '--numeric-owner',
      '--owner=4',
      '--group=5',
      '-C',
      src,
      '-cf',
      path.join(dir, 'z.tar.zst'),
      'z.txt',
    ]);
    const out = mkdtempSync(path.join(tmpdir(), 'hoist-zout-'));
    const tar = path.join(out, 'img.tar');
    await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      path.join(out, 'store'),
      '-o',
      `type=docker,dest=${tar}`,
      dir,
    ]);
    const listing = run('sh', [
      '-c',
      `mkdir ${out}/x && tar -xf ${tar} -C ${out}/x && for l in $(cd ${out}/x && python3 -c "import json;print(' '.join(json.load(open('manifest.json'))[0]['Layers']))"); do tar -tvzf ${out}/x/$l --numeric-owner; done`,
    ]);
    expect(listing).toMatch(/-rw-r--r-- 4\/5 +4 .* zst\/z\.txt/);
  });

  test('ADD --checksum verifies a download; a mismatch fails at its line, a 404 names the URL', async () => {
    const body = Buffer.from('payload\n');
    const server = createServer((req, res) =>
      req.url === '/f.bin' ? res.writeHead(200).end(body) : res.writeHead(404).end(),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const good = context({ Dockerfile: `FROM scratch\nADD --checksum=${digestOf(body)} ${url}/f.bin /f.bin\n` });
      await hoistOk(['build', '--progress', 'quiet', '--store', mkdtempSync(path.join(tmpdir(), 'hoist-ck-')), good]);
      const bad = context({ Dockerfile: `FROM scratch\nADD --checksum=${digestOf('other')} ${url}/f.bin /f.bin\n` });
      const r = await hoist([
        'build',
        '--progress',
        'quiet',
        '--store',
        mkdtempSync(path.join(tmpdir(), 'hoist-ck-')),
        bad,
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/Dockerfile:2[\s\S]*content has digest/);
      const missing = context({ Dockerfile: `FROM scratch\nADD ${url}/nope /x\n` });
      expect((await hoist(['build', '--store', mkdtempSync(path.join(tmpdir(), 'hoist-ck-')), missing])).err).toMatch(
        /failed to download http:\/\/127\.0\.0\.1:\d+\/nope: 404/,
      );
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('--platform and FROM --platform set the image platform; TARGETARCH follows', async () => {
    const dir = context({ Dockerfile: 'FROM scratch\nARG TARGETARCH\nLABEL arch=$TARGETARCH\nCOPY a /\n', a: 'a' });
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-pl-'));
    await hoistOk(['build', '--progress', 'quiet', '--store', store, '--platform', 'linux/arm64', '-t', 'pl:1', dir]);
    const one = JSON.parse((await hoistOk(['inspect', '--platform', 'linux/arm64', 'pl:1', '--store', store])).out);
    expect(one.Config).toMatchObject({ architecture: 'arm64', os: 'linux', config: { Labels: { arch: 'arm64' } } });
    const fromFlag = context({ Dockerfile: 'FROM --platform=linux/arm/v7 scratch\nCOPY a /\n', a: 'a' });
    await hoistOk(['build', '--progress', 'quiet', '--store', store, '-t', 'pl:2', fromFlag]);
    const two = JSON.parse((await hoistOk(['inspect', '--platform', 'linux/arm/v7', 'pl:2', '--store', store])).out);
    expect(two.Config).toMatchObject({ architecture: 'arm', variant: 'v7' });
  });

  test('progress: numbered plain lines for CI, a live view on a terminal', async () => {
    const dir = context(app);
    const plain = await hoistOk([
      'build',
      '--progress',
      'plain',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-pp-')),
      dir,
    ]);
    // Numbered as BuildKit numbers its vertices: FROM scratch, ENV and CMD have none, and one stage has no name.
    expect(plain.err).toMatch(
      /^#1 \[1\/2\] COPY app\/ \/app\/\n#1 DONE \d+\.\ds\n#2 \[2\/2\] WORKDIR \/app\n#2 DONE \d+\.\ds\n/,
    );
    expect(plain.err).not.toMatch(/FROM|ENV|CMD/);
    const tty = await hoistOk([
      'build',
      '--progress',
      'tty',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-pt-')),
      dir,
    ]);
    expect(tty.err).toMatch(/ => \[1\/2\] COPY app\/ \/app\/ +\d+\.\ds\n/);
    expect(tty.err).toMatch(/\[\+\] Building \d+\.\ds \(2\/2\) FINISHED\ncache: .*\n$/);
  });

  test('errors point at the Dockerfile line and say what to do', async () => {
    const missing = context({ Dockerfile: 'FROM scratch\n\nCOPY nope.txt /\n' });
    const r = await hoist([
      'build',
      '--progress',
      'quiet',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-e-')),
      missing,
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Dockerfile:3/);
    expect(r.err).toMatch(/nope\.txt: not found in the build context/);
    const outside = context({ Dockerfile: 'FROM scratch\nCOPY ../etc/passwd /\n' });
    expect((await hoist(['build', '--store', mkdtempSync(path.join(tmpdir(), 'hoist-e-')), outside])).err).toMatch(
      /outside the build context/,
    );
    const runStep = context({ Dockerfile: 'FROM scratch\nRUN echo hi\n' });
    const runStore = mkdtempSync(path.join(tmpdir(), 'hoist-e-'));
    const rr = await hoist(['build', '--store', runStore, runStep]);
    expect(rr.code).toBe(1);
    // scratch has no /bin/sh: the step fails, named by its line (or, without root or runc, says what is missing).
    expect(rr.err).toMatch(/Dockerfile:2[\s\S]*(did not complete successfully: exit code|RUN needs)/);
    // (other test files run builds at the same time: only this build's store is looked at)
    expect(run('sh', ['-c', `grep -c ' ${runStore}' /proc/mounts || true`]).trim()).toBe('0');
    const ignored = context({
      Dockerfile: 'FROM scratch\nCOPY secret.txt /\n',
      '.dockerignore': 'secret.txt\n',
      'secret.txt': 's',
    });
    expect((await hoist(['build', '--store', mkdtempSync(path.join(tmpdir(), 'hoist-e-')), ignored])).err).toMatch(
      /excluded by \.dockerignore/,
    );
    const noDaemon = await hoistWithEnv({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' }, [
      'build',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-e-')),
      '--load',
      '-t',
      'x:1',
      context(app),
    ]);
    expect(noDaemon.code).toBe(1);
    expect(noDaemon.err).toMatch(/cannot reach the Docker daemon at unix:\/\/\/nonexistent\/docker\.sock/);
    // Several sources onto a destination without a slash: BuildKit copies one after the other (the last file stays,
    // differential.test.ts); a directory's contents cannot then go into the file the one before made.
    const onto = context({ Dockerfile: 'FROM scratch\nCOPY a.txt sub /dest\n', 'a.txt': 'a', 'sub/b.txt': 'b' });
    expect((await hoist(['build', '--store', mkdtempSync(path.join(tmpdir(), 'hoist-e-')), onto])).err).toMatch(
      /Dockerfile:2: cannot copy to non-directory: \/dest/,
    );
  });
});

describeWith(['docker-registry', 'skopeo'])('hoist build --push', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
  });
  afterAll(async () => reg?.stop());

  test('every -t name is pushed and skopeo reads back the digest', async () => {
    const dir = context(app);
    const r = await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-p-')),
      '-t',
      `${reg.host}/app/one:1`,
      '-t',
      `${reg.host}/app/one:latest`,
      '--push',
      dir,
    ]);
    const digest = r.out.trim();
    for (const tag of ['1', 'latest']) {
      const raw = run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/one:${tag}`]);
      expect(digestOf(raw)).toBe(digest);
    }
    const cfg = JSON.parse(
      run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${reg.host}/app/one:1`]),
    );
    expect(cfg.config.Env).toContain('MODE=prod');
  });

  test('on a registry base, COPY --link and metadata fetch none of the base layers; the push mounts them', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-lazy-'));
    const baseStore = path.join(work, 'base-store');
    const rootfs = context({ 'etc/os-release': 'NAME=base\n', 'bin/tool': 'tool' });
    run('tar', ['-C', rootfs, '-cf', path.join(work, 'base.tar'), '.']);
    const base = `${reg.host}/lazy/base:1`;
    await hoistOk(['import', path.join(work, 'base.tar'), base, '--store', baseStore]);
    await hoistOk(['push', base, '--store', baseStore]);
    const baseLayer = JSON.parse((await hoistOk(['inspect', '--remote', base, '--store', baseStore])).out).Manifest
      .layers[0].digest as string;

    const dir = context({
      Dockerfile: `FROM ${base}\nENV A=1\nCOPY --link app.txt /srv/\nLABEL lazy=yes\n`,
      'app.txt': 'app',
    });
    const store = path.join(work, 'build-store');
    await hoistOk(['build', '--progress', 'quiet', '--store', store, '-t', `${reg.host}/lazy/app:1`, '--push', dir]);
    expect(existsSync(path.join(store, 'blobs', 'sha256', baseLayer.slice(7)))).toBe(false);
    const raw = JSON.parse(
      run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lazy/app:1`]),
    );
    expect(raw.layers[0].digest).toBe(baseLayer);
    expect(raw.layers).toHaveLength(2);
  });

  test("a developer's rebuild within a minute takes the base as it resolved it; in CI every build resolves it", async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-reuse-'));
    const own = await startRegistry('anonymous');
    let stopped = false;
    try {
      const rootfs = context({ 'etc/os-release': 'NAME=reused\n' });
      run('tar', ['-C', rootfs, '-cf', path.join(work, 'base.tar'), '.']);
      const base = `${own.host}/reuse/base:1`;
      await hoistOk(['import', path.join(work, 'base.tar'), base, '--store', path.join(work, 'base-store')]);
      await hoistOk(['push', base, '--store', path.join(work, 'base-store')]);
      const dir = context({ Dockerfile: `FROM ${base}\nCOPY app.txt /srv/\n`, 'app.txt': 'app' });
      const store = path.join(work, 'store');
      const local = { CI: '', GITHUB_ACTIONS: '', GITLAB_CI: '', HOIST_ALWAYS_RESOLVE: '' };
      const first = await hoistWithEnv(local, ['build', '--progress', 'quiet', '--store', store, dir]);
      expect(first.code).toBe(0);
      await own.stop();
      stopped = true;
      // The registry gone: the rebuild does not ask it, and builds the same image.
      const again = await hoistWithEnv(local, ['build', '--progress', 'quiet', '--store', store, dir]);
      expect(`${again.code} ${again.err}`).toBe('0 ');
      expect(again.out).toBe(first.out);
      // In CI (or with HOIST_ALWAYS_RESOLVE) the base is resolved: the registry is asked, and is not there.
      for (const ci of [{ CI: 'true' }, { HOIST_ALWAYS_RESOLVE: '1' }]) {
        const resolved = await hoistWithEnv({ ...local, ...ci }, [
          'build',
          '--progress',
          'quiet',
          '--store',
          store,
          dir,
        ]);
        expect(resolved.code).toBe(1);
        expect(resolved.err).toMatch(/failed to resolve source metadata/);
      }
    } finally {
      if (!stopped) await own.stop();
    }
  }, 90_000);

  test('--push without -t is a clear error', async () => {
    const r = await hoist(['build', '--store', mkdtempSync(path.join(tmpdir(), 'hoist-p-')), '--push', context(app)]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/pass -t NAME/);
  });
});
