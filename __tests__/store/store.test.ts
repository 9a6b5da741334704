// The local store: atomic verified blobs, records, snapshots, garbage collection, and two processes at once.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable, Transform } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DigestMismatchError, digestOf } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { prune, storeSize } from '../../src/store/gc.js';
import { importRootfs } from '../../src/store/load.js';
import { LocalImage } from '../../src/store/local-image.js';
import { Store } from '../../src/store/store.js';
import { cacheMountDir } from '../../src/store/cache-mounts.js';
import { layerTar } from '../helpers/images.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'hoist-store-'));
const old = (p: string) => utimesSync(p, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));

describe('Store', () => {
  test('blobs are verified before they become visible; nothing partial is left', async () => {
    const store = await Store.open(tmp());
    try {
      const data = Buffer.from('some blob');
      expect(await store.writeBlob(Readable.from([data]), { digest: digestOf(data), size: data.length })).toEqual({
        digest: digestOf(data),
        size: 9,
      });
      expect(await store.readBlob(digestOf(data))).toEqual(data);
      const wrong = digestOf('other');
      await expect(store.writeBlob(Readable.from([data]), { digest: wrong })).rejects.toThrow(DigestMismatchError);
      expect(await store.hasBlob(wrong)).toBeUndefined();
      expect(readdirSync(path.join(store.root, 'tmp'))).toEqual([]);
      // A blob changed on disk is caught when read.
      writeFileSync(store.blobPath(digestOf(data)), 'tampered');
      await expect(store.readBlob(digestOf(data))).rejects.toThrow(DigestMismatchError);
    } finally {
      await store.close();
    }
  });

  test("a blob already held: a stream that feeds another reader too (a layer's tar while it downloads) is read to its end, any other is dropped", async () => {
    const store = await Store.open(tmp());
    try {
      const parts = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * 1024, i));
      const data = Buffer.concat(parts);
      const desc = { digest: digestOf(data), size: data.length };
      await store.writeBlob(data);
      // what passes through the stream is what the other reader would see
      const through = (seen: Buffer[]) =>
        Readable.from(parts).pipe(
          new Transform({
            transform: (c, _e, cb) => {
              seen.push(c);
              cb(null, c);
            },
          }),
        );
      const fed: Buffer[] = [];
      expect(await store.writeBlob(through(fed), desc, { drainWhenHeld: true })).toEqual(desc);
      expect(Buffer.concat(fed).equals(data)).toBe(true);
      const dropped: Buffer[] = [];
      const stream = through(dropped);
      expect(await store.writeBlob(stream, desc)).toEqual(desc);
      expect(stream.destroyed).toBe(true);
      expect(Buffer.concat(dropped).length).toBeLessThan(data.length);
    } finally {
      await store.close();
    }
  });

  test('snapshots are verified against the diffID and appear only when complete', async () => {
    const store = await Store.open(tmp());
    try {
      const tar = layerTar({ 'etc/hostname': 'snap\n', 'usr/bin/tool': '#!/bin/sh\n' });
      const diffID = digestOf(tar);
      const snap = await store.snapshot(diffID, () => Readable.from([tar]), { whiteouts: 'apply' });
      expect(readFileSync(path.join(snap.path, 'etc/hostname'), 'utf8')).toBe('snap\n');
      const other = layerTar({ x: 'y' });
      await expect(
        store.snapshot(digestOf('not this'), () => Readable.from([other]), { whiteouts: 'apply' }),
      ).rejects.toThrow(DigestMismatchError);
      expect(existsSync(store.snapshotPath(digestOf('not this')))).toBe(false);
    } finally {
      await store.close();
    }
  });

  test('layer indexes: headers kept by diffID (xattrs too), a damaged one is ignored, prune drops unreachable ones', async () => {
    const store = await Store.open(tmp());
    try {
      const headers = [
        { name: 'bin', type: 'directory' as const, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1 },
        {
          name: 'bin/ping',
          type: 'file' as const,
          mode: 0o755,
          uid: 0,
          gid: 0,
          size: 3,
          mtime: 2,
          xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0, 32]) },
        },
        {
          name: 'sh',
          type: 'symlink' as const,
          mode: 0o777,
          uid: 0,
          gid: 0,
          size: 0,
          mtime: 3,
          linkname: 'bin/busybox',
        },
      ];
      const diffID = digestOf('some layer');
      expect(await store.readLayerIndex(diffID)).toBeUndefined();
      await store.writeLayerIndex(diffID, headers);
      // kept in memory by the process that wrote them, and on disk for the next (another opening of the store)
      expect(await store.readLayerIndex(diffID)).toBe(headers);
      for (const damage of [false, true]) {
        if (damage) writeFileSync(store.indexPath(diffID), '{"version":1,"headers":[');
        const next = await Store.open(store.root);
        try {
          expect(await next.readLayerIndex(diffID)).toEqual(damage ? undefined : headers);
        } finally {
          await next.close();
        }
      }
      await store.writeLayerIndex(diffID, headers);
      old(store.indexPath(diffID));
      await prune(store);
      expect(existsSync(store.indexPath(diffID))).toBe(false);
    } finally {
      await store.close();
    }
  });

  test('prune --all removes cache mounts nobody holds and keeps those in use', async () => {
    const store = await Store.open(tmp());
    try {
      const root = path.join(store.root, 'cache-mounts');
      const opts = (id: string, sharing: 'shared' | 'locked') => ({
        id,
        sharing,
        mode: 0o755,
        uid: 0,
        gid: 0,
        source: '/',
        readonly: false,
        ownerGiven: false,
      });
      const idleUndo: (() => Promise<void>)[] = [];
      const idle = (await cacheMountDir(root, opts('idle', 'shared'), idleUndo)).dir;
      writeFileSync(path.join(idle, 'f'), 'cached');
      for (const u of idleUndo) await u();
      const held: (() => Promise<void>)[] = [];
      const shared = (await cacheMountDir(root, opts('in-use', 'shared'), held)).dir;
      const locked = (await cacheMountDir(root, opts('locked', 'locked'), held)).dir;
      const report = await prune(store, { all: true });
      expect(report.removedCacheMounts).toBe(1);
      expect(existsSync(idle)).toBe(false);
      expect(existsSync(shared)).toBe(true);
      expect(existsSync(locked)).toBe(true);
      for (const u of held) await u();
      expect((await prune(store, { all: true })).removedCacheMounts).toBe(2);
    } finally {
      await store.close();
    }
  });

  test("prune removes what no record reaches, keeps what one does, and spares a live process's new work", async () => {
    const store = await Store.open(tmp());
    try {
      const rootfs = layerTar({ 'a.txt': 'kept' });
      const rec = await importRootfs(store, Readable.from([rootfs]), 'kept/image:1');
      const dangling = await store.writeBlob(Buffer.from('dangling'));
      old(store.blobPath(dangling.digest));
      // its verified note goes with it; the note of a blob that stays, stays
      await store.noteVerified(dangling.digest, digestOf('a tar'));
      await store.noteVerified(rec.target.digest, digestOf('another tar'));
      old(path.join(store.root, 'verified', dangling.digest.slice(7)));
      // Another hoist process (here: our live parent's pid) holds a lease from now on.
      writeFileSync(path.join(store.root, 'leases', 'other-process'), String(process.ppid));
      const fresh = await store.writeBlob(Buffer.from('written just now by a live process'));
      await store.snapshot(digestOf(rootfs), () => Readable.from([rootfs]), { whiteouts: 'apply' });
      const orphanTar = layerTar({ orphan: '1' });
      const orphan = await store.snapshot(digestOf(orphanTar), () => Readable.from([orphanTar]), {
        whiteouts: 'apply',
      });
      old(orphan.path);

      const report = await prune(store);
      expect(report.removedBlobs).toBe(1);
      expect(report.removedSnapshots).toBe(1);
      expect(await store.hasBlob(dangling.digest)).toBeUndefined();
      expect(await store.isVerified(dangling.digest, digestOf('a tar'))).toBe(false);
      expect(await store.isVerified(rec.target.digest, digestOf('another tar'))).toBe(true);
      expect(await store.hasBlob(fresh.digest)).toBeDefined();
      expect(existsSync(store.snapshotPath(digestOf(rootfs)))).toBe(true);
      const m = await (await LocalImage.open(store, rec)).platformManifest();
      if (m.kind !== 'manifest') throw new Error('expected a manifest');
      for (const d of [m.manifest.config, ...m.manifest.layers]) expect(await store.hasBlob(d.digest)).toBeDefined();

      const all = await prune(store, { all: true });
      expect(all.removedImages).toEqual(['docker.io/kept/image:1']);
      // --all too spares what the live process made or used since its lease.
      expect(await store.hasBlob(fresh.digest)).toBeDefined();
      rmSync(path.join(store.root, 'leases', 'other-process'));
      await prune(store, { all: true });
      expect(await storeSize(store)).toBe(0);
    } finally {
      await store.close();
    }
  });

  test('--keep-storage trims snapshots first, then the least recently used images', async () => {
    const store = await Store.open(tmp());
    try {
      const big = (n: number) =>
        layerTar({ [`f${n}`]: Array.from({ length: 30000 }, () => Math.random().toString(36)).join('') });
      const a = await importRootfs(store, Readable.from([big(1)]), 'lru/a:1');
      const b = await importRootfs(store, Readable.from([big(2)]), 'lru/b:1');
      old(store.blobPath(a.target.digest));
      const size = await storeSize(store);
      const report = await prune(store, { keepStorage: Math.floor(size * 0.75) });
      expect(report.removedImages).toEqual(['docker.io/lru/a:1']);
      expect(await store.getImage('docker.io/lru/b:1')).toEqual(b);
      expect(await storeSize(store)).toBeLessThanOrEqual(size * 0.75);
    } finally {
      await store.close();
    }
  });
});

describe('two hoist processes on one store', () => {
  const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
  const spawnHoist = (args: string[]) =>
    new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => resolve({ code, err }));
    });

  test('imports of the same and different layers racing two prunes all land intact (dist/cli.js)', async () => {
    const dir = tmp();
    const files = path.join(dir, 'in');
    mkdirSync(files);
    writeFileSync(path.join(files, 'same.tar'), layerTar({ shared: 'x'.repeat(200_000) }));
    writeFileSync(path.join(files, 'other.tar.gz'), gzipSync(layerTar({ other: 'y'.repeat(100_000) })));
    const store = path.join(dir, 'store');
    const results = await Promise.all([
      spawnHoist(['import', path.join(files, 'same.tar'), 'race/one:1', '--store', store]),
      spawnHoist(['import', path.join(files, 'same.tar'), 'race/two:1', '--store', store]),
      spawnHoist(['import', path.join(files, 'other.tar.gz'), 'race/three:1', '--store', store]),
      spawnHoist(['prune', '--store', store]),
      spawnHoist(['prune', '--store', store]),
    ]);
    for (const r of results) expect(r).toEqual({ code: 0, err: '' });
    const s = await Store.open(store);
    try {
      const records = await s.listImages();
      expect(records.map((r) => r.name)).toEqual([
        'docker.io/race/one:1',
        'docker.io/race/three:1',
        'docker.io/race/two:1',
      ]);
      for (const r of records) {
        const m = await (await LocalImage.open(s, r)).platformManifest();
        if (m.kind !== 'manifest') throw new Error('expected a manifest');
        expect(m.manifest.layers[0].mediaType).toBe(MediaType.dockerLayerGzip);
        for (const d of [m.manifest.config, ...m.manifest.layers]) await s.readBlob(d.digest);
      }
      expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
    } finally {
      await s.close();
    }
    expect(readdirSync(path.join(store, 'leases'))).toEqual([]);
  });
});
