// The GitHub Actions cache as a layer cache (`--cache-from/--cache-to type=gha`), through @actions/cache itself,
// loaded only when a build uses it. The service keeps entries immutable, evicts the least recently used beyond a
// repository's 10 GB and takes at most 200 creations a minute (../shared/research/actions-cache.md §3), so:
// - a layer blob is an entry of its own, keyed by its digest (`hoist-blob-1-<hex>`): shared by every scope, branch
//   and build, written once; a build's small blobs go together in one entry (`hoist-pack-1-<hash of digests>`);
// - a scope (by default the image, platform and target: matrix legs never overwrite each other) has an index
//   (`hoist-index-1-<scope hash>-<time>`): the records and the entry holding each layer, found by prefix (the
//   newest; GitHub also looks in the default branch's). It is written only when it differs from the one read: a
//   rebuild with nothing changed creates no entry, one with k new layers at most k + 1;
// - every entry is looked up before it is written; creations are paced (a burst, then one a second), and the first
//   refusal (a 429, `cache write denied`, the quota: @actions/cache answers -1 for all of them) stops this build's
//   uploads, said once; ACTIONS_CACHE_MODE (read, write-only, none) is honoured.
// @actions/cache archives paths and keys an entry's version on the path strings, so each entry has a fixed path
// under one directory of ours (<tmpdir>/hoist-gha-<uid>, 0700 and checked to be ours), the same on every run. The
// library only saves: entries are read by hoist itself (gha-read.ts), which takes from an archive nothing but the
// regular files of ours that the entry should hold, each within its size. A blob read back is checked against its
// digest by the store (a corrupt entry: the step runs again); a cache mount is one packed file, unpacked as the
// registry cache unpacks its mount blobs (cache/mounts.ts: inside the mount, no devices, no setuid bits).
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../image/digest.js';
import type { Descriptor } from '../image/manifest.js';
import type { BlobSource } from '../layer/layer.js';
import { sharedBy } from '../registry/limit.js';
import { acquireFileLock } from '../store/lock.js';
import { type CacheBackend, cacheBlobSource, type CacheLayers, defaultMountMax, type CacheSaveReport, type CacheSource, recordsByKey } from './backend.js';
import { decodeRecords, parseJSON } from './format.js';
import { EntryArchiveError, findEntry, memberText, readEntry } from './gha-read.js';
import { overMax, packMount, treeDigest, unpackMount } from './mounts.js';
import type { CacheRecord } from './record.js';

type ActionsCache = typeof import('@actions/cache');

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

const scheme = 1;
/** records an index carries at most (this build's, then those of earlier ones) */
const maxIndexRecords = 2000;
/** blobs up to this size travel packed together */
const packLimit = 1 << 20;
const blobKey = (digest: string) => `hoist-blob-${scheme}-${parseDigest(digest).hex}`;
const packKey = (digests: readonly string[]) => `hoist-pack-${scheme}-${createHash('sha256').update([...digests].sort().join(',')).digest('hex')}`;
const scopeHash = (scope: string) => createHash('sha256').update(scope).digest('hex').slice(0, 16);
const indexPrefix = (scope: string) => `hoist-index-${scheme}-${scopeHash(scope)}-`;
/** a cache mount's entries, by scope and the cache's name in the store (its id, hashed); the newest wins */
// 2: the mount packed into one file (1 was the directory itself, which only @actions/cache's tar could restore).
const mountPrefix = (scope: string, name: string) => `hoist-mount-2-${scopeHash(scope)}-${name}-`;

/** The fixed directory of an entry's files (its version depends on this path): one per blob, pack, scope index. */
export function entryDir(root: string, key: string): string {
  // Keys come back from the cache (an index names the entries of its layers): only hex goes into a path.
  const [, kind, name] = /^hoist-(blob|pack|index|mount)-\d+-([0-9a-f]{64}$|[0-9a-f]{16}-(?:[0-9a-f]{32}-)?)/.exec(key) ?? [];
  if ((kind === 'blob' || kind === 'pack') && name.length === 64) return path.join(root, kind, name);
  if (kind === 'index' && name.length === 17) return path.join(root, 'index', name.slice(0, 16));
  if (kind === 'mount' && name.length === 50) return path.join(root, 'mount', name.slice(0, 49));
  throw new Error(`not an entry key of hoist: ${JSON.stringify(key)}`);
}

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
  const v = parseJSON(text, `${where}: index.json`) as { version?: unknown; entries?: unknown } | null;
  if (!v || typeof v !== 'object') throw new Error(`${where}: index.json is not an index`);
  if (v.version !== scheme) throw new Error(`${where}: index of another version (${String(v.version).slice(0, 20)})`);
  const entries: Record<string, string> = {};
  if (v.entries && typeof v.entries === 'object') {
    for (const [d, k] of Object.entries(v.entries)) if (typeof k === 'string' && new RegExp(`^hoist-(blob|pack)-${scheme}-[0-9a-f]{64}$`).test(k)) entries[d] = k;
  }
  return { records: decodeRecords(v, where), entries };
}

/** The environment @actions/cache needs, and what ACTIONS_CACHE_MODE allows. */
function access(options: GhaOptions): { read: boolean; write: boolean } {
  if (options.url) process.env.ACTIONS_RESULTS_URL = options.url;
  if (options.token) process.env.ACTIONS_RUNTIME_TOKEN = options.token;
  if (!process.env.ACTIONS_RESULTS_URL && !process.env.ACTIONS_CACHE_URL) {
    throw new GhaUnavailableError('type=gha needs ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN: GitHub sets them for actions; in a `run:` step, expose them (crazy-max/ghaction-github-runtime) or pass url= and token=');
  }
  if (!process.env.ACTIONS_RUNTIME_TOKEN) throw new GhaUnavailableError('type=gha needs ACTIONS_RUNTIME_TOKEN (GitHub sets it for actions; pass token= otherwise)');
  // @actions/cache 6.3: none, read, write, write-only; anything else allows both.
  const mode = process.env.ACTIONS_CACHE_MODE ?? '';
  return { read: mode !== 'none' && mode !== 'write-only', write: mode !== 'none' && mode !== 'read' };
}

let loaded: Promise<ActionsCache> | undefined;
function actionsCache(): Promise<ActionsCache> {
  loaded ??= import('@actions/cache');
  return loaded;
}

/**
 * @actions/cache reports through @actions/core on stdout (`Cache saved with key …`, `::warning::Failed to save …`):
 * what it writes while it runs is kept from the command's output (its last warning kept for ours), and only that.
 * Its writes are told from everyone else's by their async context: a step's output, the push's lines, written
 * meanwhile from elsewhere, go out as they are (stdout swapped for the call's whole duration lost them).
 */
const library = new AsyncLocalStorage<{ warning: string }>();
let filtering = false;
async function quiet<T>(f: () => Promise<T>): Promise<{ value: T; warning: string }> {
  if (!filtering) {
    filtering = true;
    const write = process.stdout.write.bind(process.stdout) as (...args: unknown[]) => boolean;
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      const call = library.getStore();
      if (!call) return write(chunk, ...rest);
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      for (const line of text.split('\n')) {
        const m = /^::(warning|error)[^:]*::(.*)$/.exec(line);
        if (m) call.warning = m[2];
      }
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stdout.write;
  }
  const call = { warning: '' };
  const value = await library.run(call, f);
  return { value, warning: call.warning };
}

/** Errors that say nothing listens at the address (not a slow or failing service: @actions/cache judges those). */
const unreachableCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Fails at once when nothing answers at the cache service's address: @actions/cache retries a refused connection
 * for about 10 s before it gives up, on every build of a runner without the service. Any HTTP answer counts as
 * reachable; the proxy variables are honoured as @actions/cache honours them.
 */
function reachable(build: Map<string, unknown>): Promise<void> {
  const url = process.env.ACTIONS_RESULTS_URL || process.env.ACTIONS_CACHE_URL;
  if (!url) return Promise.resolve();
  const probes = (build.get('gha.probes') as Map<string, Promise<void>> | undefined) ?? new Map<string, Promise<void>>();
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
    const code = err.code && unreachableCodes.has(err.code) ? err.code : err.cause?.code && unreachableCodes.has(err.cause.code) ? err.cause.code : undefined;
    if (code) throw new GhaUnavailableError(`the Actions cache service at ${new URL(url).origin} cannot be reached (${code})`);
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/** Our directory for entries' files: made 0700, and refused unless it is a real directory of ours. */
async function workDir(): Promise<string> {
  const dir = path.join(tmpdir(), `hoist-gha-${process.getuid?.() ?? 0}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) {
    throw new GhaUnavailableError(`${dir} is not a private directory of this user; remove it`);
  }
  return dir;
}

/** Runs `f` with the entry's directory locked against other hoist processes on this machine. */
async function withEntryDir<T>(dir: string, f: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  const release = await acquireFileLock(`${dir}.lock`);
  try {
    return await f();
  } finally {
    await release?.();
  }
}

/** What one entry may hold: its files' names, and the most bytes of each and of the whole archive. */
interface EntryShape {
  names: RegExp;
  maxFile: number;
  maxArchive: number;
}

const indexShape: EntryShape = { names: /^index\.json$/, maxFile: 64 << 20, maxArchive: 64 << 20 };
/** a pack: small blobs, by their hex digests */
const packShape: EntryShape = { names: /^[0-9a-f]{64}$/, maxFile: packLimit, maxArchive: 1 << 30 };
const blobShape = (size: number): EntryShape => ({ names: /^blob$/, maxFile: size, maxArchive: size + (size >> 6) + (1 << 20) });
const mountShape = (maxBytes: number): EntryShape => ({ names: /^mount$/, maxFile: maxBytes + (maxBytes >> 4) + (1 << 20), maxArchive: maxBytes + (maxBytes >> 4) + (2 << 20) });

/**
 * Restores the entry `key` (or the newest with that prefix) into `dir`, made afresh: only the regular files `shape`
 * names, written there by name; its key, or undefined when there is none. Anything else in the archive (another
 * path, a link, a device, a file too big) refuses the whole entry.
 */
async function restore(dir: string, key: string, shape: EntryShape, prefix = false): Promise<string | undefined> {
  await rm(dir, { recursive: true, force: true });
  const hit = await findEntry(dir, key, prefix);
  if (!hit) return undefined;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let files = 0;
  await readEntry(hit, dir, shape.maxArchive, async (m) => {
    const bad = m.header.type !== 'file' ? `${m.header.type} ${memberText(m)}` : !shape.names.test(m.name) ? memberText(m) : m.header.size > shape.maxFile ? `${memberText(m)} of ${m.header.size} bytes` : ++files > 100_000 ? 'too many files' : undefined;
    if (bad) {
      m.body.resume();
      throw new EntryArchiveError(`entry ${hit.key} holds ${bad}, which is not what hoist wrote there`);
    }
    await pipeline(m.body, createWriteStream(path.join(dir, m.name), { flags: 'wx', mode: 0o600 }));
  });
  return hit.key;
}

async function exists(dir: string, key: string): Promise<boolean> {
  return (await findEntry(dir, key))?.key === key;
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

async function readIndex(root: string, scope: string): Promise<{ index: GhaIndex; text?: string; bad?: string }> {
  const dir = entryDir(root, indexPrefix(scope));
  return withEntryDir(dir, async () => {
    try {
      const key = await restore(dir, indexPrefix(scope), indexShape, true);
      if (!key) return { index: { records: [], entries: {} } };
      const text = await readFile(path.join(dir, 'index.json'), 'utf8');
      try {
        return { index: decodeIndex(text, `Actions cache entry ${key}`), text };
      } catch (e) {
        throw new BadIndexError((e as Error).message);
      }
    } catch (e) {
      if (!(e instanceof EntryArchiveError) && !(e instanceof BadIndexError)) throw e;
      return { index: { records: [], entries: {} }, bad: (e as Error).message };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

function indexOf(indexes: Indexes, root: string, scope: string): Promise<{ index: GhaIndex; text?: string; bad?: string }> {
  let p = indexes.get(scope);
  if (!p) {
    p = readIndex(root, scope);
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
        if (!read) return { name, kind: 'gha', lookup: () => undefined, blobs: cacheBlobSource(name, { name, fetch: () => Promise.reject(new Error('ACTIONS_CACHE_MODE does not allow reading')) }) };
        await reachable(build);
        const root = await workDir();
        const { index, bad } = await indexOf(indexes, root, options.scope);
        // Refused, it is read as empty (a warning) and this build's save writes a good one over it.
        if (bad) throw new BadIndexError(bad);
        return {
          name,
          kind: 'gha',
          lookup: recordsByKey(index.records),
          blobs: cacheBlobSource(name, blobSource(root, index, name)),
          restoreMount: (mount, dir, maxBytes) => restoreMount(root, options.scope, mount, dir, maxBytes),
        } satisfies CacheSource;
      } catch (e) {
        if (!(e instanceof BadIndexError)) build.set(unreadable, (e as Error).message);
        throw e;
      }
    },
    save: async (records, from) => {
      const { write } = access(options);
      if (!write) return { uploadedBytes: 0, summary: `not written: ACTIONS_CACHE_MODE=${process.env.ACTIONS_CACHE_MODE}` };
      if (build.has(unreadable)) return { uploadedBytes: 0, summary: 'not written: the cache could not be read' };
      await reachable(build);
      const cache = await actionsCache();
      const root = await workDir();
      return save(indexes, cache, root, options, records, from);
    },
  };
}

/** A kept cache mount (its packed file) unpacked into its new, empty directory in the store. */
async function restoreMount(root: string, scope: string, mount: string, dir: string, maxBytes: number): Promise<boolean> {
  const prefix = mountPrefix(scope, mount);
  const kept = entryDir(root, prefix);
  return withEntryDir(kept, async () => {
    try {
      if (!(await restore(kept, prefix, mountShape(maxBytes), true))) return false;
      await unpackMount(createReadStream(path.join(kept, 'mount')), dir, maxBytes);
      return true;
    } finally {
      await rm(kept, { recursive: true, force: true });
    }
  });
}

/** The layers of the cache: each from its own entry, or from its pack (restored once, for all its blobs). */
function blobSource(root: string, index: GhaIndex, name: string): BlobSource {
  const packs = new Map<string, Promise<string>>();
  const restorePack = (key: string): Promise<string> => {
    let p = packs.get(key);
    if (!p) {
      const dir = entryDir(root, key);
      p = withEntryDir(dir, async () => {
        if ((await restore(dir, key, packShape)) !== key) throw new Error(`entry ${key} is not in the Actions cache (evicted?)`);
        return dir;
      });
      packs.set(key, p);
      p.catch(() => packs.delete(key));
    }
    return p;
  };
  return {
    name,
    async fetch(desc: Descriptor, sink) {
      const { hex } = parseDigest(desc.digest);
      const key = index.entries[desc.digest] ?? blobKey(desc.digest);
      if (key.startsWith('hoist-pack-')) {
        const dir = await restorePack(key);
        await sink.writeBlob(createReadStream(path.join(dir, hex)), desc);
        return;
      }
      const dir = entryDir(root, key);
      await withEntryDir(dir, async () => {
        if ((await restore(dir, key, blobShape(desc.size))) !== key) throw new Error(`entry ${key} is not in the Actions cache (evicted?)`);
        try {
          await sink.writeBlob(createReadStream(path.join(dir, 'blob')), desc);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    },
  };
}

async function save(indexes: Indexes, cache: ActionsCache, root: string, options: GhaOptions, records: readonly CacheRecord[], from: CacheLayers): Promise<CacheSaveReport> {
  const { index: previous, text: previousText } = await indexOf(indexes, root, options.scope);
  const layers = new Map<string, Descriptor>();
  for (const r of records) if (r.layer) layers.set(r.layer.digest, { mediaType: r.layer.mediaType, digest: r.layer.digest, size: r.layer.size });
  const pacer = new Pacer();
  const entries: Record<string, string> = {};
  let created = 0;
  let present = 0;
  let uploadedBytes = 0;
  let refused: string | undefined;
  const skipped: string[] = [];
  const fits = (size: number) => options.maxSize === undefined || uploadedBytes + size <= options.maxSize;

  /** Creates one entry from the files `fill` writes into its directory; false once the service refuses. */
  const create = async (dir: string, key: string, bytes: number, fill: () => Promise<void>): Promise<boolean> => {
    if (refused) return false;
    return withEntryDir(dir, async () => {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o700 });
      try {
        await fill();
        await pacer.take();
        const { value: id, warning } = await quiet(() => cache.saveCache([dir], key));
        if (id === -1) {
          refused = warning || 'the service refused the entry';
          return false;
        }
        created++;
        uploadedBytes += bytes;
        return true;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  };
  const writeLayer = async (desc: Descriptor, file: string) => {
    const layer = from.layer(desc.digest) ?? { descriptor: desc, diffID: '', sources: [] };
    await pipeline(await from.store.openLayer(layer), createWriteStream(file, { mode: 0o600 }));
  };

  // Big blobs: an entry each, unless one is there already (written by any build, any scope).
  const small: Descriptor[] = [];
  for (const desc of layers.values()) {
    const known = previous.entries[desc.digest];
    if (desc.size <= packLimit) {
      if (known && (await exists(entryDir(root, known), known))) {
        entries[desc.digest] = known;
        present++;
      } else small.push(desc);
      continue;
    }
    const own = blobKey(desc.digest);
    const dir = entryDir(root, own);
    if (await exists(dir, own)) {
      entries[desc.digest] = own;
      present++;
    } else if (!fits(desc.size)) skipped.push(desc.digest);
    else if (await create(dir, own, desc.size, () => writeLayer(desc, path.join(dir, 'blob')))) entries[desc.digest] = own;
  }
  // Small blobs not stored yet: one pack for all of them.
  const total = small.reduce((n, d) => n + d.size, 0);
  if (small.length > 0 && !fits(total)) skipped.push(...small.map((d) => d.digest));
  else if (small.length > 0) {
    const key = packKey(small.map((d) => d.digest));
    const dir = entryDir(root, key);
    const there = await exists(dir, key);
    if (there || (await create(dir, key, total, async () => {
      for (const d of small) await writeLayer(d, path.join(dir, parseDigest(d.digest).hex));
    }))) {
      for (const d of small) entries[d.digest] = key;
      if (there) present += small.length;
    }
  }
  // The index: the records whose layers are stored. When the one read holds them all already (a rebuild with
  // nothing changed), nothing is written; else it is written with the records of the one read that this build
  // did not replace (so that going back to an earlier state still finds its steps), up to a bound.
  const kept = records.filter((r) => !r.layer || entries[r.layer.digest]);
  const known = new Map(previous.records.map((r) => [r.key, JSON.stringify(r)]));
  const covered = previousText !== undefined && kept.every((r) => known.get(r.key) === JSON.stringify(r) && (!r.layer || previous.entries[r.layer.digest] === entries[r.layer.digest]));
  let index = 'index unchanged';
  if (!covered) {
    const mine = new Set(kept.map((r) => r.key));
    const carried = previous.records.filter((r) => !mine.has(r.key) && (!r.layer || previous.entries[r.layer.digest])).slice(-Math.max(0, maxIndexRecords - kept.length));
    const merged: GhaIndex = { records: [...carried, ...kept], entries: { ...previous.entries, ...entries } };
    for (const d of Object.keys(merged.entries)) if (!merged.records.some((r) => r.layer?.digest === d)) delete merged.entries[d];
    const text = encodeIndex(merged);
    const dir = entryDir(root, indexPrefix(options.scope));
    const wrote = await create(dir, `${indexPrefix(options.scope)}${Date.now().toString().padStart(15, '0')}`, 0, () => writeFile(path.join(dir, 'index.json'), text));
    index = wrote ? 'index written' : 'index not written';
    if (wrote) indexes.set(options.scope, Promise.resolve({ index: merged, text }));
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
    const prefix = mountPrefix(options.scope, m.name);
    const dir = entryDir(root, prefix);
    if (await create(dir, `${prefix}${Date.now().toString().padStart(15, '0')}`, now.bytes, async () => {
      const packed = await packMount(from.store, m.dir);
      await pipeline(await from.store.openLayer({ descriptor: packed, diffID: '', sources: [] }), createWriteStream(path.join(dir, 'mount'), { mode: 0o600 }));
    })) mountNotes.push(`cache mount ${m.id} saved`);
  }
  const notes = [`${created} entries created`, `${present} layers already there`, index, ...mountNotes];
  if (skipped.length) notes.push(`${skipped.length} layers over max-size not saved`);
  if (refused) throw new GhaRefusedError(`the Actions cache refused an entry, so this build stopped uploading (${notes.join(', ')}): ${refused}`);
  return { uploadedBytes, summary: notes.join(', ') };
}

export class GhaRefusedError extends Error {
  override readonly name = 'GhaRefusedError';
}
