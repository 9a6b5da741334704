// The registry client against Debian's docker-registry (distribution 2.8) started on 127.0.0.1 in its three auth
// modes, with the test token server for token auth.
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { digestOf, DigestMismatchError } from '../../src/image/digest.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { StaticCredentials } from '../../src/registry/credentials.js';
import { RegistryError } from '../../src/registry/errors.js';
import { makeImage, type TestImage } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

const fast = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };

async function pushImage(client: RegistryClient, refText: string, image: TestImage): Promise<string> {
  const ref = parseReference(refText);
  for (const b of [...image.layers, image.config]) {
    await client.pushBlob(ref, b, () => Readable.from([b.bytes]));
  }
  return client.putManifest(ref, ref.tag ?? 'latest', image.manifest.bytes, image.manifest.mediaType);
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describeWith(['docker-registry'])('registry client, anonymous registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
    client = new RegistryClient({ retry: fast });
  });
  afterAll(async () => {
    await client.close();
    await reg?.stop();
  });

  test('push then pull an image by tag and by digest', async () => {
    const image = makeImage();
    const digest = await pushImage(client, `${reg.host}/test/a:v1`, image);
    expect(digest).toBe(image.manifest.digest);
    const ref = parseReference(`${reg.host}/test/a:v1`);
    expect(await client.resolve(ref)).toEqual({
      digest,
      mediaType: image.manifest.mediaType,
      size: image.manifest.size,
    });
    const byTag = await client.getManifest(ref);
    expect(byTag.digest).toBe(digest);
    const byDigest = await client.getManifest(parseReference(`${reg.host}/test/a@${digest}`));
    expect(Buffer.from(byDigest.bytes)).toEqual(image.manifest.bytes);
    const layer = await readAll(await client.openBlob(ref, image.layers[0]));
    expect(layer).toEqual(image.layers[0].bytes);
    expect(await client.listTags(ref)).toEqual(['v1']);
  });

  test('small blobs are pushed up to 16 at once, big ones 4 at once', async () => {
    // a proxy in front of the registry that holds each request 40 ms and counts the uploads under way
    let inFlight = 0;
    let most = 0;
    const [uhost, uport] = reg.host.split(':');
    const proxy = createServer((req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        const up = request(
          { host: uhost, port: Number(uport), method: req.method, path: req.url, headers: req.headers },
          (ur) => {
            res.writeHead(ur.statusCode ?? 502, ur.headers);
            ur.pipe(res).on('finish', () => inFlight--);
          },
        );
        req.pipe(up);
      }, 40);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const c = new RegistryClient({ retry: fast });
    try {
      const push = async (blobs: Buffer[]) => {
        most = 0;
        const ref = parseReference(`${host}/test/limits:1`);
        const results = await Promise.all(
          blobs.map((b) => c.pushBlob(ref, { digest: digestOf(b), size: b.length }, () => Readable.from([b]))),
        );
        expect(results.every((r) => r === 'uploaded')).toBe(true);
        return most;
      };
      const tag = `${Date.now()}-${Math.random()}`;
      expect(await push(Array.from({ length: 12 }, (_, i) => Buffer.from(`small blob ${i} ${tag}`)))).toBe(12);
      expect(
        await push(Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024 + 1, `big blob ${i} ${tag}`))),
      ).toBe(4);
    } finally {
      await c.close();
      await new Promise((r) => proxy.close(r));
    }
  });

  test('a blob already there is not uploaded again; another repository mounts it', async () => {
    const image = makeImage({ files: [{ 'mount.txt': 'mount me' }] });
    await pushImage(client, `${reg.host}/test/src:1`, image);
    const layer = image.layers[0];
    const noBody = () => Readable.from([Buffer.from('wrong')]);
    expect(await client.pushBlob(parseReference(`${reg.host}/test/src`), layer, noBody)).toBe('exists');
    expect(
      await client.pushBlob(parseReference(`${reg.host}/test/dst`), layer, noBody, [
        parseReference(`${reg.host}/test/src`),
      ]),
    ).toBe('mounted');
    expect(await client.blobExists(parseReference(`${reg.host}/test/dst`), layer.digest)).toBe(layer.size);
  });

  test('chunked upload (PATCH with Content-Range, then PUT ?digest=)', async () => {
    const chunked = new RegistryClient({ uploadMode: 'chunked', chunkSize: 1000, retry: fast });
    try {
      const bytes = Buffer.alloc(4500);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 251;
      const d = { digest: digestOf(bytes), size: bytes.length };
      const ref = parseReference(`${reg.host}/test/chunked`);
      expect(await chunked.pushBlob(ref, d, () => Readable.from([bytes.subarray(0, 1700), bytes.subarray(1700)]))).toBe(
        'uploaded',
      );
      expect(await readAll(await chunked.openBlob(ref, d))).toEqual(bytes);
    } finally {
      await chunked.close();
    }
  });

  test('content that does not match its digest is refused before it lands', async () => {
    const ref = parseReference(`${reg.host}/test/bad`);
    const claimed = { digest: digestOf('something else'), size: 5 };
    await expect(client.pushBlob(ref, claimed, () => Readable.from([Buffer.from('hello')]))).rejects.toThrow(
      DigestMismatchError,
    );
    expect(await client.blobExists(ref, claimed.digest)).toBeUndefined();
  });

  test('a blob read under the wrong digest fails the stream', async () => {
    const image = makeImage({ files: [{ x: 'x' }] });
    await pushImage(client, `${reg.host}/test/verify:1`, image);
    const ref = parseReference(`${reg.host}/test/verify`);
    await expect(
      readAll(await client.openBlob(ref, { digest: image.layers[0].digest, size: image.layers[0].size + 1 })),
    ).rejects.toThrow(/expected/);
  });

  test('unknown manifests are typed errors with the registry code', async () => {
    const err = await client.getManifest(parseReference(`${reg.host}/test/a:nope`)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(404);
    expect((err as RegistryError).code).toBe('MANIFEST_UNKNOWN');
    expect((err as Error).message).toMatch(/manifest 127\.0\.0\.1:\d+\/test\/a:nope: 404 MANIFEST_UNKNOWN/);
  });

  test('an OCI manifest and index round-trip', async () => {
    const image = makeImage({ oci: true });
    const digest = await pushImage(client, `${reg.host}/test/oci:1`, image);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: image.manifest.mediaType,
            digest,
            size: image.manifest.size,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    const ref = parseReference(`${reg.host}/test/oci:multi`);
    await client.putManifest(ref, 'multi', index, 'application/vnd.oci.image.index.v1+json');
    const got = await client.getManifest(ref);
    expect(got.kind).toBe('index');
    expect(got.digest).toBe(digestOf(index));
  });
});

describeWith(['docker-registry'])('registry client, htpasswd registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry('htpasswd');
  });
  afterAll(async () => reg?.stop());

  test('without credentials: 401 with a hint to log in', async () => {
    const client = new RegistryClient({ retry: fast });
    try {
      const err = await pushImage(client, `${reg.host}/private/x:1`, makeImage()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as Error).message).toMatch(/401.*hoist login 127\.0\.0\.1/);
    } finally {
      await client.close();
    }
  });

  test('with credentials: push and pull; the password is in no message', async () => {
    const client = new RegistryClient({
      retry: fast,
      credentials: new StaticCredentials(new Map([[reg.host, { username: 'alice', password: 'wonder-land-42' }]])),
    });
    try {
      const image = makeImage();
      await pushImage(client, `${reg.host}/private/x:1`, image);
      expect((await client.getManifest(parseReference(`${reg.host}/private/x:1`))).digest).toBe(image.manifest.digest);
      const err = await client.getManifest(parseReference(`${reg.host}/private/x:missing`)).catch((e: Error) => e);
      expect(String(err)).not.toMatch(/wonder-land-42/);
    } finally {
      await client.close();
    }
  });

  test('a wrong password fails clearly', async () => {
    const client = new RegistryClient({
      retry: fast,
      credentials: new StaticCredentials(new Map([[reg.host, { username: 'alice', password: 'nope' }]])),
    });
    try {
      const err = await client.getManifest(parseReference(`${reg.host}/private/x:1`)).catch((e: Error) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).status).toBe(401);
      expect(String(err)).not.toMatch(/nope/);
    } finally {
      await client.close();
    }
  });
});

describeWith(['docker-registry', 'openssl'])('registry client, token auth', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry('token');
  });
  afterAll(async () => reg?.stop());

  const creds = () => new StaticCredentials(new Map([[reg.host, { username: 'alice', password: 'wonder-land-42' }]]));

  test('a push asks for pull,push once and reuses the token; a mount asks for both repositories in one token', async () => {
    const client = new RegistryClient({ retry: fast, credentials: creds() });
    try {
      const before = reg.token!.requests.length;
      const image = makeImage({ files: [{ a: '1' }, { b: '2' }, { c: '3' }] });
      await pushImage(client, `${reg.host}/team/app:1`, image);
      const asked = reg.token!.requests.slice(before);
      expect(asked.length).toBeLessThanOrEqual(2);
      expect(asked.every((r) => r.account === 'alice')).toBe(true);
      expect(asked.at(-1)!.scopes).toEqual(['repository:team/app:pull,push']);

      const mountClient = new RegistryClient({ retry: fast, credentials: creds() });
      try {
        const n = reg.token!.requests.length;
        const result = await mountClient.pushBlob(
          parseReference(`${reg.host}/team/other`),
          image.layers[0],
          () => Readable.from([image.layers[0].bytes]),
          [parseReference(`${reg.host}/team/app`)],
        );
        expect(result).toBe('mounted');
        const scopes = reg.token!.requests.slice(n).flatMap((r) => r.scopes);
        expect(scopes).toContain('repository:team/app:pull');
        expect(scopes).toContain('repository:team/other:pull,push');
      } finally {
        await mountClient.close();
      }
    } finally {
      await client.close();
    }
  });

  test('anonymous gets pull only: a push is denied with an actionable message', async () => {
    const client = new RegistryClient({ retry: fast });
    try {
      const err = await pushImage(client, `${reg.host}/team/anon:1`, makeImage()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).status).toBe(401);
    } finally {
      await client.close();
    }
  });

  test('an identity (refresh) token is exchanged with the OAuth2 POST flow', async () => {
    // Get a refresh token the way `docker login` would with offline_token=true.
    const res = await fetch(`${reg.token!.realm}?service=${reg.token!.service}&offline_token=true`, {
      headers: { authorization: `Basic ${Buffer.from('alice:wonder-land-42').toString('base64')}` },
    });
    const refresh = ((await res.json()) as { refresh_token: string }).refresh_token;
    const client = new RegistryClient({
      retry: fast,
      credentials: new StaticCredentials(new Map([[reg.host, { identityToken: refresh }]])),
    });
    try {
      const n = reg.token!.requests.length;
      await pushImage(client, `${reg.host}/team/idt:1`, makeImage());
      expect(
        reg
          .token!.requests.slice(n)
          .some((r) => r.method === 'POST' && r.grant === 'refresh_token' && r.account === 'alice'),
      ).toBe(true);
    } finally {
      await client.close();
    }
  });

  test('wrong credentials at the token service name the registry and leak nothing', async () => {
    const client = new RegistryClient({
      retry: fast,
      credentials: new StaticCredentials(new Map([[reg.host, { username: 'alice', password: 'bad-secret-99' }]])),
    });
    try {
      const err = await client.getManifest(parseReference(`${reg.host}/team/app:1`)).catch((e: Error) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect(String(err)).toMatch(/rejected the credentials/);
      expect(String(err)).not.toMatch(/bad-secret-99/);
    } finally {
      await client.close();
    }
  });
});
