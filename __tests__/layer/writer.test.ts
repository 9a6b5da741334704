// Writing layers: deterministic tars hashed (diffID) and compressed (digest) into the store; the diffID alone from
// hashLayer (a RUN's layer is hashed at once and compressed while the next steps run, CompressingLayer), checked
// again when the blob is written.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DigestMismatchError, digestOf } from '../../src/image/digest.js';
import { CompressingLayer } from '../../src/layer/layer.js';
import { hashLayer, type LayerEntry, writeLayer } from '../../src/layer/writer.js';
import { Store } from '../../src/store/store.js';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-writer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function entries(dir: string): LayerEntry[] {
  mkdirSync(path.join(dir, 'etc'), { recursive: true });
  writeFileSync(path.join(dir, 'etc', 'small'), 'small\n');
  writeFileSync(path.join(dir, 'big'), Buffer.alloc(3 << 20, 7)); // streamed, not read whole
  const h = { mode: 0o644, uid: 0, gid: 0, mtime: 1000 };
  return [
    { header: { ...h, name: 'etc', type: 'directory', mode: 0o755, size: 0 } },
    { header: { ...h, name: 'etc/small', type: 'file', size: 6 }, content: { path: path.join(dir, 'etc', 'small') } },
    { header: { ...h, name: 'big', type: 'file', size: 3 << 20 }, content: { path: path.join(dir, 'big') } },
    { header: { ...h, name: 'etc/bytes', type: 'file', size: 3 }, content: { bytes: Buffer.from('abc') } },
  ];
}

test('hashLayer gives the diffID and headers writeLayer gives, and the blob unpacks to that tar', async () => {
  const dir = path.join(work, 'a');
  const store = await Store.open(path.join(work, 'store-a'));
  try {
    const list = entries(dir);
    const hashed = await hashLayer(list, { sourceDateEpoch: 500 });
    const written = await writeLayer(store, list, { sourceDateEpoch: 500, diffID: hashed.diffID });
    expect(written.diffID).toBe(hashed.diffID);
    expect(written.headers).toEqual(hashed.headers);
    // filepath.Walk order, directories with their slash, times clamped to SOURCE_DATE_EPOCH.
    expect(hashed.headers.map((x) => [x.name, x.mtime])).toEqual([
      ['big', 500],
      ['etc/', 500],
      ['etc/bytes', 500],
      ['etc/small', 500],
    ]);
    const blob = await store.readBlob(written.digest);
    expect(digestOf(blob)).toBe(written.digest);
    expect(digestOf(gunzipSync(blob))).toBe(hashed.diffID);
    // The same entries give the same layer.
    expect((await writeLayer(store, list, { sourceDateEpoch: 500 })).digest).toBe(written.digest);
  } finally {
    await store.close();
  }
});

test('a file changed between hashing and writing is caught: no blob is stored', async () => {
  const dir = path.join(work, 'b');
  const store = await Store.open(path.join(work, 'store-b'));
  try {
    const list = entries(dir);
    const { diffID } = await hashLayer(list);
    writeFileSync(path.join(dir, 'etc', 'small'), 'SMALL\n');
    await expect(writeLayer(store, list, { diffID })).rejects.toThrow(DigestMismatchError);
    expect(readdirSync(path.join(store.root, 'blobs', 'sha256'))).toEqual([]);
    expect(readdirSync(path.join(store.root, 'tmp'))).toEqual([]);
  } finally {
    await store.close();
  }
});

test('a CompressingLayer has its descriptor only once written, and passes a failure on to whoever waits', async () => {
  let resolve!: (d: { mediaType: string; digest: string; size: number }) => void;
  const layer = new CompressingLayer(digestOf('tar'), new Promise((r) => (resolve = r)));
  expect(() => layer.descriptor).toThrow(/still being compressed/);
  resolve({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf('gz'), size: 2 });
  await layer.ready;
  expect(layer.descriptor.digest).toBe(digestOf('gz'));
  const failed = new CompressingLayer(digestOf('tar'), Promise.reject(new Error('disk full')));
  await expect(failed.ready).rejects.toThrow('disk full');
});
