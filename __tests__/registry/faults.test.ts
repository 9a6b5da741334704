// Transient registry failures are retried and the push completes; corrupt data is caught. The faults come from a
// proxy in front of Debian's docker-registry (the real part), as a real registry will not fail on demand.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { DigestMismatchError } from '../../src/image/digest.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { layerTar, makeImage } from '../helpers/images.js';
import { hoist } from '../helpers/hoist.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StaticCredentials } from '../../src/registry/credentials.js';

describeWith(['docker-registry'])('retries through a fault-injecting proxy', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
    proxy = await startFaultProxy(reg.host);
    client = new RegistryClient({ retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 100 } });
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await reg?.stop();
  });

  async function push(repo: string, image = makeImage({ files: [{ [repo]: repo.repeat(1000) }] })): Promise<string> {
    const ref = parseReference(`${proxy.host}/${repo}:1`);
    for (const b of [...image.layers, image.config]) await client.pushBlob(ref, b, () => Readable.from([b.bytes]));
    return client.putManifest(ref, '1', image.manifest.bytes, image.manifest.mediaType);
  }

  test('a 503 on the upload start and on the manifest PUT is retried', async () => {
    proxy.rules.push(
      { match: (r) => r.method === 'POST', fault: '503', times: 1 },
      { match: (r) => r.method === 'PUT' && r.url!.includes('/manifests/'), fault: '503', times: 2 },
    );
    const image = makeImage({ files: [{ a: 'five-oh-three' }] });
    expect(await push('faults/a', image)).toBe(image.manifest.digest);
    expect(proxy.log.filter((l) => l.fault === '503')).toHaveLength(3);
    expect((await client.getManifest(parseReference(`${reg.host}/faults/a:1`))).digest).toBe(image.manifest.digest);
  });

  test('a 429 waits for Retry-After and then succeeds', async () => {
    proxy.rules.push({ match: (r) => r.method === 'HEAD' && r.url!.includes('/blobs/'), fault: '429', times: 1 });
    const started = Date.now();
    await push('faults/b');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(proxy.log.some((l) => l.fault === '429')).toBe(true);
  });

  test('a connection dropped in the middle of an upload starts the upload again', async () => {
    proxy.rules.push({
      match: (r) => r.method === 'PUT' && r.url!.includes('/blobs/uploads/'),
      fault: 'reset-mid-body',
      times: 1,
    });
    const big = makeImage({ files: [{ big: 'x'.repeat(3 * 1024 * 1024) + Math.random() }] });
    expect(await push('faults/c', big)).toBe(big.manifest.digest);
    expect(proxy.log.filter((l) => l.method === 'POST' && l.path.includes('/faults/c/')).length).toBeGreaterThanOrEqual(
      2,
    );
    expect(await client.blobExists(parseReference(`${reg.host}/faults/c`), big.layers[0].digest)).toBe(
      big.layers[0].size,
    );
  });

  test('a blob corrupted on the way is detected, not accepted', async () => {
    const image = makeImage({ files: [{ d: 'corrupt me' }] });
    await push('faults/d', image);
    proxy.rules.push({
      match: (r) => r.method === 'GET' && r.url!.includes(image.layers[0].digest),
      fault: 'corrupt-body',
      times: 10,
    });
    const ref = parseReference(`${proxy.host}/faults/d`);
    await expect(client.fetchBlob(ref, image.layers[0])).rejects.toThrow(DigestMismatchError);
    await expect(client.fetchBlob(ref, image.layers[0])).rejects.toThrow(
      new RegExp(`expected ${image.layers[0].digest}`),
    );
    proxy.rules.length = 0;
  });

  test('a registry that refuses one large PUT gets the blob in chunks', async () => {
    proxy.rules.push({
      match: (r) => r.method === 'PUT' && r.url!.includes('/blobs/uploads/') && Number(r.headers['content-length']) > 0,
      fault: '413',
      times: 1,
    });
    const image = makeImage({ files: [{ g: 'chunk me '.repeat(5000) }] });
    expect(await push('faults/g', image)).toBe(image.manifest.digest);
    expect(proxy.log.some((l) => l.method === 'PATCH' && l.path.includes('/faults/g/'))).toBe(true);
    expect(await client.blobExists(parseReference(`${reg.host}/faults/g`), image.layers[0].digest)).toBe(
      image.layers[0].size,
    );
  });

  test('a manifest refused for a blob the registry did not see (its own race) is put again once the blobs are there again', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-faults-'));
    try {
      const ref = `${proxy.host}/faults/h:1`;
      const tar = path.join(work, 'rootfs.tar');
      writeFileSync(tar, layerTar({ h: 'pushed twice' }));
      const store = path.join(work, 'store');
      expect((await hoist(['import', tar, ref, '--store', store])).code).toBe(0);
      proxy.log.length = 0;
      proxy.rules.push({
        match: (r) => r.method === 'PUT' && r.url!.includes('/faults/h/manifests/'),
        fault: 'blob-unknown',
        times: 1,
      });
      const pushed = await hoist(['push', ref, '--store', store], { readBack: (r) => r.replace(proxy.host, reg.host) });
      expect(pushed.err).toContain(
        `${ref.replace(':1', '')}: the registry did not find a blob the manifest names; pushing the blobs again`,
      );
      expect(pushed.code).toBe(0);
      const puts = proxy.log.filter((l) => l.method === 'PUT' && l.path.includes('/manifests/'));
      expect(puts.map((l) => l.fault)).toEqual(['blob-unknown', undefined]);
      // between the two, each blob asked for again
      const between = proxy.log.slice(proxy.log.indexOf(puts[0]), proxy.log.indexOf(puts[1]));
      expect(between.filter((l) => l.method === 'HEAD' && l.path.includes('/blobs/'))).toHaveLength(2);
      // refused every time: the registry's words, with the blob it named
      proxy.rules.push({
        match: (r) => r.method === 'PUT' && r.url!.includes('/faults/h/manifests/'),
        fault: 'blob-unknown',
        times: 3,
      });
      const refused = await hoist(['push', ref, '--store', store], { readBack: false });
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(
        `400 DIGEST_INVALID: provided digest did not match uploaded content; MANIFEST_BLOB_UNKNOWN: blob unknown to registry (sha256:${'0'.repeat(64)})`,
      );
    } finally {
      proxy.rules.length = 0;
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('retries are bounded: a registry that keeps failing gives a clear error', async () => {
    proxy.rules.push({ match: (r) => r.url!.includes('/faults/e/'), fault: '503', times: 100 });
    const err = await client.getManifest(parseReference(`${proxy.host}/faults/e:1`)).catch((e: Error) => e);
    expect(String(err)).toMatch(/503 UNAVAILABLE: injected 503/);
    expect(proxy.log.filter((l) => l.path.includes('/faults/e/'))).toHaveLength(4);
    proxy.rules.length = 0;
  });

  test('a manifest fetched by digest must match it', async () => {
    const image = makeImage({ files: [{ f: 'f' }] });
    await push('faults/f', image);
    proxy.rules.push({
      match: (r) => r.method === 'GET' && r.url!.includes(`/manifests/${image.manifest.digest}`),
      fault: 'corrupt-body',
      times: 1,
    });
    const err = await client
      .getManifest(parseReference(`${proxy.host}/faults/f@${image.manifest.digest}`))
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(String(err)).toMatch(new RegExp(`expected ${image.manifest.digest}`));
  });
});

describeWith(['docker-registry'])('redirected blob downloads', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let cdn: Server;
  const seen: { path: string; authorization?: string }[] = [];
  beforeAll(async () => {
    reg = await startRegistry('htpasswd');
    // A "CDN" on another host name (localhost, not 127.0.0.1) that serves blobs it fetches from the registry.
    cdn = createServer(async (req, res) => {
      seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
      const upstream = await fetch(`http://${reg.host}${req.url}`, {
        headers: { authorization: `Basic ${Buffer.from('alice:wonder-land-42').toString('base64')}` },
      });
      res.writeHead(upstream.status);
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
    const port = (cdn.address() as AddressInfo).port;
    proxy = await startFaultProxy(reg.host, (p) => `http://localhost:${port}${p}`);
  });
  afterAll(async () => {
    await proxy?.stop();
    await new Promise((r) => cdn?.close(r));
    await reg?.stop();
  });

  test('a 307 to another host is followed without the credentials', async () => {
    const client = new RegistryClient({
      credentials: new StaticCredentials(new Map([[proxy.host, { username: 'alice', password: 'wonder-land-42' }]])),
    });
    try {
      const image = makeImage({ files: [{ r: 'redirect me' }] });
      const ref = parseReference(`${proxy.host}/cdn/app:1`);
      for (const b of [...image.layers, image.config]) await client.pushBlob(ref, b, () => Readable.from([b.bytes]));
      proxy.rules.push({
        match: (r) => r.method === 'GET' && r.url!.includes('/blobs/sha256:'),
        fault: 'redirect',
        times: 1,
      });
      expect(await client.fetchBlob(ref, image.layers[0])).toEqual(image.layers[0].bytes);
      expect(seen).toHaveLength(1);
      expect(seen[0].path).toContain(image.layers[0].digest);
      expect(seen[0].authorization).toBeUndefined();
      // The request to the registry itself did carry them.
      expect(proxy.log.find((l) => l.fault === 'redirect')).toBeDefined();
    } finally {
      await client.close();
    }
  });
});
