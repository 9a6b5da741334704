// The collection after every build (store/collect.ts): the limit's forms, the order it trims in (unpacked layers,
// then cache records with their layers, then images, each least recently used first), what it spares (a running
// build's work, another collection), and the sizes it keeps so that it need not walk unpacked layers every time.
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestOf } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { collect, describeCollection, storeLimit, StoreLimitError } from '../../src/store/collect.js';
import { storeSize } from '../../src/store/gc.js';
import { importRootfs } from '../../src/store/load.js';
import { type ImageRecord, Store } from '../../src/store/store.js';
import { layerTar } from '../helpers/images.js';
import { hoist } from '../helpers/hoist.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'hoist-collect-'));
const ago = (p: string, minutes: number) =>
  utimesSync(p, new Date(Date.now() - minutes * 60_000), new Date(Date.now() - minutes * 60_000));
// random text does not compress much: each image's layer is ~150 kB in the store, its snapshot as much again
const bulky = (name: string) => layerTar({ [name]: randomBytes(150_000).toString('base64') });

describe('storeLimit', () => {
  test('sizes, shares of the disk, 0 for off, and the default: 10% of the disk, at least 2 GB', async () => {
    const dir = tmp();
    const s = await statfs(dir);
    const disk = s.blocks * s.bsize;
    expect(await storeLimit('10GB', dir)).toBe(10e9);
    expect(await storeLimit('512MiB', dir)).toBe(512 * 2 ** 20);
    expect(await storeLimit('0', dir)).toBe(0);
    expect(await storeLimit('25%', dir)).toBe(Math.floor(disk / 4));
    expect(await storeLimit(undefined, dir)).toBe(Math.max(2e9, Math.floor(disk / 10)));
    expect(await storeLimit('', dir)).toBe(Math.max(2e9, Math.floor(disk / 10)));
    for (const bad of ['lots', '-1GB', '0%', '101%', '10 parsecs'])
      await expect(storeLimit(bad, dir)).rejects.toThrow(StoreLimitError);
    await expect(storeLimit('lots', dir)).rejects.toThrow(
      /expected a size \(10GB, 512MiB, 1000000\), a share of the disk \(15%\), or 0/,
    );
  });

  test('hoist build --store-max or HOIST_STORE_MAX that is no limit: a usage error (2) before anything is built', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
    const bad = await hoist(['build', '--store', path.join(dir, 'store'), '--store-max', '10 parsecs', dir]);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(
      'hoist build: --store-max: store limit "10 parsecs": expected a size (10GB, 512MiB, 1000000), a share of the disk (15%), or 0 for no limit\n',
    );
    process.env.HOIST_STORE_MAX = '0%';
    try {
      const env = await hoist(['build', '--store', path.join(dir, 'store'), dir]);
      expect(env.code).toBe(2);
      expect(env.err).toMatch(
        /^hoist build: HOIST_STORE_MAX: store limit "0%": a share must be above 0% and at most 100%\n$/,
      );
    } finally {
      delete process.env.HOIST_STORE_MAX;
    }
    expect(
      existsSync(path.join(dir, 'store', 'records')) && readdirSync(path.join(dir, 'store', 'records')).length,
    ).toBeFalsy();
  });
});

describe('collect', () => {
  let store: Store;
  let images: ImageRecord[];
  let snaps: string[];
  let records: { key: string; blob: string; path: string }[];

  /** Two images (a used 50 minutes ago, b 40), their unpacked layers (used 90 and 80 minutes ago), two cache records with layers of their own (used 70 and 60). */
  beforeEach(async () => {
    store = await Store.open(tmp());
    const tars = [bulky('a'), bulky('b')];
    images = [
      await importRootfs(store, Readable.from([tars[0]]), 'lru/a:1'),
      await importRootfs(store, Readable.from([tars[1]]), 'lru/b:1'),
    ];
    ago(store.blobPath(images[0].target.digest), 50);
    ago(store.blobPath(images[1].target.digest), 40);
    snaps = [];
    for (const [i, tar] of tars.entries()) {
      const snap = await store.snapshot(digestOf(tar), () => Readable.from([tar]), { whiteouts: 'apply' });
      ago(snap.path, 90 - i * 10);
      snaps.push(snap.path);
    }
    records = [];
    for (const i of [0, 1]) {
      const blob = await store.writeBlob(randomBytes(200_000));
      const key = digestOf(`step ${i}`);
      await store.writeRecord({
        key,
        time: 0,
        layer: {
          mediaType: MediaType.ociLayerGzip,
          digest: blob.digest,
          size: blob.size,
          diffID: digestOf(`tar ${i}`),
        },
      });
      ago(store.blobPath(blob.digest), 100);
      ago(store.cacheRecordPath(key), 70 - i * 10);
      records.push({ key, blob: blob.digest, path: store.cacheRecordPath(key) });
    }
  });
  afterEach(async () => {
    await store.close();
    rmSync(store.root, { recursive: true, force: true });
  });

  const snapshotsLeft = () => snaps.filter(existsSync).length;

  test('under the limit, or off: nothing is done', async () => {
    const size = await storeSize(store);
    expect(await collect(store, size)).toBeUndefined();
    expect(await collect(store, 0)).toBeUndefined();
    expect(await storeSize(store)).toBe(size);
  });

  test('unpacked layers go first, the least recently used first, and only as many as needed', async () => {
    const size = await storeSize(store);
    const c = await collect(store, size - 1000);
    expect(c?.report.removedSnapshots).toBe(1);
    expect(existsSync(snaps[0])).toBe(false);
    expect(existsSync(snaps[1])).toBe(true);
    expect(snapshotsLeft()).toBe(1);
    expect(c?.after).toBeLessThanOrEqual(size - 1000);
    expect(c?.before).toBe(size);
    expect(await storeSize(store)).toBe(c?.after);
    expect(describeCollection(c as NonNullable<typeof c>)).toMatch(
      /^store: over its limit of .* \(.*\): freed .* in \d+\.\d\d s \(1 unpacked layers/,
    );
  });

  test('then cache records with the layers only they held, then images, each the least recently used first', async () => {
    // both snapshots and the older record's layer must go, not the newer record
    let c = await collect(store, (await storeSize(store)) - 450_000);
    expect(c?.report.removedSnapshots).toBe(2);
    expect(c?.report.removedRecords).toBe(1);
    expect(existsSync(records[0].path)).toBe(false);
    expect(await store.hasBlob(records[0].blob)).toBeUndefined();
    expect(await store.readRecord(records[1].key)).toBeDefined();
    expect(await store.hasBlob(records[1].blob)).toBeDefined();
    expect(c?.report.removedImages).toEqual([]);
    // then the other record, and the image used longest ago with what only it reached
    c = await collect(store, (await storeSize(store)) - 300_000);
    expect(c?.report.removedRecords).toBe(1);
    expect(c?.report.removedImages).toEqual(['docker.io/lru/a:1']);
    expect(await store.hasBlob(images[0].target.digest)).toBeUndefined();
    expect(await store.getImage('docker.io/lru/b:1')).toEqual(images[1]);
    expect(c?.after).toBeLessThanOrEqual(c?.limit as number);
  });

  test("the last hour's unpacked layers (the working set: a base's lower) go after records and images, not before", async () => {
    ago(snaps[1], 5);
    const c = await collect(store, (await storeSize(store)) - 300_000);
    expect(existsSync(snaps[0])).toBe(false);
    expect(c?.report.removedRecords).toBe(1);
    expect(existsSync(snaps[1])).toBe(true);
    const all = await collect(store, 1);
    expect(all?.report.removedImages).toEqual(['docker.io/lru/a:1', 'docker.io/lru/b:1']);
    expect(existsSync(snaps[1])).toBe(false);
  });

  test('what a running build used since it began stays, over the limit or not; a collection waits for the one running', async () => {
    // a live process (the test's parent) took a lease 30 minutes ago: what it touched since is its work
    const lease = path.join(store.root, 'leases', 'other');
    writeFileSync(lease, String(process.ppid));
    ago(lease, 30);
    ago(store.blobPath(images[1].target.digest), 10);
    ago(records[1].path, 10);
    ago(snaps[1], 10);
    const c = await collect(store, 1);
    expect(c?.report.removedImages).toEqual(['docker.io/lru/a:1']);
    expect(existsSync(snaps[1])).toBe(true);
    expect(existsSync(records[1].path)).toBe(true);
    expect(await store.getImage('docker.io/lru/b:1')).toBeDefined();
    expect(describeCollection(c as NonNullable<typeof c>)).toMatch(
      /; still .*: the rest is in use by running builds or by root$/,
    );
    // the gc lock held by a live process (another collection, a prune): this one waits for it and then trims
    writeFileSync(store.gcLock, String(process.ppid));
    ago(lease, 5);
    const waiting = collect(store, 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(snaps[1])).toBe(true);
    rmSync(store.gcLock);
    expect((await waiting)?.report.removedSnapshots).toBe(1);
    expect(existsSync(snaps[1])).toBe(false);
  });

  const kept = () =>
    JSON.parse(readFileSync(path.join(store.root, 'sizes.json'), 'utf8')) as { snapshots: Record<string, number> };

  test('an unpacked layer is walked once: its size is kept, and forgotten with it', async () => {
    const size = await storeSize(store);
    expect(Object.keys(kept().snapshots).sort()).toEqual(snaps.map((p) => path.basename(p)).sort());
    // a snapshot never changes in place: a file put there by hand is not seen, as the walk is not done again
    writeFileSync(path.join(snaps[0], 'extra'), randomBytes(10_000));
    ago(snaps[0], 90);
    utimesSync(path.join(store.root, 'snapshots'), new Date(), new Date()); // (as if a snapshot had come or gone)
    expect(await storeSize(store)).toBe(size);
    await collect(store, size - 1000);
    expect(Object.keys(kept().snapshots)).toEqual([path.basename(snaps[1])]);
  });

  test('a directory whose mtime has not moved (nothing added or removed) is not listed again; one that moved is', async () => {
    const blobs = path.join(store.root, 'blobs', 'sha256');
    const then = new Date(Date.now() - 600_000);
    utimesSync(blobs, then, then);
    const size = await storeSize(store);
    // a file slipped in with the directory's mtime put back: the kept total is used, so it is not seen…
    writeFileSync(path.join(blobs, 'f'.repeat(64)), randomBytes(5000));
    utimesSync(blobs, then, then);
    expect(await storeSize(store)).toBe(size);
    // …until the directory changes, as any write of the store changes it
    utimesSync(blobs, new Date(), new Date());
    expect(await storeSize(store)).toBe(size + 5000);
    // a total taken within a second of its directory's change is not trusted: taken again
    writeFileSync(path.join(blobs, 'e'.repeat(64)), randomBytes(3000));
    const fresh = statSync(blobs).mtime;
    expect(await storeSize(store)).toBe(size + 8000);
    writeFileSync(path.join(blobs, 'd'.repeat(64)), randomBytes(1000));
    utimesSync(blobs, fresh, fresh);
    expect(await storeSize(store)).toBe(size + 9000);
  });
});
