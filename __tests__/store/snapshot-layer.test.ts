// A layer the store lacks, unpacked as it downloads (Store.snapshotLayer): one pass stores the blob and makes the
// snapshot and its index; callers at once share it; a download that breaks off or does not match leaves nothing
// behind. Real parts: docker-registry, with the fault proxy in front for the faults it cannot make.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DigestMismatchError, digestOf } from '../../src/image/digest.js';
import type { Descriptor } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Layer } from '../../src/layer/layer.js';
import { RegistryClient } from '../../src/registry/client.js';
import { registryBlobSource } from '../../src/registry/source.js';
import { Store } from '../../src/store/store.js';
import { readTar } from '../../src/layer/tar.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { layerTar } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

describeWith(['docker-registry'])('unpacking a layer as it downloads', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  const client = new RegistryClient({ retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 } });
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-snapshot-layer-'));
  // Random: gzip leaves it big enough to come in many chunks.
  const big = Buffer.from(randomBytes(1_500_000).toString('base64'));
  const files: Record<string, string> = { 'etc/hostname': 'streamed\n', 'usr/share/big.txt': big.toString() };
  for (let i = 0; i < 200; i++) files[`usr/lib/f${i}.txt`] = `file ${i}\n`;
  const tar = layerTar(files);
  const layerTarNames: string[] = [];
  const gz = gzipSync(tar);
  const desc: Descriptor = { mediaType: MediaType.ociLayerGzip, digest: digestOf(gz), size: gz.length };
  const layerVia = (host: string): Layer => ({
    descriptor: desc,
    diffID: digestOf(tar),
    sources: [registryBlobSource(client, { registry: host, repository: 'test/layer' })],
  });
  let n = 0;
  const freshStore = () => Store.open(path.join(work, `store${n++}`));
  const blobGets = () => proxy.log.filter((l) => l.method === 'GET' && l.path.includes(desc.digest));

  beforeAll(async () => {
    for await (const { header, body } of readTar(Readable.from([tar]))) {
      body.resume();
      layerTarNames.push(header.name);
    }
    reg = await startRegistry('anonymous');
    proxy = await startFaultProxy(reg.host);
    await client.pushBlob({ registry: reg.host, repository: 'test/layer' }, desc, () => Readable.from([gz]));
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  beforeEach(() => {
    proxy.log.length = 0;
    proxy.rules.length = 0;
  });

  test('one download gives the blob, the snapshot and its index; callers at once share it', async () => {
    const store = await freshStore();
    try {
      const layer = layerVia(proxy.host);
      const [a, b, index] = await Promise.all([
        store.snapshotLayer(layer),
        store.snapshotLayer(layer),
        store.readLayerIndex(layer.diffID),
      ]);
      expect(b.path).toBe(a.path);
      expect(readFileSync(path.join(a.path, 'etc/hostname'), 'utf8')).toBe('streamed\n');
      expect(readFileSync(path.join(a.path, 'usr/share/big.txt')).equals(big)).toBe(true);
      expect(blobGets()).toHaveLength(1);
      expect(store.fetched).toEqual({ blobs: 1, bytes: gz.length });
      expect(await store.hasIntactBlob(desc)).toBe(true);
      expect(await store.blobIntact(desc.digest)).toBe(true);
      // The index read waited for the unpacking and found what it wrote.
      expect(index?.map((h) => h.name)).toContain('usr/share/big.txt');
      expect(readdirSync(path.join(store.root, 'tmp'))).toEqual([]);
      // Again: nothing is fetched or unpacked.
      expect((await store.snapshotLayer(layer)).path).toBe(a.path);
      expect(blobGets()).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  test('a download dropped halfway is fetched again and unpacked afresh', async () => {
    const store = await freshStore();
    try {
      proxy.rules.push({
        match: (req) => req.method === 'GET' && (req.url ?? '').includes(desc.digest),
        fault: 'drop-mid-body',
        times: 1,
      });
      const snap = await store.snapshotLayer(layerVia(proxy.host));
      expect(blobGets().map((l) => l.fault)).toEqual(['drop-mid-body', undefined]);
      expect(readFileSync(path.join(snap.path, 'usr/share/big.txt')).equals(big)).toBe(true);
      expect(readdirSync(path.join(store.root, 'tmp'))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test('bytes that do not match the digest leave no snapshot, no blob and nothing in tmp', async () => {
    const store = await freshStore();
    try {
      proxy.rules.push({
        match: (req) => req.method === 'GET' && (req.url ?? '').includes(desc.digest),
        fault: 'corrupt-body',
        times: 1,
      });
      const layer = layerVia(proxy.host);
      await expect(store.snapshotLayer(layer)).rejects.toThrow(/digest|gzip|tar|layer/i);
      expect(existsSync(store.snapshotPath(layer.diffID))).toBe(false);
      expect(await store.hasBlob(desc.digest)).toBeUndefined();
      expect(readdirSync(path.join(store.root, 'tmp'))).toEqual([]);
      // The fault spent, the same call succeeds.
      expect(readFileSync(path.join((await store.snapshotLayer(layer)).path, 'etc/hostname'), 'utf8')).toBe(
        'streamed\n',
      );
    } finally {
      await store.close();
    }
  });

  test("a layer's headers (Store.layerHeaders): one download stores the blob and gives the index, callers at once share it; a lying diffID or a corrupt download keeps nothing", async () => {
    const store = await freshStore();
    try {
      const layer = layerVia(proxy.host);
      const [a, b] = await Promise.all([store.layerHeaders(layer), store.layerHeaders(layer)]);
      expect(b).toBe(a);
      expect(a.map((h) => h.name)).toEqual(layerTarNames);
      expect(blobGets()).toHaveLength(1);
      expect(await store.blobIntact(desc.digest)).toBe(true);
      expect(readdirSync(path.join(store.root, 'tmp'))).toEqual([]);
      // kept on disk: another opening of the store reads the index, not the layer
      const again = await Store.open(store.root);
      try {
        expect((await again.layerHeaders(layer)).map((h) => h.name)).toEqual(layerTarNames);
      } finally {
        await again.close();
      }
      expect(blobGets()).toHaveLength(1);
    } finally {
      await store.close();
    }
    for (const fault of ['corrupt-body', 'diffID'] as const) {
      const bad = await freshStore();
      try {
        if (fault === 'corrupt-body')
          proxy.rules.push({
            match: (req) => req.method === 'GET' && (req.url ?? '').includes(desc.digest),
            fault,
            times: 1,
          });
        const layer =
          fault === 'diffID' ? { ...layerVia(proxy.host), diffID: digestOf('something else') } : layerVia(proxy.host);
        await expect(bad.layerHeaders(layer)).rejects.toThrow(
          fault === 'diffID' ? DigestMismatchError : /digest|gzip|tar|layer/i,
        );
        expect(await bad.readLayerIndex(layer.diffID)).toBeUndefined();
        expect(await bad.hasBlob(desc.digest)).toBeUndefined();
        expect(readdirSync(path.join(bad.root, 'tmp'))).toEqual([]);
      } finally {
        await bad.close();
      }
    }
  });

  test('a layer whose diffID does not match its content: the blob is right, the snapshot is refused', async () => {
    const store = await freshStore();
    try {
      const layer = { ...layerVia(reg.host), diffID: digestOf('something else') };
      await expect(store.snapshotLayer(layer)).rejects.toThrow(DigestMismatchError);
      expect(existsSync(store.snapshotPath(layer.diffID))).toBe(false);
      expect(readdirSync(path.join(store.root, 'tmp'))).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
