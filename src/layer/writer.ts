// Writes a layer deterministically (DESIGN "layer tar"): PAX, relative names, directories with a trailing '/',
// no root entry, entries in filepath.Walk order (a directory, then its contents), numeric uid/gid without user
// names, mtimes kept but clamped to SOURCE_DATE_EPOCH when set. The tar is hashed (diffID) and compressed (digest)
// in one streaming pass straight into the store.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream } from '../image/digest.js';
import { type Compression, layerMediaType } from '../image/media-types.js';
import type { BlobSink } from './layer.js';
import { chain, compressor, decompressor } from './compression.js';
import { fsPath } from './names.js';
import { type TarHeader, TarWriter } from './tar.js';

export interface LayerEntry {
  header: TarHeader;
  /** a regular file's bytes: a path on disk (streamed), bytes in memory, or what `open` answers when written */
  content?: { path: string } | { bytes: Buffer } | { open(): Buffer | AsyncIterable<Buffer> };
}

export interface WrittenLayer {
  mediaType: string;
  digest: string;
  size: number;
  diffID: string;
  /** the entries' headers as written (normalised, in tar order) */
  headers: TarHeader[];
}

/** A layer hashed (its diffID and headers known) whose compressed blob is still being written. */
export interface LayerInProgress {
  diffID: string;
  headers: TarHeader[];
  written: Promise<WrittenLayer>;
}

export interface LayerOptions {
  compression?: Compression;
  oci?: boolean;
  /** seconds; newer mtimes are clamped to it */
  sourceDateEpoch?: number;
  /**
   * gzip's deflate level (default 6, as BuildKit's and docker's push use): 0 for a layer no image of the build
   * publishes and no cache exports (solver.ts layerLevel), which only this store keeps: its tar in stored deflate
   * blocks, compressed again (compressAgain) if a later build publishes it.
   */
  level?: number;
}

/** filepath.Walk order: compare path components, so `a/b` comes before `a-b`. */
export function walkOrder(a: string, b: string): number {
  const x = a.replace(/\/$/, '').split('/');
  const y = b.replace(/\/$/, '').split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

function normalise(e: LayerEntry, epoch: number | undefined): LayerEntry {
  let name = e.header.name.replace(/^\/+/, '').replace(/\/+$/, '');
  if (e.header.type === 'directory') name += '/';
  const mtime = Math.floor(epoch !== undefined ? Math.min(e.header.mtime, epoch) : e.header.mtime);
  return { ...e, header: { ...e.header, name, mtime } };
}

/** Files up to this size are read whole. */
const smallFile = 1 << 20;

/** The entries normalised and in tar order; the same name twice is an error. */
function ordered(entries: readonly LayerEntry[], options: LayerOptions): LayerEntry[] {
  const sorted = entries
    .map((e) => normalise(e, options.sourceDateEpoch))
    .filter((e) => e.header.name !== '/' && e.header.name !== '');
  sorted.sort((a, b) => walkOrder(a.header.name, b.header.name));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].header.name === sorted[i - 1].header.name)
      throw new Error(`layer has ${sorted[i].header.name} twice`);
  }
  return sorted;
}

/** Feeds the entries (already in order) to a tar writer; its stream fails with the first error. */
function feed(tar: TarWriter, sorted: readonly LayerEntry[]): Promise<void> {
  const write = (async () => {
    for (const e of sorted) {
      const c = e.content;
      // A small file is read at once, on this thread: a read through the thread pool would queue behind the
      // deflate of blocks already under way, and the compressor would wait for the tar it is fed.
      const body =
        c === undefined
          ? undefined
          : 'bytes' in c
            ? c.bytes
            : 'open' in c
              ? c.open()
              : e.header.size <= smallFile
                ? readFileSync(fsPath(c.path))
                : createReadStream(fsPath(c.path), { highWaterMark: 1 << 20 });
      await tar.entry(e.header, body as Buffer | AsyncIterable<Buffer> | undefined);
    }
    await tar.finish();
  })();
  write.catch((err: Error) => tar.stream.destroy(err));
  return write;
}

export async function writeLayer(
  store: BlobSink,
  entries: readonly LayerEntry[],
  options: LayerOptions & { diffID?: string } = {},
): Promise<WrittenLayer> {
  const compression = options.compression ?? 'gzip';
  const sorted = ordered(entries, options);
  const tar = new TarWriter();
  // With the diffID known (hashLayer), the tar must come out the same: files changed since are caught here.
  const diff = new DigestStream(
    options.diffID ? { digest: options.diffID, where: `layer ${options.diffID}` } : undefined,
  );
  const stored = store.writeBlob(chain(tar.stream, diff, compressor(compression, options.level)));
  const [blob] = await Promise.all([stored, feed(tar, sorted)]);
  return {
    mediaType: layerMediaType(options.oci ?? false, compression),
    digest: blob.digest,
    size: blob.size,
    diffID: diff.digest,
    headers: sorted.map((e) => e.header),
  };
}

/**
 * A gzip layer blob (`blob`, its bytes) compressed again at the default level, its tar checked against `diffID` on
 * the way: a layer kept in stored deflate blocks (LayerOptions.level 0) that an image or a cache now publishes.
 */
export async function compressAgain(
  store: BlobSink,
  blob: Readable,
  diffID: string,
): Promise<{ digest: string; size: number }> {
  return store.writeBlob(
    chain(
      blob,
      decompressor('gzip'),
      new DigestStream({ digest: diffID, where: `layer ${diffID}` }),
      compressor('gzip'),
    ),
  );
}

/** The layer's diffID and headers, from its tar hashed without compressing it (a fraction of writeLayer's work). */
export async function hashLayer(
  entries: readonly LayerEntry[],
  options: LayerOptions = {},
): Promise<{ diffID: string; headers: TarHeader[] }> {
  const sorted = ordered(entries, options);
  const tar = new TarWriter();
  const diff = new DigestStream();
  const hashed = pipeline(tar.stream, diff, new Writable({ write: (_c, _e, cb) => cb() }));
  await Promise.all([hashed, feed(tar, sorted)]);
  return { diffID: diff.digest, headers: sorted.map((e) => e.header) };
}

/**
 * The layer's tar written whole to `tmp` (hashed on the way: its diffID and headers known when this returns), then
 * compressed into the store from that file while the build goes on: the files it was made of may change as soon as
 * this returns (a no-mount step's root, where the next step runs).
 */
export async function spoolLayer(
  store: BlobSink,
  entries: readonly LayerEntry[],
  tmp: string,
  options: LayerOptions = {},
): Promise<LayerInProgress> {
  if (options.level === 0) {
    // kept in stored blocks: written into the store as it is hashed, with no compression left for later
    const w = await writeLayer(store, entries, options);
    return { diffID: w.diffID, headers: w.headers, written: Promise.resolve(w) };
  }
  const compression = options.compression ?? 'gzip';
  const sorted = ordered(entries, options);
  const tar = new TarWriter();
  const diff = new DigestStream();
  await Promise.all([pipeline(tar.stream, diff, createWriteStream(tmp, { mode: 0o600 })), feed(tar, sorted)]);
  const headers = sorted.map((e) => e.header);
  const written = (async (): Promise<WrittenLayer> => {
    try {
      const blob = await store.writeBlob(chain(createReadStream(tmp), compressor(compression, options.level)));
      return {
        mediaType: layerMediaType(options.oci ?? false, compression),
        digest: blob.digest,
        size: blob.size,
        diffID: diff.digest,
        headers,
      };
    } finally {
      await rm(tmp, { force: true });
    }
  })();
  written.catch(() => undefined); // the caller awaits it
  return { diffID: diff.digest, headers, written };
}
