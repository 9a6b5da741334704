// A cache in a directory, as an OCI image layout (`--cache-from type=local,src=DIR`, `--cache-to
// type=local,dest=DIR`): index.json names the cache manifest (format.ts), blobs/ holds it, its config and the
// layers. An export keeps only what this build's records name: the directory does not grow without bound, as
// buildx's local cache does. The build's cache mounts are kept there too, as blobs the config names (mounts.ts).
import { closeSync, createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isDigest, parseDigest } from '../image/digest.js';
import { type Descriptor, parseManifest } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import type { BlobSource } from '../layer/layer.js';
import { fdPath, openInside, openRegularFile, openRoot, readRegularFile } from '../layer/pinned.js';
import {
  type CacheBackend,
  cacheBlobSource,
  type CacheLayers,
  type CacheSaveReport,
  type CacheSource,
  recordsByKey,
} from './backend.js';
import { CacheFormatError, decodeMounts, decodeRecords, encodeCache, parseJSON } from './format.js';
import { mountsOf, mountsSource, type MountsToSave } from './mounts.js';
import type { CacheRecord } from './record.js';

const blobName = (digest: string) => {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
};

/** the most bytes of index.json, a cache manifest or its config that are read */
const maxDocument = 64 << 20;

/**
 * A file of the cache directory, read as it is there: a regular file reached through no symlink (one that leads to
 * a host file is refused, never read and never quoted), a FIFO refused instead of waited on.
 */
function readDocument(dir: string, rel: string): Buffer {
  try {
    return readRegularFile(dir, rel, maxDocument);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new CacheFormatError(
        rel === 'index.json' ? `${dir}: no cache here (no index.json)` : `${dir}: ${rel} is missing`,
      );
    if (code === 'ELOOP' || code === 'EFTYPE' || code === 'EFBIG' || code === 'ENOTDIR')
      throw new CacheFormatError(`${dir}: ${(e as Error).message.replace(/^\//, '')}: not a cache hoist reads`);
    throw e;
  }
}

/** The cache manifest index.json names, and the manifest (the descriptors of everything an export of ours wrote). */
function readLayout(dir: string): { desc: Descriptor; manifest: ReturnType<typeof parseManifest> } {
  const index = parseJSON(readDocument(dir, 'index.json').toString('utf8'), `${dir}/index.json`) as {
    manifests?: unknown;
  } | null;
  const desc = Array.isArray(index?.manifests) ? (index.manifests[0] as Descriptor | undefined) : undefined;
  if (!desc || typeof desc !== 'object' || typeof desc.digest !== 'string' || !isDigest(desc.digest))
    throw new CacheFormatError(`${dir}: index.json names no cache manifest`);
  return { desc, manifest: parseManifest(readDocument(dir, blobName(desc.digest)), desc.mediaType) };
}

/** `type=local,src=DIR` / `dest=DIR`. */
export function localCache(dir: string, options: { mountMaxSize?: number } = {}): CacheBackend {
  return {
    name: `local ${dir}`,
    load: () => load(dir),
    save: (records, from) => save(dir, records, from, options.mountMaxSize),
  };
}

async function load(dir: string): Promise<CacheSource> {
  const { manifest: m } = readLayout(dir);
  if (m.kind !== 'manifest') throw new CacheFormatError(`${dir}: not a cache manifest`);
  const config = parseJSON(
    readDocument(dir, blobName(m.manifest.config.digest)).toString('utf8'),
    `${dir}: the cache config`,
  );
  const records = decodeRecords(config, dir);
  const files: BlobSource = {
    name: `local ${dir}`,
    local: true,
    fetch: async (d, sink) => {
      const { fd } = openRegularFile(dir, blobName(d.digest));
      await sink.writeBlob(createReadStream('', { fd }), d);
    },
  };
  const name = `local ${dir}`;
  const blobs = cacheBlobSource(name, files);
  return { name, kind: 'local', lookup: recordsByKey(records), blobs, ...mountsSource(decodeMounts(config), blobs) };
}

/** Why an export does not write: a path of the layout is a symlink, or not what it should be. */
function notWritable(dir: string, rel: string, what: string): CacheFormatError {
  return new CacheFormatError(
    `${dir}/${rel} is ${what}: hoist writes no cache through links or over other files; remove it, or export to another dest`,
  );
}

/**
 * The files of the layout are written through descriptors of its directories (opened with no symlink on the way),
 * each to a temp name and renamed into place; a link or a non-file where one goes is refused, never followed.
 */
async function save(
  dir: string,
  records: readonly CacheRecord[],
  from: CacheLayers,
  mountMaxSize: number | undefined,
): Promise<CacheSaveReport> {
  const mounts = await mountsOf(from, mountMaxSize);
  const encoded = encodeCache(
    records,
    mounts.blobs.map((m) => m.blob),
  );
  const manifest = parseManifest(encoded.manifest, MediaType.ociManifest);
  await mkdir(dir, { recursive: true });
  let earlier: Set<string> | undefined;
  try {
    const before = readLayout(dir).manifest;
    if (before.kind === 'manifest')
      earlier = new Set([before.digest, before.manifest.config.digest, ...before.manifest.layers.map((l) => l.digest)]);
  } catch {
    // no earlier export of ours (or not one that can be read): nothing of it is removed
  }
  let rootFd: number;
  let blobsFd: number;
  try {
    rootFd = openRoot(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      throw notWritable(path.dirname(dir), path.basename(dir), 'a symbolic link or not a directory');
    throw e;
  }
  try {
    try {
      blobsFd = openInside(dir, 'blobs/sha256', { mkdir: 0o755, noSymlinks: true }).fd;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR')
        throw notWritable(
          dir,
          'blobs/sha256',
          (e as Error).message.includes('symbolic link') ? 'a symbolic link (or a parent is)' : 'not a directory',
        );
      throw e;
    }
    try {
      return await writeLayout(dir, rootFd, blobsFd, encoded, manifest, mounts, from, earlier);
    } finally {
      closeSync(blobsFd);
    }
  } finally {
    closeSync(rootFd);
  }
}

async function writeLayout(
  dir: string,
  rootFd: number,
  blobsFd: number,
  encoded: ReturnType<typeof encodeCache>,
  manifest: ReturnType<typeof parseManifest>,
  mounts: MountsToSave,
  from: CacheLayers,
  earlier: Set<string> | undefined,
): Promise<CacheSaveReport> {
  let writtenBytes = 0;
  /** `name` in the directory open as `dirFd`: written to a temp name, renamed over what is there (a regular file or nothing). */
  const place = async (
    dirFd: number,
    rel: string,
    name: string,
    source: () => Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream | Buffer,
    keepExisting: boolean,
  ) => {
    const target = fdPath(dirFd, name);
    const st = await lstat(target).catch(() => undefined);
    if (st && !st.isFile()) throw notWritable(dir, rel, st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file');
    if (st && keepExisting) return;
    const tmp = fdPath(dirFd, `.${name}.tmp-${process.pid}`);
    await rm(tmp, { force: true });
    try {
      const s = await source();
      await pipeline(Buffer.isBuffer(s) ? Readable.from([s]) : s, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
      await rename(tmp, target);
    } finally {
      await rm(tmp, { force: true });
    }
    writtenBytes += (await lstat(target)).size;
  };
  const blob = (digest: string, source: () => Promise<NodeJS.ReadableStream> | NodeJS.ReadableStream | Buffer) =>
    place(blobsFd, blobName(digest), parseDigest(digest).hex, source, true);
  for (const l of encoded.layers) {
    const layer = from.layer(l.digest) ??
      mounts.blobs.find((m) => m.blob.descriptor.digest === l.digest)?.layer ?? {
        descriptor: l,
        diffID: '',
        sources: [],
      };
    await blob(l.digest, () => from.store.openLayer(layer));
  }
  if (manifest.kind === 'manifest') await blob(manifest.manifest.config.digest, () => encoded.config);
  await blob(manifest.digest, () => encoded.manifest);
  await place(rootFd, 'oci-layout', 'oci-layout', () => Buffer.from('{"imageLayoutVersion":"1.0.0"}'), false);
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{ mediaType: MediaType.ociManifest, digest: manifest.digest, size: encoded.manifest.length }],
  };
  await place(rootFd, 'index.json', 'index.json', () => Buffer.from(JSON.stringify(index)), false);
  // What the earlier export of ours wrote (by its own index) that this one does not name goes; nothing else does.
  const keep = new Set([
    manifest.digest,
    ...(manifest.kind === 'manifest' ? [manifest.manifest.config.digest] : []),
    ...encoded.layers.map((l) => l.digest),
  ]);
  for (const d of earlier ?? []) {
    if (keep.has(d) || parseDigest(d).algorithm !== 'sha256') continue;
    const f = fdPath(blobsFd, parseDigest(d).hex);
    if ((await lstat(f).catch(() => undefined))?.isFile()) await rm(f, { force: true });
  }
  return { uploadedBytes: 0, summary: [`${writtenBytes} bytes written`, ...mounts.notes].join(', ') };
}
