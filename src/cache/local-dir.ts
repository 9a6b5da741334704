// A cache in a directory, as an OCI image layout (`--cache-from type=local,src=DIR`, `--cache-to
// type=local,dest=DIR`): index.json names the cache manifest (format.ts), blobs/ holds it, its config and the
// layers. An export keeps only what this build's records name: the directory does not grow without bound, as
// buildx's local cache does. The build's cache mounts are kept there too, as blobs the config names (mounts.ts).
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../image/digest.js';
import { type Descriptor, parseManifest } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import type { BlobSource } from '../layer/layer.js';
import { type CacheBackend, cacheBlobSource, type CacheLayers, type CacheSaveReport, type CacheSource, recordsByKey } from './backend.js';
import { CacheFormatError, decodeMounts, decodeRecords, encodeCache } from './format.js';
import { mountsOf, mountsSource } from './mounts.js';
import type { CacheRecord } from './record.js';

const blobFile = (dir: string, digest: string) => {
  const { algorithm, hex } = parseDigest(digest);
  return path.join(dir, 'blobs', algorithm, hex);
};

/** `type=local,src=DIR` / `dest=DIR`. */
export function localCache(dir: string, options: { mountMaxSize?: number } = {}): CacheBackend {
  return { name: `local ${dir}`, load: () => load(dir), save: (records, from) => save(dir, records, from, options.mountMaxSize) };
}

async function load(dir: string): Promise<CacheSource> {
  let index: { manifests?: Descriptor[] };
  try {
    index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  } catch (e) {
    throw new CacheFormatError(`${dir}: no cache here (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no index.json' : (e as Error).message})`);
  }
  const desc = index.manifests?.[0];
  if (!desc) throw new CacheFormatError(`${dir}: index.json names no cache manifest`);
  const m = parseManifest(await readFile(blobFile(dir, desc.digest)), desc.mediaType);
  if (m.kind !== 'manifest') throw new CacheFormatError(`${dir}: not a cache manifest`);
  const config: unknown = JSON.parse(await readFile(blobFile(dir, m.manifest.config.digest), 'utf8'));
  const records = decodeRecords(config, dir);
  const files: BlobSource = {
    name: `local ${dir}`,
    local: true,
    fetch: async (d, sink) => {
      await sink.writeBlob(createReadStream(blobFile(dir, d.digest)), d);
    },
  };
  const name = `local ${dir}`;
  const blobs = cacheBlobSource(name, files);
  return { name, kind: 'local', lookup: recordsByKey(records), blobs, ...mountsSource(decodeMounts(config), blobs) };
}

async function save(dir: string, records: readonly CacheRecord[], from: CacheLayers, mountMaxSize: number | undefined): Promise<CacheSaveReport> {
  const mounts = await mountsOf(from, mountMaxSize);
  const encoded = encodeCache(records, mounts.blobs.map((m) => m.blob));
  const manifest = parseManifest(encoded.manifest, MediaType.ociManifest);
  await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  let writtenBytes = 0;
  const write = async (digest: string, source: () => Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream | Buffer) => {
    const file = blobFile(dir, digest);
    if (await stat(file).catch(() => undefined)) return;
    const tmp = `${file}.tmp-${process.pid}`;
    const s = await source();
    if (Buffer.isBuffer(s)) await writeFile(tmp, s);
    else await pipeline(s, createWriteStream(tmp));
    await rename(tmp, file);
    writtenBytes += (await stat(file)).size;
  };
  for (const l of encoded.layers) {
    const layer = from.layer(l.digest) ?? mounts.blobs.find((m) => m.blob.descriptor.digest === l.digest)?.layer ?? { descriptor: l, diffID: '', sources: [] };
    await write(l.digest, () => from.store.openLayer(layer));
  }
  await write(manifest.kind === 'manifest' ? manifest.manifest.config.digest : '', () => encoded.config);
  await write(manifest.digest, () => encoded.manifest);
  await writeFile(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, digest: manifest.digest, size: encoded.manifest.length }] };
  const tmpIndex = path.join(dir, `index.json.tmp-${process.pid}`);
  await writeFile(tmpIndex, JSON.stringify(index));
  await rename(tmpIndex, path.join(dir, 'index.json'));
  // What an earlier export left that this one does not name goes.
  const keep = new Set([manifest.digest, ...(manifest.kind === 'manifest' ? [manifest.manifest.config.digest] : []), ...encoded.layers.map((l) => l.digest)].map((d) => parseDigest(d).hex));
  for (const f of await readdir(path.join(dir, 'blobs', 'sha256'))) if (!keep.has(f)) await rm(path.join(dir, 'blobs', 'sha256', f), { force: true });
  return { uploadedBytes: 0, summary: [`${writtenBytes} bytes written`, ...mounts.notes].join(', ') };
}
