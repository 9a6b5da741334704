// The GitHub Actions cache as a layer cache (`--cache-from/--cache-to type=gha`), spoken by hoist itself
// (gha-service.ts: each entry's bytes as they are, no tar + zstd of a directory). The service keeps entries
// immutable, evicts the least recently used beyond a repository's 10 GB and takes at most 200 creations a minute
// (../shared/research/actions-cache.md §3), so:
// - a layer blob is an entry of its own, keyed by its digest (`hoist-blob-2-<hex>`): shared by every scope, branch
//   and build, written once; a build's small blobs go together in one entry (`hoist-pack-2-<hash of digests>`: a
//   line of JSON naming each blob and its size, then the blobs one after another);
// - a scope (by default the image, platform and target: matrix legs never overwrite each other) has an index
//   (`hoist-index-2-<scope hash>-<time>`, JSON): the records and the entry holding each layer, found by prefix (the
//   newest; GitHub also looks in the default branch's). It is written only when it differs from the one read: a
//   rebuild with nothing changed creates no entry, one with k new layers at most k + 1;
// - a kept cache mount is one entry (`hoist-mount-3-…`): the mount packed as the registry cache packs it;
// - every entry is looked up before it is written; creations are paced (a burst, then one a second), up to four
//   at once, and the first refusal (a 429, `cache write denied`, the quota) stops this build's uploads, said once;
//   ACTIONS_CACHE_MODE (read, write-only, none) is honoured.
// What comes back is input: a blob is checked against its digest by the store (a corrupt entry: the step runs
// again), a pack's table and an index are parsed with bounds, a mount is unpacked as the registry cache unpacks its
// mount blobs (cache/mounts.ts: inside the mount, no devices, no setuid bits).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../image/digest.js';
import type { Descriptor } from '../image/manifest.js';
import type { BlobSource, Layer } from '../layer/layer.js';
import { Limiter, sharedBy } from '../registry/limit.js';
import {
  type CacheBackend,
  cacheBlobSource,
  type CacheLayers,
  defaultMountMax,
  type CacheSaveReport,
  type CacheSource,
  recordsByKey,
} from './backend.js';
import { decodeRecords, parseJSON } from './format.js';
import { createEntry, downloadEntry, EntryBytesError, findEntry, GhaRefusedError } from './gha-service.js';
import { overMax, packMount, treeDigest, unpackMount } from './mounts.js';
import type { CacheRecord } from './record.js';

export { GhaRefusedError } from './gha-service.js';

export interface GhaOptions {
  /** the index's scope; default: the image, platform and target */
  scope: string;
  mode: 'min' | 'max';
  /** bytes of layers one build may upload (mode=max writes every step); undefined: no cap */
  maxSize?: number;
  /** bytes a cache mount may hold to be saved (default 1 GiB) */
  mountMaxSize?: number;
  /** ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN given as attributes (`url=`, `token=`), as buildx takes them */
  url?: string;
  token?: string;
}

export class GhaUnavailableError extends Error {
  override readonly name = 'GhaUnavailableError';
}

// 2: entries are the bytes themselves (1 were @actions/cache's archives of a directory).
const scheme = 2;
/** records an index carries at most (this build's, then those of earlier ones) */
const maxIndexRecords = 2000;
/** an index's most bytes */
const maxIndexBytes = 64 << 20;
/** blobs up to this size travel packed together */
const packLimit = 1 << 20;
/** a pack's table: its most bytes and blobs */
const maxPackTable = 8 << 20;
const maxPackBlobs = 100_000;
const blobKey = (digest: string) => `hoist-blob-${scheme}-${parseDigest(digest).hex}`;
const packKey = (digests: readonly string[]) =>
  `hoist-pack-${scheme}-${createHash('sha256')
    .update([...digests].sort().join(','))
    .digest('hex')}`;
const scopeHash = (scope: string) => createHash('sha256').update(scope).digest('hex').slice(0, 16);
const indexPrefix = (scope: string) => `hoist-index-${scheme}-${scopeHash(scope)}-`;
/** a cache mount's entries, by scope and the cache's name in the store (its id, hashed); the newest wins */
// 3: the packed mount as it is (2 was that file in @actions/cache's archive; 1 the directory itself).
const mountPrefix = (scope: string, name: string) => `hoist-mount-3-${scopeHash(scope)}-${name}-`;
const entryKeyPattern = new RegExp(`^hoist-(blob|pack)-${scheme}-[0-9a-f]{64}$`);

/** What the index of a scope holds: the records, and which entry holds each layer they name. */
interface GhaIndex {
  records: CacheRecord[];
  /** layer digest → entry key (a blob's own, or a pack's) */
  entries: Record<string, string>;
}

function encodeIndex(index: GhaIndex): string {
  const entries = Object.fromEntries(Object.entries(index.entries).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify({ version: scheme, records: index.records, entries });
}

export function decodeIndex(text: string, where: string): GhaIndex {
  const v = parseJSON(text, `${where}: the index`) as { version?: unknown; entries?: unknown } | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: not an index`);
  if (v.version !== scheme) throw new Error(`${where}: index of another version (${String(v.version).slice(0, 20)})`);
  const entries: Record<string, string> = {};
  if (v.entries && typeof v.entries === 'object') {
    for (const [d, k] of Object.entries(v.entries))
      if (typeof k === 'string' && entryKeyPattern.test(k) && /^sha256:[0-9a-f]{64}$/.test(d)) entries[d] = k;
  }
  return { records: decodeRecords(v, where), entries };
}

/** A pack's bytes: a line of JSON, `[[digest, size], …]`, then the blobs in that order. */
export function packTable(blobs: readonly Descriptor[]): Buffer {
  return Buffer.from(`${JSON.stringify(blobs.map((d) => [d.digest, d.size]))}\n`);
}

/** Where each blob of a pack is, from its table (read with bounds: a pack is input). */
export function readPackTable(
  head: Buffer,
  total: number,
  where: string,
): Map<string, { start: number; size: number }> {
  const nl = head.indexOf(0x0a);
  if (nl < 0) throw new EntryBytesError(`${where}: not a pack of hoist's (no table within ${maxPackTable} bytes)`);
  let table: unknown;
  try {
    table = JSON.parse(head.subarray(0, nl).toString('utf8'));
  } catch {
    table = undefined;
  }
  if (!Array.isArray(table) || table.length > maxPackBlobs)
    throw new EntryBytesError(`${where}: not a pack of hoist's (its table)`);
  const out = new Map<string, { start: number; size: number }>();
  let at = nl + 1;
  for (const row of table) {
    if (
      !Array.isArray(row) ||
      typeof row[0] !== 'string' ||
      !/^sha256:[0-9a-f]{64}$/.test(row[0]) ||
      !Number.isSafeInteger(row[1]) ||
      row[1] < 0
    )
      throw new EntryBytesError(`${where}: not a pack of hoist's (a row of its table)`);
    out.set(row[0], { start: at, size: row[1] });
    at += row[1];
  }
  if (at !== total) throw new EntryBytesError(`${where}: its table says ${at} bytes, the entry has ${total}`);
  return out;
}

/** The environment the service needs, and what ACTIONS_CACHE_MODE allows. */
function access(options: GhaOptions): { read: boolean; write: boolean } {
  if (options.url) process.env.ACTIONS_RESULTS_URL = options.url;
  if (options.token) process.env.ACTIONS_RUNTIME_TOKEN = options.token;
  if (!process.env.ACTIONS_RESULTS_URL && !process.env.ACTIONS_CACHE_URL) {
    throw new GhaUnavailableError(
      'type=gha needs ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN: GitHub sets them for actions; in a `run:` step, expose them (crazy-max/ghaction-github-runtime) or pass url= and token=',
    );
  }
  if (!process.env.ACTIONS_RUNTIME_TOKEN)
    throw new GhaUnavailableError(
      'type=gha needs ACTIONS_RUNTIME_TOKEN (GitHub sets it for actions; pass token= otherwise)',
    );
  // As @actions/cache 6.3: none, read, write, write-only; anything else allows both.
  const mode = process.env.ACTIONS_CACHE_MODE ?? '';
  return { read: mode !== 'none' && mode !== 'write-only', write: mode !== 'none' && mode !== 'read' };
}

/** Errors that say nothing listens at the address (not a slow or failing service: the calls retry those). */
const unreachableCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Fails at once when nothing answers at the cache service's address: a runner without the service learns it from one request. Any HTTP answer counts as
 * reachable; the proxy variables are honoured.
 */
function reachable(build: Map<string, unknown>): Promise<void> {
  const url = process.env.ACTIONS_RESULTS_URL || process.env.ACTIONS_CACHE_URL;
  if (!url) return Promise.resolve();
  const probes =
    (build.get('gha.probes') as Map<string, Promise<void>> | undefined) ?? new Map<string, Promise<void>>();
  build.set('gha.probes', probes);
  return sharedBy(probes, url, () => probe(url));
}

async function probe(url: string): Promise<void> {
  const { request } = await import('../registry/undici.js');
  const { httpDispatcher } = await import('../registry/proxy.js');
  const dispatcher = httpDispatcher();
  try {
    const r = await request(new URL(url).origin, { method: 'GET', dispatcher, signal: AbortSignal.timeout(15_000) });
    await r.body.dump();
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code =
      err.code && unreachableCodes.has(err.code)
        ? err.code
        : err.cause?.code && unreachableCodes.has(err.cause.code)
          ? err.cause.code
          : undefined;
    if (code)
      throw new GhaUnavailableError(`the Actions cache service at ${new URL(url).origin} cannot be reached (${code})`);
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/** Creations paced well under the service's 200 a minute: a burst, then one a second. */
class Pacer {
  private tokens = 20;
  private last = Date.now();

  async take(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(20, this.tokens + (now - this.last) / 1000);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens--;
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

type Indexes = Map<string, Promise<{ index: GhaIndex; text?: string; bad?: string }>>;

/** The scope's index entry was there but is no index of hoist's: a warning, and the next save writes a good one. */
class BadIndexError extends Error {
  override readonly name = 'BadIndexError';
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function readIndex(scope: string): Promise<{ index: GhaIndex; text?: string; bad?: string }> {
  const hit = await findEntry(indexPrefix(scope), true);
  if (!hit) return { index: { records: [], entries: {} } };
  try {
    const text = (await readAll(await downloadEntry(hit, maxIndexBytes))).toString('utf8');
    try {
      return { index: decodeIndex(text, `Actions cache entry ${hit.key}`), text };
    } catch (e) {
      throw new BadIndexError((e as Error).message);
    }
  } catch (e) {
    if (!(e instanceof EntryBytesError) && !(e instanceof BadIndexError)) throw e;
    return { index: { records: [], entries: {} }, bad: (e as Error).message };
  }
}

function indexOf(indexes: Indexes, scope: string): Promise<{ index: GhaIndex; text?: string; bad?: string }> {
  let p = indexes.get(scope);
  if (!p) {
    p = readIndex(scope);
    indexes.set(scope, p);
    p.catch(() => indexes.delete(scope));
  }
  return p;
}

/**
 * `type=gha`. `build`: one map per build, given to its reading and its writing backend, so that the index read
 * for a scope is read once and compared with the one written.
 */
export function ghaCache(options: GhaOptions, build: Map<string, unknown>): CacheBackend {
  const name = `gha scope ${options.scope}`;
  const indexes = ((build.get('gha.indexes') as Indexes | undefined) ?? new Map()) as Indexes;
  build.set('gha.indexes', indexes);
  // A service that could not be read is not written either: one warning for the build, not one per direction.
  const unreadable = `gha.unreadable.${options.scope}`;
  return {
    name,
    load: async () => {
      try {
        const { read } = access(options);
        if (!read)
          return {
            name,
            kind: 'gha',
            lookup: () => undefined,
            blobs: cacheBlobSource(name, {
              name,
              fetch: () => Promise.reject(new Error('ACTIONS_CACHE_MODE does not allow reading')),
            }),
          };
        await reachable(build);
        const { index, bad } = await indexOf(indexes, options.scope);
        // Refused, it is read as empty (a warning) and this build's save writes a good one over it.
        if (bad) throw new BadIndexError(bad);
        return {
          name,
          kind: 'gha',
          lookup: recordsByKey(index.records),
          blobs: cacheBlobSource(name, blobSource(index, name)),
          restoreMount: (mount, dir, maxBytes) => restoreMount(options.scope, mount, dir, maxBytes),
        } satisfies CacheSource;
      } catch (e) {
        if (!(e instanceof BadIndexError)) build.set(unreadable, (e as Error).message);
        throw e;
      }
    },
    save: async (records, from) => {
      const { write } = access(options);
      if (!write)
        return { uploadedBytes: 0, summary: `not written: ACTIONS_CACHE_MODE=${process.env.ACTIONS_CACHE_MODE}` };
      if (build.has(unreadable)) return { uploadedBytes: 0, summary: 'not written: the cache could not be read' };
      await reachable(build);
      return save(indexes, options, records, from);
    },
  };
}

/** A kept cache mount (its packed file) unpacked, as it arrives, into its new, empty directory in the store. */
async function restoreMount(scope: string, mount: string, dir: string, maxBytes: number): Promise<boolean> {
  const hit = await findEntry(mountPrefix(scope, mount), true);
  if (!hit) return false;
  await unpackMount(await downloadEntry(hit, maxBytes + (maxBytes >> 4) + (2 << 20)), dir, maxBytes);
  return true;
}

/** The layers of the cache: each streamed from its own entry into the store, or from its pack (fetched once). */
function blobSource(index: GhaIndex, name: string): BlobSource {
  const packs = new Map<string, Promise<{ file: string; table: Map<string, { start: number; size: number }> }>>();
  const fetchPack = (key: string) =>
    sharedBy(packs, key, async () => {
      const hit = await findEntry(key);
      if (hit?.key !== key) throw new Error(`entry ${key} is not in the Actions cache (evicted?)`);
      // (a private temp file, gone when the process ends: the pack's blobs are read from it as the build asks)
      const dir = await mkdtemp(path.join(tmpdir(), 'hoist-gha-pack-'));
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      const file = path.join(dir, 'pack');
      await pipeline(await downloadEntry(hit, 1 << 30), createWriteStream(file, { mode: 0o600 }));
      const fh = await open(file, 'r');
      try {
        const { size } = await fh.stat();
        const head = Buffer.alloc(Math.min(size, maxPackTable));
        await fh.read(head, 0, head.length, 0);
        return { file, table: readPackTable(head, size, `Actions cache entry ${key}`) };
      } finally {
        await fh.close();
      }
    });
  return {
    name,
    async fetch(desc: Descriptor, sink) {
      const key = index.entries[desc.digest] ?? blobKey(desc.digest);
      if (key.startsWith('hoist-pack-')) {
        const { file, table } = await fetchPack(key);
        const at = table.get(desc.digest);
        if (!at) throw new Error(`entry ${key} does not hold ${desc.digest}`);
        await sink.writeBlob(createReadStream(file, { start: at.start, end: at.start + at.size - 1 }), desc);
        return;
      }
      const hit = await findEntry(key);
      if (hit?.key !== key) throw new Error(`entry ${key} is not in the Actions cache (evicted?)`);
      // Streamed into the store, checked against its digest as it arrives: nothing of it kept otherwise.
      await sink.writeBlob(await downloadEntry(hit, desc.size), desc);
    },
  };
}

async function exists(key: string): Promise<boolean> {
  return (await findEntry(key))?.key === key;
}

async function save(
  indexes: Indexes,
  options: GhaOptions,
  records: readonly CacheRecord[],
  from: CacheLayers,
): Promise<CacheSaveReport> {
  const { index: previous, text: previousText } = await indexOf(indexes, options.scope);
  const layers = new Map<string, Descriptor>();
  for (const r of records)
    if (r.layer)
      layers.set(r.layer.digest, { mediaType: r.layer.mediaType, digest: r.layer.digest, size: r.layer.size });
  const pacer = new Pacer();
  const uploads = new Limiter(4);
  const entries: Record<string, string> = {};
  let created = 0;
  let present = 0;
  let uploadedBytes = 0;
  /** bytes this build has set out to upload (uploads run at once: max-size counts them when they start) */
  let planned = 0;
  let refused: string | undefined;
  const skipped: string[] = [];
  const fits = (size: number) => {
    if (options.maxSize !== undefined && planned + size > options.maxSize) return false;
    planned += size;
    return true;
  };

  /** Creates one entry; true when it is there now (made, or made by another job meanwhile), false once refused. */
  const create = (key: string, size: number, open: (start: number, end: number) => Readable): Promise<boolean> =>
    uploads.run(async () => {
      if (refused) return false;
      await pacer.take();
      try {
        if (await createEntry(key, size, open)) {
          created++;
          uploadedBytes += size;
        } else present++;
        return true;
      } catch (e) {
        if (!(e instanceof GhaRefusedError)) throw e;
        refused ??= e.message;
        return false;
      }
    });
  /** A layer's blob in the store (fetched there when a lazy layer's is not), and its file. */
  const blobFile = async (desc: Descriptor): Promise<string> => {
    const layer: Layer = from.layer(desc.digest) ?? { descriptor: desc, diffID: '', sources: [] };
    await layer.ready;
    await from.store.fetchMissing(desc, layer.sources);
    return from.store.blobPath(desc.digest);
  };

  // Big blobs: an entry each, unless one is there already (written by any build, any scope).
  const small: Descriptor[] = [];
  await Promise.all(
    [...layers.values()].map(async (desc) => {
      const known = previous.entries[desc.digest];
      if (desc.size <= packLimit) {
        if (known && (await exists(known))) {
          entries[desc.digest] = known;
          present++;
        } else small.push(desc);
        return;
      }
      const own = blobKey(desc.digest);
      if (await exists(own)) {
        entries[desc.digest] = own;
        present++;
      } else if (!fits(desc.size)) skipped.push(desc.digest);
      else {
        const file = await blobFile(desc);
        if (await create(own, desc.size, (start, end) => createReadStream(file, { start, end })))
          entries[desc.digest] = own;
      }
    }),
  );
  // Small blobs not stored yet: one pack for all of them.
  small.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  const total = small.reduce((n, d) => n + d.size, 0);
  if (small.length > 0 && !fits(total)) skipped.push(...small.map((d) => d.digest));
  else if (small.length > 0) {
    const key = packKey(small.map((d) => d.digest));
    const there = await exists(key);
    let made = there;
    if (!there) {
      const table = packTable(small);
      const parts = [
        table,
        ...(await Promise.all(small.map(async (d) => await readAll(createReadStream(await blobFile(d)))))),
      ];
      const bytes = Buffer.concat(parts);
      made = await create(key, bytes.length, (start, end) => readableOf(bytes.subarray(start, end + 1)));
    }
    if (made) {
      for (const d of small) entries[d.digest] = key;
      if (there) present += small.length;
    }
  }
  // The index: the records whose layers are stored. When the one read holds them all already (a rebuild with
  // nothing changed), nothing is written; else it is written with the records of the one read that this build
  // did not replace (so that going back to an earlier state still finds its steps), up to a bound.
  const kept = records.filter((r) => !r.layer || entries[r.layer.digest]);
  const known = new Map(previous.records.map((r) => [r.key, JSON.stringify(r)]));
  const covered =
    previousText !== undefined &&
    kept.every(
      (r) =>
        known.get(r.key) === JSON.stringify(r) &&
        (!r.layer || previous.entries[r.layer.digest] === entries[r.layer.digest]),
    );
  let index = 'index unchanged';
  if (!covered) {
    const mine = new Set(kept.map((r) => r.key));
    const carried = previous.records
      .filter((r) => !mine.has(r.key) && (!r.layer || previous.entries[r.layer.digest]))
      .slice(-Math.max(0, maxIndexRecords - kept.length));
    const merged: GhaIndex = { records: [...carried, ...kept], entries: { ...previous.entries, ...entries } };
    for (const d of Object.keys(merged.entries))
      if (!merged.records.some((r) => r.layer?.digest === d)) delete merged.entries[d];
    const text = Buffer.from(encodeIndex(merged));
    const wrote = await create(
      `${indexPrefix(options.scope)}${Date.now().toString().padStart(15, '0')}`,
      text.length,
      (start, end) => readableOf(text.subarray(start, end + 1)),
    );
    index = wrote ? 'index written' : 'index not written';
    if (wrote) indexes.set(options.scope, Promise.resolve({ index: merged, text: text.toString() }));
  }
  // Cache mounts: those whose content changed since the build first mounted them, up to the size cap; each an
  // entry of one file, the mount packed as the registry cache packs it.
  const mountNotes: string[] = [];
  const mountMax = options.mountMaxSize ?? defaultMountMax;
  for (const m of from.mounts ?? []) {
    const now = await treeDigest(m.dir, mountMax);
    if (now.digest === undefined) {
      mountNotes.push(overMax(m.id, mountMax));
      continue;
    }
    if (now.digest === m.before) continue;
    const packed = await packMount(from.store, m.dir);
    const file = from.store.blobPath(packed.digest);
    if (
      await create(
        `${mountPrefix(options.scope, m.name)}${Date.now().toString().padStart(15, '0')}`,
        packed.size,
        (start, end) => createReadStream(file, { start, end }),
      )
    )
      mountNotes.push(`cache mount ${m.id} saved`);
  }
  const notes = [`${created} entries created`, `${present} layers already there`, index, ...mountNotes];
  if (skipped.length) notes.push(`${skipped.length} layers over max-size not saved`);
  if (refused)
    throw new GhaRefusedError(
      `the Actions cache refused an entry, so this build stopped uploading (${notes.join(', ')}): ${refused}`,
    );
  return { uploadedBytes, summary: notes.join(', ') };
}

function readableOf(bytes: Buffer): Readable {
  // (a fresh stream for every attempt of an upload)
  return Readable.from([bytes]);
}
