// Cache mounts as registry and local caches keep them (src/cache/mounts.ts): a directory packed into a blob and
// unpacked again has the same content digest (names, types, modes, owners, link targets, bytes, hard links); a blob
// that does not match its digest leaves the directory as it was; a hostile blob cannot write outside it.
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { type KeptMount, packMount, restoreMountBlob, treeDigest } from '../../src/cache/mounts.js';
import { digestOf } from '../../src/image/digest.js';
import type { Descriptor } from '../../src/image/manifest.js';
import type { BlobSource } from '../../src/layer/layer.js';
import type { TarHeader } from '../../src/layer/tar.js';
import { Store } from '../../src/store/store.js';
import { writeTar } from '../helpers/raw-tar.js';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-mounts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A blob source that serves `bytes` for any descriptor (the sink checks them against the descriptor). */
const serving = (bytes: Buffer): BlobSource => ({
  name: 'test',
  fetch: async (desc, sink) => {
    await sink.writeBlob(Readable.from([bytes]), desc);
  },
});
const keptOf = (bytes: Buffer, desc?: Descriptor): KeptMount => ({
  blob: {
    name: '0'.repeat(32),
    content: `sha256:${'0'.repeat(64)}`,
    descriptor: desc ?? {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: digestOf(bytes),
      size: bytes.length,
    },
  },
  source: serving(bytes),
});

const tarOf = async (entries: [TarHeader, Buffer?][]): Promise<Buffer> => gzipSync(await writeTar(entries));

test('a directory packed and unpacked again has the same content digest', async () => {
  const dir = path.join(work, 'src');
  mkdirSync(path.join(dir, 'sub/deeper'), { recursive: true });
  writeFileSync(path.join(dir, 'sub/a.bin'), Buffer.alloc(300_000, 7));
  writeFileSync(path.join(dir, 'exec'), '#!/bin/sh\n');
  chmodSync(path.join(dir, 'exec'), 0o750);
  linkSync(path.join(dir, 'sub/a.bin'), path.join(dir, 'hard'));
  symlinkSync('sub/a.bin', path.join(dir, 'link'));
  chmodSync(path.join(dir, 'sub/deeper'), 0o700);
  const store = await Store.open(path.join(work, 'store'));
  const desc = await packMount(store, dir);
  const bytes = await store.readBlob(desc.digest);
  const target = path.join(work, 'restored');
  mkdirSync(target);
  await restoreMountBlob(keptOf(bytes, desc), target, 1 << 30);
  expect(await treeDigest(target)).toEqual(await treeDigest(dir));
  expect(statSync(path.join(target, 'hard')).ino).toBe(statSync(path.join(target, 'sub/a.bin')).ino);
  expect(readdirSync(work).filter((f) => f.includes('restoring'))).toEqual([]);
});

test('a blob that does not match its digest leaves the directory as it was', async () => {
  const bytes = await tarOf([
    [{ name: 'pkg', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0 }, Buffer.from('abc')],
  ]);
  const target = path.join(work, 'corrupt');
  mkdirSync(target);
  writeFileSync(path.join(target, 'kept'), 'x');
  const wrong = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: `sha256:${'1'.repeat(64)}`,
    size: bytes.length,
  };
  await expect(restoreMountBlob(keptOf(bytes, wrong), target, 1 << 30)).rejects.toThrow(/digest/);
  expect(readdirSync(target)).toEqual(['kept']);
  expect(readdirSync(work).filter((f) => f.includes('restoring'))).toEqual([]);
});

test('a hostile blob cannot write outside the directory (.. names, a link to / and then through it)', async () => {
  const outside = path.join(work, 'outside');
  mkdirSync(outside);
  const target = path.join(outside, 'cache');
  mkdirSync(target);
  const bytes = await tarOf([
    [{ name: '../escaped', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }, Buffer.from('x')],
    [{ name: 'root', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '/' }],
    [
      { name: `root${outside}/through-link`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 },
      Buffer.from('y'),
    ],
    [{ name: 'up', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '..' }],
    [{ name: 'up/through-dotdot', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }, Buffer.from('z')],
  ]);
  await restoreMountBlob(keptOf(bytes), target, 1 << 30);
  // all of it inside: the link to / is the directory itself, .. stops at it
  expect(readdirSync(target).sort()).toEqual(['escaped', 'root', 'through-dotdot', 'tmp', 'up']);
  expect(readdirSync(outside).sort()).toEqual(['cache']);
  expect(existsSync(path.join(outside, 'escaped'))).toBe(false);
  expect(existsSync(`${outside}/through-link`)).toBe(false);
});
