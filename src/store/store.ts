// The local content-addressed store (the embedded default: ~/.cache/hoist; `--store DIR` or HOIST_STORE):
//   blobs/sha256/<hex>      every blob by digest, written atomically (temp file, fsync, rename) after verification
//   images/<sha256 of name> one record per image name: the name and the descriptor of its manifest or index
//   snapshots/<diffID hex>/ unpacked layers for RUN, each complete before it is renamed into place
//   lowers/<diffID hex>.tar a layer's uncompressed tar, and .erofs its EROFS index (layer/erofs.ts): RUN's lower
//                           where EROFS can be mounted, written in the pass that checks the layer; the index last
//   indexes/<diffID hex>.json a layer's tar headers, so that a filesystem index is built without reading layers
//   records/<key hex>.json  the build cache: a step's key and its result (src/cache/record.ts); mtime: last use
//   verified/<blob hex>     the diffID hoist itself found the blob to decompress to (a cache's record may lie about it)
//   resolved/<hash>.json    the manifest a base (name and platform) last resolved to here, and when (its manifest and
//                           config are blobs): a local rebuild within a minute does not ask the registry again
//   leases/<pid>-<n>        which processes are using the store since when (garbage collection spares their work)
//   tmp/                    partial writes
//   sizes.json              the bytes of each unpacked snapshot, walked once (store/gc.ts measure)
// Two processes may share a store: writes are atomic renames of verified content, and `prune` holds gc.lock and
// spares anything newer than the oldest live lease. Using a blob touches its mtime (least recently used first).
// What survives a kill -9: everything renamed into place (nothing is named before it is whole). What survives a power
// loss — the one fsync rule: a file a build takes as whole without reading it through a check is on the disk before
// it is named. Blobs are fsynced (one whose size is right is taken as present); a lower's tar and EROFS index are (the
// kernel mounts them unread). Records, layer indexes and notes need not be: each is parsed when read, and one a crash
// cut short reads as absent. The one exception, a directory of files: an unpacked snapshot is not synced (a fsync a
// file would cost more than the unpacking; docker's overlay2 and containerd's overlayfs snapshotter do not either):
// `hoist store check` holds each to its layer index's files and sizes, and --repair removes one a crash cut short.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream, digestOf, parseDigest, verifyBytes } from '../image/digest.js';
import type { Descriptor } from '../image/manifest.js';
import { layerCompression } from '../image/media-types.js';
import type { BlobSink, BlobSource, Layer } from '../layer/layer.js';
import { type CacheRecord, parseRecord } from '../cache/record.js';
import { chain, Coalesce, CompressionError, decompressed } from '../layer/compression.js';
import { extractLayer, type ExtractReport } from '../layer/extract.js';
import { ErofsIndexBuilder } from '../layer/erofs.js';
import { scanTar, TarError, type TarHeader } from '../layer/tar.js';
import { onInterrupt, removeSync } from '../exec/cleanup.js';
import { Limiter } from '../registry/limit.js';
import { withFileLock } from './lock.js';
import { timed } from '../profile.js';

export interface ImageRecord {
  /** the full normalised reference (`docker.io/library/ubuntu:latest`, or `name@sha256:…` for digest-only) */
  name: string;
  /** the manifest or index the name points at */
  target: Descriptor;
  /** when the record was written (RFC 3339) */
  recorded: string;
  /** the registry repository it was pulled from, where blobs that are not here yet can be fetched */
  origin?: string;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

export function defaultStoreDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOIST_STORE) return env.HOIST_STORE;
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || homedir(), '.cache');
  return path.join(cache, 'hoist');
}

let tmpCounter = 0;

export class Store {
  private leaseFile: string | undefined;
  /** what this process downloaded into the store (from registries and remote caches; a local directory is no download) */
  readonly fetched = { blobs: 0, bytes: 0 };

  private constructor(readonly root: string) {}

  /** Opens (creating) a store and takes a lease on it until `close()`. */
  static async open(dir = defaultStoreDir()): Promise<Store> {
    const s = new Store(path.resolve(dir));
    for (const d of [
      'blobs/sha256',
      'blobs/sha512',
      'images',
      'snapshots',
      'lowers',
      'indexes',
      'records',
      'leases',
      'tmp',
    ])
      await mkdir(path.join(s.root, d), { recursive: true });
    s.leaseFile = path.join(s.root, 'leases', `${process.pid}-${Date.now()}-${tmpCounter++}`);
    await withFileLock(s.gcLock, () => writeFile(s.leaseFile as string, String(process.pid)));
    return s;
  }

  async close(): Promise<void> {
    if (this.leaseFile) await rm(this.leaseFile, { force: true });
    this.leaseFile = undefined;
  }

  get gcLock(): string {
    return path.join(this.root, 'gc.lock');
  }

  tmpPath(): string {
    return path.join(this.root, 'tmp', `${process.pid}-${Date.now()}-${tmpCounter++}`);
  }

  /**
   * A small file of the store (a record, a note, an index) written whole: into tmp, then renamed into place. An
   * interrupt on the way leaves nothing in tmp, and never a part of the file in place.
   */
  async writeWhole(file: string, data: string): Promise<void> {
    const tmp = this.tmpPath();
    const forget = onInterrupt(() => removeSync(tmp));
    try {
      await writeFile(tmp, data);
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    } finally {
      forget();
    }
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.root, 'blobs', algorithm, hex);
  }

  /** The blob's size when present; touches it (it was just used). */
  async hasBlob(digest: string): Promise<number | undefined> {
    const p = this.blobPath(digest);
    try {
      const st = await stat(p);
      const now = new Date();
      await utimes(p, now, now).catch(() => undefined);
      return st.size;
    } catch {
      return undefined;
    }
  }

  /**
   * Whether the store holds this blob whole: present with the descriptor's size (a download cut short by a crash
   * or a full disk has another). A blob of the right size that is still damaged fails its digest where it is read.
   */
  async hasIntactBlob(desc: { digest: string; size: number }): Promise<boolean> {
    const size = await this.hasBlob(desc.digest);
    return size !== undefined && (desc.size === undefined || size === desc.size);
  }

  /** Whether the stored bytes of a blob still hash to its digest (read whole: for a blob suspected damaged). */
  async blobIntact(digest: string): Promise<boolean> {
    try {
      for await (const _ of this.openBlob(digest)) void _;
      return true;
    } catch {
      return false;
    }
  }

  async removeBlob(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  /**
   * A blob as a verified stream, from the store: fetched from `sources` first (and kept: the store is their
   * read-through cache) when the store lacks it or holds it cut short. The sources are tried in order; one that
   * fails gives way to the next.
   */
  async openBlobFrom(desc: Descriptor, sources: readonly BlobSource[]): Promise<Readable> {
    await this.fetchMissing(desc, sources);
    return this.openBlob(desc.digest);
  }

  /**
   * Makes sure the store holds the blob whole, fetching it from `sources` when it does not (see openBlobFrom).
   * `sink`: what the sources write into (the store, or a tee of it that also unpacks: snapshotLayer).
   */
  async fetchMissing(desc: Descriptor, sources: readonly BlobSource[], sink: BlobSink = this): Promise<void> {
    if (await this.hasIntactBlob(desc)) return;
    const held = await this.hasBlob(desc.digest);
    if (sources.length === 0) {
      if (held === undefined)
        throw new StoreError(`blob ${desc.digest} is neither in the store nor anywhere it could be fetched from`);
      throw new StoreError(
        `blob ${desc.digest} in the store ${this.root} is damaged (its size is not ${desc.size}) and no registry has it: run hoist prune and build again`,
      );
    }
    if (held !== undefined) await this.removeBlob(desc.digest);
    let failure: unknown;
    for (const source of sources) {
      try {
        await source.fetch(desc, sink);
        if (!source.local) {
          this.fetched.blobs++;
          this.fetched.bytes += desc.size;
        }
        return;
      } catch (e) {
        failure = e;
      }
    }
    throw failure;
  }

  async openLayer(layer: Layer): Promise<Readable> {
    await layer.ready;
    return this.openBlobFrom(layer.descriptor, layer.sources);
  }

  /**
   * `use` over a layer's bytes (opened when `use` asks: a snapshot already unpacked needs none). When reading fails
   * and the stored blob turns out damaged (it no longer hashes to its digest: a disk error, a file changed by hand),
   * it is fetched again from the layer's sources and `use` runs once more, instead of failing on a store it can mend.
   */
  async useLayer<T>(layer: Layer, use: (open: () => Promise<Readable>) => Promise<T>): Promise<T> {
    const open = () => this.openLayer(layer);
    try {
      return await use(open);
    } catch (e) {
      if (layer.sources.length === 0) throw e;
      const digest = layer.descriptor.digest;
      if ((await this.hasBlob(digest)) === undefined || (await this.blobIntact(digest))) throw e;
      await this.removeBlob(digest);
      return use(open);
    }
  }

  /**
   * Writes a blob from a stream or bytes. With `expected` the content must hash to it (and have its size);
   * without, the digest is computed. Nothing is visible under the digest until it is complete and verified.
   */
  async writeBlob(
    source: Readable | Uint8Array,
    expected?: { digest: string; size?: number },
    options: { sync?: boolean; drainWhenHeld?: boolean } = {},
  ): Promise<{ digest: string; size: number }> {
    const held = expected ? await this.hasBlob(expected.digest) : undefined;
    if (expected && held !== undefined && (expected.size === undefined || held === expected.size)) {
      // `drainWhenHeld`: the stream feeds another reader too (teeSink): read to its end for it, not cut short.
      if (source instanceof Readable && options.drainWhenHeld)
        await pipeline(source, new Writable({ write: (_c, _e, cb) => cb() }));
      else if (source instanceof Readable) source.destroy();
      return { digest: expected.digest, size: held };
    }
    // A stream destroyed while the store was asked (a download given up: its layer refused by a reader of the same
    // bytes) has nothing more to give, and a pipeline over it would wait forever.
    if (source instanceof Readable && source.destroyed)
      throw new StoreError(
        `${expected ? `blob ${expected.digest}: ` : ''}the download was stopped before it was written`,
      );
    const tmp = this.tmpPath();
    const verify = new DigestStream(
      expected ? { digest: expected.digest, size: expected.size, where: `blob ${expected.digest}` } : undefined,
    );
    // An interrupted download leaves no partial blob behind.
    const forget = onInterrupt(() => removeSync(tmp));
    try {
      const input = source instanceof Readable ? source : Readable.from([Buffer.from(source)]);
      await pipeline(input, verify, createWriteStream(tmp, { mode: 0o644 }));
      if (options.sync !== false) await syncFile(tmp);
      await rename(tmp, this.blobPath(verify.digest));
      return { digest: verify.digest, size: verify.size };
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    } finally {
      forget();
    }
  }

  /** A blob's content as a stream that fails at its end if the bytes on disk no longer match their digest. */
  openBlob(digest: string): Readable {
    const p = this.blobPath(digest);
    const verify = new DigestStream({ digest, where: `stored blob ${digest} (${p})` });
    const file = createReadStream(p, { highWaterMark: 1 << 20 });
    file.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') verify.destroy(new StoreError(`blob ${digest} is not in the store ${this.root}`));
    });
    return chain(file, verify);
  }

  async readBlob(digest: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new StoreError(`blob ${digest} is not in the store ${this.root}`);
      throw e;
    }
    verifyBytes(bytes, digest, `stored blob ${digest}`);
    return bytes;
  }

  private imageRecordPath(name: string): string {
    return path.join(this.root, 'images', `${digestOf(name).slice(7)}.json`);
  }

  async putImage(name: string, target: Descriptor, origin?: string): Promise<ImageRecord> {
    const record: ImageRecord = { name, target, recorded: new Date().toISOString(), ...(origin ? { origin } : {}) };
    await this.writeWhole(this.imageRecordPath(name), `${JSON.stringify(record)}\n`);
    return record;
  }

  async getImage(name: string): Promise<ImageRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.imageRecordPath(name), 'utf8')) as ImageRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async removeImage(name: string): Promise<boolean> {
    const p = this.imageRecordPath(name);
    const had = await stat(p).then(
      () => true,
      () => false,
    );
    await rm(p, { force: true });
    return had;
  }

  async listImages(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const f of await readdir(path.join(this.root, 'images'))) {
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(await readFile(path.join(this.root, 'images', f), 'utf8')) as ImageRecord);
      } catch {
        // a record being replaced right now; the next listing sees it
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  cacheRecordPath(key: string): string {
    return path.join(this.root, 'records', `${parseDigest(key).hex}.json`);
  }

  /** The cache record of a step's key, if the store has it (touched: it was just used). */
  async readRecord(key: string): Promise<CacheRecord | undefined> {
    const p = this.cacheRecordPath(key);
    const text = await readFile(p, 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    let record: CacheRecord | undefined;
    try {
      record = parseRecord(JSON.parse(text));
    } catch {
      record = undefined;
    }
    if (!record || record.key !== key) return undefined; // damaged: as if absent, and replaced by the next write
    const now = new Date();
    await utimes(p, now, now).catch(() => undefined);
    return record;
  }

  async writeRecord(record: CacheRecord): Promise<void> {
    await this.writeWhole(this.cacheRecordPath(record.key), JSON.stringify(record));
  }

  private verifiedPath(digest: string): string | undefined {
    return /^sha256:[0-9a-f]{64}$/.test(digest) ? path.join(this.root, 'verified', digest.slice(7)) : undefined;
  }

  /**
   * Notes that the blob `digest` decompresses to the tar `diffID`: hoist wrote the layer itself, or read it whole
   * and checked both. A layer a cache names is pushed by reference (never read) only once its pair is noted here.
   */
  async noteVerified(digest: string, diffID: string): Promise<void> {
    const p = this.verifiedPath(digest);
    if (!p || !/^sha256:[0-9a-f]{64}$/.test(diffID) || (await this.isVerified(digest, diffID))) return;
    await mkdir(path.dirname(p), { recursive: true });
    await this.writeWhole(p, diffID);
  }

  /** Whether hoist has found the blob `digest` to decompress to `diffID` (noteVerified). */
  async isVerified(digest: string, diffID: string): Promise<boolean> {
    const p = this.verifiedPath(digest);
    return p !== undefined && (await readFile(p, 'utf8').catch(() => undefined)) === diffID;
  }

  private resolvedPath(name: string): string {
    return path.join(this.root, 'resolved', `${digestOf(name).slice(7)}.json`);
  }

  /** Notes what the base `name` (a reference and a platform) resolved to: its manifest's and its config's bytes. */
  async noteResolved(
    name: string,
    manifest: { digest: string; mediaType: string; bytes: Uint8Array },
    config: { digest: string; bytes: Uint8Array },
  ): Promise<void> {
    // (not synced: a manifest or config lost to a crash is one that does not hash to its name, and is resolved again)
    await this.writeBlob(manifest.bytes, { digest: manifest.digest, size: manifest.bytes.length }, { sync: false });
    await this.writeBlob(config.bytes, { digest: config.digest, size: config.bytes.length }, { sync: false });
    await mkdir(path.join(this.root, 'resolved'), { recursive: true });
    await this.writeWhole(
      this.resolvedPath(name),
      JSON.stringify({ name, digest: manifest.digest, mediaType: manifest.mediaType, at: Date.now() }),
    );
  }

  /** What the base `name` resolved to here within the last `maxAgeMs`, if anything. */
  async recentlyResolved(name: string, maxAgeMs: number): Promise<{ digest: string; mediaType: string } | undefined> {
    try {
      const r = JSON.parse(await readFile(this.resolvedPath(name), 'utf8')) as {
        name?: unknown;
        digest?: unknown;
        mediaType?: unknown;
        at?: unknown;
      };
      const age = Date.now() - Number(r.at);
      if (
        r.name !== name ||
        typeof r.digest !== 'string' ||
        typeof r.mediaType !== 'string' ||
        !(age >= 0 && age <= maxAgeMs)
      )
        return undefined;
      return { digest: r.digest, mediaType: r.mediaType };
    } catch {
      return undefined;
    }
  }

  indexPath(diffID: string): string {
    return path.join(this.root, 'indexes', `${parseDigest(diffID).hex}.json`);
  }

  /** The tar headers of the layer with this diffID, as recorded when it was first read or written. */
  async readLayerIndex(diffID: string): Promise<readonly TarHeader[] | undefined> {
    // A layer being unpacked (or indexed for EROFS) writes its headers' index when done: waiting for it spares
    // reading the layer a second time.
    await this.unpacked(diffID);
    const kept = this.headersKept.get(diffID);
    if (kept) return kept;
    const text = await readFile(this.indexPath(diffID), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      const doc = JSON.parse(text) as {
        version: number;
        headers: (Omit<TarHeader, 'xattrs'> & { xattrs?: Record<string, string> })[];
      };
      if (doc.version !== 1 || !Array.isArray(doc.headers)) return undefined;
      return doc.headers.map((h) =>
        h.xattrs
          ? {
              ...h,
              xattrs: Object.fromEntries(Object.entries(h.xattrs).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
            }
          : (h as TarHeader),
      );
    } catch {
      return undefined; // a damaged index is read from the layer again
    }
  }

  /**
   * The headers of the layers this process read or wrote, as they were: a later step's index of the base needs
   * no second read of its file (the Debian base's: 40 ms of JSON). Nothing changes a header once read.
   */
  private readonly headersKept = new Map<string, readonly TarHeader[]>();

  /** Keeps a layer's headers in memory, and as its index where the store has none yet. */
  async keepLayerIndex(diffID: string, headers: readonly TarHeader[]): Promise<void> {
    this.headersKept.set(diffID, headers);
    if (!(await stat(this.indexPath(diffID)).catch(() => undefined))) await this.writeLayerIndex(diffID, headers);
  }

  /**
   * The tar headers of a lazy layer: its index when there is one, else read from its blob, checked against its
   * diffID and kept as its index — in the same pass that downloads and stores the blob when the store lacks it (one
   * read of the bytes: a layer a cache gave, whose tree a later step needs, cost a download, a write and two reads).
   */
  layerHeaders(layer: Layer): Promise<readonly TarHeader[]> {
    const { diffID } = layer;
    const running = this.readingHeaders.get(diffID);
    if (running) return running;
    const p = this.readHeadersOf(layer).finally(() => this.readingHeaders.delete(diffID));
    this.readingHeaders.set(diffID, p);
    return p;
  }

  private readonly readingHeaders = new Map<string, Promise<readonly TarHeader[]>>();

  private async readHeadersOf(layer: Layer): Promise<readonly TarHeader[]> {
    const { diffID } = layer;
    const known = await this.readLayerIndex(diffID);
    if (known) return known;
    return this.fromLayer(layer, async (tar) => {
      const headers: TarHeader[] = [];
      try {
        await scanTar(
          chain(tar, new DigestStream({ digest: diffID, where: `layer ${diffID}` })),
          (h) => void headers.push(h),
        );
      } catch (e) {
        tar.destroy();
        if (e instanceof TarError || e instanceof CompressionError) e.message = `layer ${diffID}: ${e.message}`;
        throw e;
      }
      return async () => {
        await this.keepLayerIndex(diffID, headers);
        return headers;
      };
    });
  }

  async writeLayerIndex(diffID: string, headers: readonly TarHeader[]): Promise<void> {
    this.headersKept.set(diffID, headers);
    const doc = {
      version: 1,
      headers: headers.map((h) =>
        h.xattrs
          ? { ...h, xattrs: Object.fromEntries(Object.entries(h.xattrs).map(([k, v]) => [k, v.toString('base64')])) }
          : h,
      ),
    };
    await this.writeWhole(this.indexPath(diffID), JSON.stringify(doc));
  }

  snapshotPath(diffID: string): string {
    return path.join(this.root, 'snapshots', parseDigest(diffID).hex);
  }

  /**
   * A directory that already holds the unpacked layer with this diffID (the upper dir of the RUN step that made
   * it) becomes its snapshot, moved into place; if the snapshot exists already, the directory is removed.
   */
  async adoptSnapshot(diffID: string, dir: string): Promise<void> {
    await rename(dir, this.snapshotPath(diffID)).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
      await rm(dir, { recursive: true, force: true });
    });
  }

  /**
   * The unpacked layer with this diffID, extracted from `open()` (the uncompressed tar) when not there yet. The
   * tar is verified against the diffID while it is unpacked; a snapshot appears only when complete. One layer is
   * unpacked once at a time in this process: a second caller waits for the first.
   */
  snapshot(
    diffID: string,
    open: () => Promise<Readable> | Readable,
    options: SnapshotOptions = { whiteouts: 'overlay' },
  ): Promise<Snapshot> {
    return this.once(diffID, () => this.unpackNew(diffID, open, options));
  }

  /**
   * The unpacked snapshot of a lazy layer. When the store lacks its blob, the download is unpacked as it arrives,
   * in the same pass that stores the blob (one read of the bytes, the transfer overlapping the unpacking); the
   * snapshot appears only when the blob's digest and the diffID both check.
   */
  snapshotLayer(layer: Layer, options: SnapshotOptions = { whiteouts: 'overlay' }): Promise<Snapshot> {
    const { diffID } = layer;
    return this.once(diffID, () =>
      this.fromLayer(layer, async (tar) => {
        const tmp = this.tmpPath();
        try {
          const report = await this.unpackTo(tmp, diffID, tar, options);
          return () => this.commitSnapshot(tmp, diffID, report);
        } catch (e) {
          await rm(tmp, { recursive: true, force: true });
          throw e;
        }
      }),
    );
  }

  /** Where a layer's tar and its EROFS index are kept. */
  lowerPaths(diffID: string): ErofsLower {
    const base = path.join(this.root, 'lowers', parseDigest(diffID).hex);
    return { tar: `${base}.tar`, index: `${base}.erofs` };
  }

  /**
   * A lazy layer as RUN's lower where EROFS indexes can be mounted: its snapshot directory when there is one (the
   * upper dir of the RUN step that made it), else its uncompressed tar and EROFS index, written when missing in the
   * pass that checks the layer (and, when the store lacks the blob, downloads it), never an unpacked file.
   */
  lowerLayer(layer: Layer): Promise<Snapshot | ErofsLower> {
    const { diffID } = layer;
    const running = this.indexing.get(diffID);
    if (running) return running;
    const p = (async (): Promise<Snapshot | ErofsLower> => {
      if (this.unpacking.has(diffID) || (await this.hasSnapshot(diffID))) return this.snapshotLayer(layer);
      const lower = this.lowerPaths(diffID);
      if (
        await stat(lower.index).then(
          () => true,
          () => false,
        )
      ) {
        const now = new Date();
        await utimes(lower.index, now, now).catch(() => undefined);
        return lower;
      }
      return this.unpackSlots.run(() => this.fromLayer(layer, (tar) => this.indexTo(diffID, tar)));
    })().finally(() => this.indexing.delete(diffID));
    this.indexing.set(diffID, p);
    return p;
  }

  private readonly indexing = new Map<string, Promise<Snapshot | ErofsLower>>();

  /**
   * What `make` makes of a lazy layer's uncompressed tar (it answers how to commit it once the tar checked), from
   * the stored blob, or from the download in the same pass that stores it.
   */
  private async fromLayer<T>(layer: Layer, make: (tar: Readable) => Promise<() => Promise<T>>): Promise<T> {
    const fromStore = () =>
      timed(
        'unpack',
        () =>
          this.useLayer(layer, async (open) => {
            const commit = await make((await decompressed(await open())).stream);
            const made = await commit();
            await this.noteVerified(layer.descriptor.digest, layer.diffID);
            return made;
          }),
        () => layer.descriptor.size,
      );
    await layer.ready;
    if (layer.sources.length === 0 || (await this.hasIntactBlob(layer.descriptor))) return fromStore();
    return timed(
      'pull',
      async () => {
        let done: { made: T } | undefined;
        // Each attempt (a source's retry, the next source) makes it afresh.
        const sink = this.teeSink(layer, async (tar) => {
          const commit = await make(tar);
          return async () => {
            done = { made: await commit() };
          };
        });
        try {
          await this.fetchMissing(layer.descriptor, layer.sources, sink);
        } catch (e) {
          // Another user of the store may have stored the blob meanwhile (the write then stops short): made from that.
          if (!(await this.hasIntactBlob(layer.descriptor))) throw e;
        }
        return done ? done.made : fromStore();
      },
      () => layer.descriptor.size,
    );
  }

  /**
   * Writes a layer's uncompressed tar (verified against its diffID) and, from the same pass, its EROFS index and
   * its headers' index; answers how to move them into place.
   */
  private async indexTo(diffID: string, tar: Readable): Promise<() => Promise<ErofsLower>> {
    const tmp = { tar: this.tmpPath(), index: this.tmpPath() };
    const drop = () => {
      removeSync(tmp.tar);
      removeSync(tmp.index);
    };
    const forget = onInterrupt(drop);
    const out = createWriteStream(tmp.tar, { mode: 0o644 });
    try {
      const verified = chain(tar, new DigestStream({ digest: diffID, where: `layer ${diffID}` }));
      const failed = new Promise<never>((_, reject) => out.once('error', reject));
      failed.catch(() => undefined);
      let size = 0;
      async function* written(): AsyncGenerator<Buffer> {
        for await (const chunk of verified as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (!out.write(chunk)) await Promise.race([new Promise<void>((r) => out.once('drain', () => r())), failed]);
          yield chunk;
        }
      }
      const builder = new ErofsIndexBuilder();
      const headers: TarHeader[] = [];
      await scanTar(written(), (header, offset) => {
        headers.push(header);
        builder.add(header, offset);
      });
      out.end();
      await Promise.race([new Promise<void>((r) => out.once('finish', () => r())), failed]);
      await writeFile(tmp.index, builder.finish(size));
      // The kernel reads the pair as it is, unchecked: both on the disk before they are named (the fsync rule above).
      await syncFile(tmp.tar);
      await syncFile(tmp.index);
      await this.keepLayerIndex(diffID, headers);
      return async () => {
        const final = this.lowerPaths(diffID);
        // The tar first: an index is there only with its tar.
        await rename(tmp.tar, final.tar);
        await rename(tmp.index, final.index);
        return final;
      };
    } catch (e) {
      out.destroy();
      tar.destroy();
      drop();
      if (e instanceof TarError || e instanceof CompressionError) e.message = `layer ${diffID}: ${e.message}`;
      throw e;
    } finally {
      forget();
    }
  }

  /**
   * A sink for a lazy layer's download that stores the blob (checked against its digest) and, in the same pass,
   * hands its uncompressed tar to `use`, after checking that it is compressed as the layer's media type says: the
   * blob is kept only when both succeed, and then what `use` answered runs. A cache's record can lie about a layer's
   * compression and diffID as well as its bytes; `use` checks the diffID.
   */
  private teeSink(layer: Layer, use: (tar: Readable) => Promise<() => Promise<void>>): BlobSink {
    return {
      writeBlob: async (source, expected) => {
        const tar = new PassThrough();
        const tapped = new Tap(tar);
        // The failures reach the two promises below; these listeners only keep an error that comes before
        // either reader is attached (the blob write checks the store first) from being an unhandled event.
        tapped.on('error', () => undefined);
        tar.on('error', () => undefined);
        source.on('error', (e) => tapped.destroy(e));
        source.pipe(new Coalesce()).pipe(tapped);
        const used = layerTar(layer, tar).then(use);
        // Another reader of the same layer may store the blob while this download is on its way (two steps
        // needing the base at once): the tar still reads to its end (a destroyed tee was a premature close).
        const written = this.writeBlob(tapped, expected, { drainWhenHeld: true });
        try {
          const [blob, then] = await Promise.all([written, used]);
          await then();
          await this.noteVerified(layer.descriptor.digest, layer.diffID);
          return blob;
        } catch (e) {
          source.destroy();
          tapped.destroy();
          const [blob] = await Promise.allSettled([written, used]);
          // The bytes hashed to their digest but are not the layer the record says: not kept under it.
          if (blob.status === 'fulfilled' && expected) await this.removeBlob(expected.digest);
          throw e;
        }
      },
    };
  }

  /**
   * A lazy layer's blob fetched into the store from its sources (when the store lacks it), checked as it arrives
   * against its digest, its media type's compression and its diffID.
   */
  async fetchLayerChecked(layer: Layer): Promise<void> {
    await layer.ready;
    if (await this.hasIntactBlob(layer.descriptor)) {
      // held already (another image's layer, an earlier build): its diffID checked here, not taken from the record
      if (await this.isVerified(layer.descriptor.digest, layer.diffID)) return;
      await checkDiffID(layer, await layerTar(layer, this.openBlob(layer.descriptor.digest)));
      await this.noteVerified(layer.descriptor.digest, layer.diffID);
      return;
    }
    const sink = this.teeSink(layer, async (tar) => {
      await checkDiffID(layer, tar);
      return async () => undefined;
    });
    await this.fetchMissing(layer.descriptor, layer.sources, sink);
  }

  private readonly unpacking = new Map<string, Promise<Snapshot>>();

  /** Waits for the unpacking of this layer that is under way, if there is one (its outcome is not this caller's). */
  async unpacked(diffID: string): Promise<void> {
    await this.unpacking.get(diffID)?.catch(() => undefined);
    await this.indexing.get(diffID)?.catch(() => undefined);
  }
  /** layers unpacked at once: more overlaps downloads, decompression (in the thread pool) and disk waits */
  private readonly unpackSlots = new Limiter(3);

  /** `work` for a diffID, unless its snapshot is there already or this process is making it: then that one. */
  private once(diffID: string, work: () => Promise<Snapshot>): Promise<Snapshot> {
    const running = this.unpacking.get(diffID);
    if (running) return running;
    const p = (async () => {
      const final = this.snapshotPath(diffID);
      if (await this.hasSnapshot(diffID)) {
        const now = new Date();
        await utimes(final, now, now).catch(() => undefined);
        return { path: final };
      }
      return this.unpackSlots.run(work);
    })().finally(() => this.unpacking.delete(diffID));
    this.unpacking.set(diffID, p);
    return p;
  }

  private async unpackNew(
    diffID: string,
    open: () => Promise<Readable> | Readable,
    options: SnapshotOptions,
  ): Promise<Snapshot> {
    const tmp = this.tmpPath();
    return this.commitSnapshot(tmp, diffID, await this.unpackTo(tmp, diffID, await open(), options));
  }

  private async hasSnapshot(diffID: string): Promise<boolean> {
    return stat(this.snapshotPath(diffID)).then(
      () => true,
      () => false,
    );
  }

  /** Unpacks an uncompressed layer tar into `tmp`, verified against its diffID; keeps its index. */
  private async unpackTo(
    tmp: string,
    diffID: string,
    tar: Readable,
    options: SnapshotOptions,
  ): Promise<ExtractReport | undefined> {
    if (await this.hasSnapshot(diffID)) {
      tar.resume();
      return undefined;
    }
    // An interrupted unpacking leaves no partial snapshot behind.
    const forget = onInterrupt(() => removeSync(tmp));
    try {
      const verify = new DigestStream({ digest: diffID, where: `layer ${diffID}` });
      const headers: TarHeader[] = [];
      const report = await extractLayer(chain(tar, verify), tmp, { ...options, headers });
      // The same pass gives the layer's index: a build that unpacks a base need not read it again to index it.
      await this.keepLayerIndex(diffID, headers);
      return report;
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      // Which layer could not be unpacked: the entry alone does not say.
      if (e instanceof TarError || e instanceof CompressionError) e.message = `layer ${diffID}: ${e.message}`;
      throw e;
    } finally {
      forget();
    }
  }

  /** A complete unpacking in `tmp` becomes the snapshot (or goes, when another process finished it first). */
  private async commitSnapshot(tmp: string, diffID: string, report: ExtractReport | undefined): Promise<Snapshot> {
    const final = this.snapshotPath(diffID);
    if (report === undefined) return { path: final };
    await rename(tmp, final).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
      await rm(tmp, { recursive: true, force: true });
    });
    return { path: final, report };
  }
}

/** A file's bytes on the disk (fsync). */
async function syncFile(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface SnapshotOptions {
  whiteouts: 'apply' | 'overlay';
}

/** A layer's uncompressed tar and its EROFS index, mounted together as one of RUN's lowers. */
export interface ErofsLower {
  tar: string;
  index: string;
}

export interface Snapshot {
  path: string;
  /** what the unpacking skipped; absent when the snapshot was there already */
  report?: ExtractReport;
}

/**
 * A pass-through that hands every chunk to `copy` too, at the pace of the slower of the two (no unbounded
 * buffering of a download the unpacking has not caught up with). Destroyed, it destroys the copy.
 */
class Tap extends Transform {
  constructor(private readonly copy: PassThrough) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.copy.destroyed || this.copy.write(chunk)) {
      cb(null, chunk);
      return;
    }
    const go = () => {
      this.copy.off('drain', go);
      this.copy.off('close', go);
      cb(null, chunk);
    };
    this.copy.on('drain', go);
    this.copy.on('close', go);
  }

  override _flush(cb: TransformCallback): void {
    this.copy.end();
    cb();
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.copy.writableFinished) this.copy.destroy(error ?? undefined);
    cb(error);
  }
}

/** A layer's blob decompressed, after checking that it is compressed as its media type says. */
async function layerTar(layer: Layer, blob: Readable): Promise<Readable> {
  const { stream, compression } = await decompressed(blob);
  const said = layerCompression(layer.descriptor.mediaType);
  if (said !== undefined && said !== compression) {
    stream.destroy();
    throw new StoreError(
      `layer ${layer.descriptor.digest} is ${compression === 'none' ? 'not compressed' : `${compression}-compressed`}, but its media type ${layer.descriptor.mediaType} says ${said}`,
    );
  }
  return stream;
}

/** Reads a layer's tar to its end, checked against its diffID. */
async function checkDiffID(layer: Layer, tar: Readable): Promise<void> {
  await pipeline(
    tar,
    new DigestStream({ digest: layer.diffID, where: `the uncompressed layer ${layer.descriptor.digest} (its diffID)` }),
    new Writable({ write: (_c, _e, cb) => cb() }),
  );
}
