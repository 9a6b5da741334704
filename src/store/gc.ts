// Garbage collection of the store (`hoist prune`). The build cache (cache records) goes, as `docker builder prune`
// removes it; what an image record reaches is kept: its index, manifests, config, layers and the snapshots of its
// diffIDs (unpacked directories, or a tar with its EROFS index). The rest is "dangling" and goes, except what a live
// hoist process may be using right now (newer than the oldest lease: the records it used and what they name, the
// blobs and snapshots it touched). `all` empties the store; `keepStorage` then trims least recently used first:
// snapshots (they can be made again from the blobs), then cache records, then whole images — the order the
// collection after every build (collect.ts) trims in, without `prune`'s emptying of the build cache.
import { lstatSync, type Stats } from 'node:fs';
import { lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import { FileDigests } from './file-digests.js';
import path from 'node:path';
import { isDigest } from '../image/digest.js';
import { parseImageConfig, parseManifest } from '../image/manifest.js';
import { isConfigMediaType, isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import { removeIdleCacheMounts } from './cache-mounts.js';
import { ownerAlive, withFileLock } from './lock.js';
import { cleanLeftovers, type LeftoverReport } from '../exec/leftovers.js';
import type { Store } from './store.js';
import { type CacheRecord, parseRecord } from '../cache/record.js';

export interface PruneOptions {
  all?: boolean;
  /** bytes the store may keep */
  keepStorage?: number;
  /** digests kept besides what image records reach (cache records) */
  extraRoots?: readonly string[];
}

export interface PruneReport {
  removedBlobs: number;
  removedSnapshots: number;
  /** RUN --mount=type=cache directories (only with `all`) */
  removedCacheMounts: number;
  /** snapshots and cache mounts left because only root may remove them (a build ran RUN through sudo) */
  leftForRoot: number;
  removedImages: string[];
  /** cache records (the build cache) removed */
  removedRecords: number;
  reclaimedBytes: number;
  /** what killed builds had left: containers, mounts, temp dirs, secrets, agents */
  leftovers?: LeftoverReport;
}

async function treeSize(p: string): Promise<number> {
  const st = await lstat(p).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let n = 0;
  // A directory this process may not read (a root-owned snapshot, for a user) counts as its own entry only.
  for (const e of await readdir(p).catch(() => [] as string[])) n += await treeSize(path.join(p, e));
  return n;
}

/** Blobs and diffIDs reachable from `roots`; blobs that are absent (lazy layers) are simply not followed. */
async function reachable(
  store: Store,
  roots: Iterable<{ digest: string; mediaType?: string }>,
): Promise<{ blobs: Set<string>; diffIDs: Set<string> }> {
  const blobs = new Set<string>();
  const diffIDs = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const d = queue.pop() as { digest: string; mediaType?: string };
    if (blobs.has(d.digest)) continue;
    blobs.add(d.digest);
    const mt = d.mediaType;
    const known = isIndexMediaType(mt) || isManifestMediaType(mt) || isConfigMediaType(mt);
    if (mt !== undefined && !known) continue; // a layer
    let bytes: Buffer;
    try {
      bytes = await readFile(store.blobPath(d.digest));
    } catch {
      continue;
    }
    if (isConfigMediaType(mt)) {
      try {
        for (const x of parseImageConfig(bytes).rootfs.diff_ids) diffIDs.add(x);
      } catch {
        // not a config after all
      }
      continue;
    }
    try {
      const m = parseManifest(bytes, mt);
      if (m.kind === 'index') queue.push(...m.index.manifests);
      else queue.push(m.manifest.config, ...m.manifest.layers);
    } catch {
      // an unknown document kept as is
    }
  }
  return { blobs, diffIDs };
}

/**
 * When the oldest live lease was taken (what is newer may be a running build's work). `removeDead`: the leases of
 * dead processes are removed on the way (under the gc lock).
 */
export async function oldestLiveLease(store: Store, removeDead = true): Promise<number> {
  let oldest = Number.POSITIVE_INFINITY;
  const dir = path.join(store.root, 'leases');
  for (const f of await readdir(dir)) {
    const p = path.join(dir, f);
    // This process's own leases do not hold back its own prune: it knows what it is doing.
    if ((await readFile(p, 'utf8').catch(() => '')).trim() === String(process.pid)) continue;
    if (await ownerAlive(p)) oldest = Math.min(oldest, (await stat(p).catch(() => undefined))?.mtimeMs ?? oldest);
    else if (removeDead) await rm(p, { force: true });
  }
  return oldest;
}

/** Trims the store to `keep` bytes (least recently used first), sparing what a running build uses; the gc lock held. */
export async function trimStore(store: Store, keep: number): Promise<PruneReport> {
  const report = emptyReport();
  await trim(store, keep, await oldestLiveLease(store), report);
  return report;
}

export async function prune(store: Store, options: PruneOptions = {}): Promise<PruneReport> {
  return withFileLock(store.gcLock, async () => {
    const report = emptyReport();
    if (options.all) {
      for (const r of await store.listImages()) {
        await store.removeImage(r.name);
        report.removedImages.push(r.name);
      }
      // As `docker builder prune --all`: the cache mounts go too, but none a running step holds.
      const caches = await removeIdleCacheMounts(path.join(store.root, 'cache-mounts'), treeSize);
      report.removedCacheMounts = caches.removed;
      report.leftForRoot += caches.denied;
      report.reclaimedBytes += caches.bytes;
      // and the context files' digests (file-digests.ts): the next build reads its files again
      await rm(FileDigests.fileIn(store.root), { force: true });
    }
    // `--all` too spares what a running build uses: it touched it after taking its lease (a snapshot under its
    // overlay, a blob it is reading), so the oldest live lease keeps it.
    const protectSince = await oldestLiveLease(store);
    // The build cache goes, as docker builder prune removes it: every record no running build used since it began.
    for (const r of await listRecords(store)) {
      if (r.t >= protectSince) continue;
      await rm(r.path, { force: true });
      report.removedRecords++;
      report.reclaimedBytes += r.bytes;
    }
    // What killed builds left (their mounts first, then their temp dirs): prune could not remove them otherwise.
    report.leftovers = cleanLeftovers(store.root);
    await sweep(store, protectSince, report, options.extraRoots);
    if (options.keepStorage !== undefined)
      await trim(store, options.keepStorage, protectSince, report, options.extraRoots);
    return report;
  });
}

function emptyReport(): PruneReport {
  return {
    removedBlobs: 0,
    removedSnapshots: 0,
    removedCacheMounts: 0,
    leftForRoot: 0,
    removedImages: [],
    removedRecords: 0,
    reclaimedBytes: 0,
  };
}

/**
 * Mark and sweep: what image records (and `extraRoots`, and the cache records left) reach stays; blobs, snapshots
 * and layer indexes nothing reaches go, unless touched since `protectSince` (a running build's work).
 */
async function sweep(
  store: Store,
  protectSince: number,
  report: PruneReport,
  extraRoots: readonly string[] = [],
): Promise<void> {
  const records = await store.listImages();
  const roots = [...records.map((r) => r.target), ...extraRoots.map((digest) => ({ digest }))];
  const { blobs, diffIDs } = await reachable(store, roots);
  // What the records left (those of running builds) name stays: their layers and those layers' snapshots.
  for (const r of await liveRecords(store)) {
    if (!r.layer) continue;
    blobs.add(r.layer.digest);
    diffIDs.add(r.layer.diffID);
  }
  for (const algorithm of ['sha256', 'sha512']) {
    const dir = path.join(store.root, 'blobs', algorithm);
    for (const hex of await readdir(dir)) {
      const digest = `${algorithm}:${hex}`;
      const p = path.join(dir, hex);
      if (isDigest(digest) && blobs.has(digest)) continue;
      const st = await stat(p).catch(() => undefined);
      if (!st || st.mtimeMs >= protectSince) continue;
      await rm(p, { force: true });
      report.removedBlobs++;
      report.reclaimedBytes += st.size;
    }
  }
  // (a snapshot that stays keeps its index: `hoist store check` holds it to it)
  const stays = new Set<string>();
  for (const snap of await snapshots(store)) {
    if (diffIDs.has(`sha256:${snap.hex}`) || snap.t >= protectSince) {
      stays.add(snap.hex);
      continue;
    }
    if (await rootsOnly(snap.paths[0])) {
      stays.add(snap.hex);
      report.leftForRoot++;
      continue;
    }
    report.reclaimedBytes += await removeSnapshot(snap);
    report.removedSnapshots++;
  }
  // The notes of blobs gone (a verified pair: verified/<blob hex>) go with them: nothing else would ever remove one.
  const noteDir = path.join(store.root, 'verified');
  for (const f of await readdir(noteDir).catch(() => [] as string[])) {
    const p = path.join(noteDir, f);
    if (!/^[0-9a-f]{64}$/.test(f) || lstatOrUndefined(store.blobPath(`sha256:${f}`))) continue;
    const st = lstatOrUndefined(p);
    if (!st || st.mtimeMs >= protectSince) continue;
    await rm(p, { force: true });
  }
  const indexDir = path.join(store.root, 'indexes');
  for (const f of await readdir(indexDir).catch(() => [])) {
    const hex = f.replace(/\.json$/, '');
    if (diffIDs.has(`sha256:${hex}`) || stays.has(hex)) continue;
    const st = await stat(path.join(indexDir, f)).catch(() => undefined);
    if (!st || st.mtimeMs >= protectSince) continue;
    await rm(path.join(indexDir, f), { force: true });
    report.reclaimedBytes += st.size;
  }
}

interface RecordEntry {
  path: string;
  /** last used */
  t: number;
  /** the record's own bytes */
  bytes: number;
  /** its layer's, which may go with it */
  layerBytes: number;
}

/** The cache records, least recently used first. */
async function listRecords(store: Store): Promise<RecordEntry[]> {
  const dir = path.join(store.root, 'records');
  const out: RecordEntry[] = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const p = path.join(dir, f);
    const st = await stat(p).catch(() => undefined);
    if (!st) continue;
    let layerBytes = 0;
    try {
      layerBytes = parseRecord(JSON.parse(await readFile(p, 'utf8')))?.layer?.size ?? 0;
    } catch {
      // damaged: its own bytes only
    }
    out.push({ path: p, t: st.mtimeMs, bytes: st.size, layerBytes });
  }
  return out.sort((a, b) => a.t - b.t);
}

async function liveRecords(store: Store): Promise<CacheRecord[]> {
  const dir = path.join(store.root, 'records');
  const out: CacheRecord[] = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    try {
      const r = parseRecord(JSON.parse(await readFile(path.join(dir, f), 'utf8')));
      if (r) out.push(r);
    } catch {
      // being written, or damaged: it keeps nothing
    }
  }
  return out;
}

/**
 * Whether only root may remove this snapshot (a build that ran RUN through sudo left it with the image's owners)
 * and this process is not root: it is left whole rather than half removed.
 */
async function rootsOnly(p: string): Promise<boolean> {
  return process.getuid?.() !== 0 && (await stat(p).catch(() => undefined))?.uid === 0;
}

/**
 * The bytes the store holds (apparent sizes of files): its blobs, lowers, cache records and layer indexes (flat
 * directories: one lstat a file), and its unpacked snapshots, each walked once (a snapshot never changes once in
 * place). Kept in `sizes.json`: each snapshot's bytes, and each directory's total with the directory's mtime, which
 * any entry added or removed moves — a collection after a build that added nothing lists no directory (the git index's
 * rule for a racy time: a total taken within a second of its directory's change is taken again next time).
 */
export async function storeSize(store: Store): Promise<number> {
  const kept = await readSizes(store);
  let changed = false;
  let total = 0;
  for (const d of measuredDirs) {
    const dir = path.join(store.root, d);
    const st = lstatOrUndefined(dir);
    if (!st) continue;
    const c = kept.dirs[d];
    if (c && c.mtimeMs === st.mtimeMs && c.at - c.mtimeMs > 1000) {
      total += c.bytes;
      continue;
    }
    const at = Date.now();
    let bytes = 0;
    if (d === 'snapshots') {
      const sizes = await snapshotSizes(store, kept);
      for (const n of sizes.values()) bytes += n;
    } else {
      for (const f of await readdir(dir).catch(() => [] as string[]))
        bytes += lstatOrUndefined(path.join(dir, f))?.size ?? 0;
    }
    kept.dirs[d] = { mtimeMs: st.mtimeMs, at, bytes };
    changed = true;
    total += bytes;
  }
  if (changed) await writeSizes(store, kept);
  return total;
}

const measuredDirs = ['blobs/sha256', 'blobs/sha512', 'records', 'indexes', 'lowers', 'snapshots'];

interface Sizes {
  version: 2;
  /** each unpacked snapshot's bytes, by its diffID's hex */
  snapshots: Record<string, number>;
  /** each directory's total, when its mtime was mtimeMs, taken at `at` */
  dirs: Record<string, { mtimeMs: number; at: number; bytes: number }>;
}

const sizesFile = (store: Store) => path.join(store.root, 'sizes.json');

async function readSizes(store: Store): Promise<Sizes> {
  try {
    const doc = JSON.parse(await readFile(sizesFile(store), 'utf8')) as Partial<Sizes>;
    if (
      doc.version === 2 &&
      typeof doc.snapshots === 'object' &&
      doc.snapshots !== null &&
      typeof doc.dirs === 'object' &&
      doc.dirs !== null
    )
      return doc as Sizes;
  } catch {
    // none yet, or damaged: measured again
  }
  return { version: 2, snapshots: {}, dirs: {} };
}

async function writeSizes(store: Store, sizes: Sizes): Promise<void> {
  await store.writeWhole(sizesFile(store), JSON.stringify(sizes)).catch(() => undefined);
}

/** Each snapshot's bytes (walking those not known yet); `kept.snapshots` left holding exactly the snapshots there. */
async function snapshotSizes(store: Store, kept: Sizes): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const snapDir = path.join(store.root, 'snapshots');
  const sizes: Record<string, number> = {};
  for (const hex of await readdir(snapDir).catch(() => [] as string[])) {
    if (!lstatOrUndefined(path.join(snapDir, hex))) continue;
    let bytes = kept.snapshots[hex];
    if (!(Number.isSafeInteger(bytes) && bytes >= 0)) bytes = await treeSize(path.join(snapDir, hex));
    sizes[hex] = bytes;
    out.set(hex, bytes);
  }
  kept.snapshots = sizes;
  return out;
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** A layer made usable by RUN: its unpacked directory, or its tar and EROFS index (one entry, the pair). */
interface SnapshotEntry {
  hex: string;
  paths: string[];
  /** last used */
  t: number;
  bytes: number;
}

/** The snapshots and lowers, with their sizes and when each was last used. */
async function snapshots(store: Store): Promise<SnapshotEntry[]> {
  const kept = await readSizes(store);
  const before = JSON.stringify(kept.snapshots);
  const out: SnapshotEntry[] = [];
  const snapDir = path.join(store.root, 'snapshots');
  for (const [hex, bytes] of await snapshotSizes(store, kept)) {
    const st = lstatOrUndefined(path.join(snapDir, hex));
    if (st) out.push({ hex, paths: [path.join(snapDir, hex)], t: st.mtimeMs, bytes });
  }
  if (JSON.stringify(kept.snapshots) !== before) await writeSizes(store, kept);
  const pairs = new Map<string, SnapshotEntry>();
  const lowerDir = path.join(store.root, 'lowers');
  for (const f of await readdir(lowerDir).catch(() => [] as string[])) {
    const hex = f.replace(/\.(tar|erofs)$/, '');
    const st = lstatOrUndefined(path.join(lowerDir, f));
    if (!st) continue;
    const entry = pairs.get(hex) ?? { hex, paths: [], t: 0, bytes: 0 };
    // The index is what a build touches when it mounts the pair; the index first, so that no index outlives its tar.
    entry.paths[f.endsWith('.erofs') ? 'unshift' : 'push'](path.join(lowerDir, f));
    entry.t = Math.max(entry.t, st.mtimeMs);
    entry.bytes += st.size;
    pairs.set(hex, entry);
  }
  return [...out, ...pairs.values()];
}

async function removeSnapshot(snap: SnapshotEntry): Promise<number> {
  for (const p of snap.paths) await rm(p, { recursive: true, force: true });
  return snap.bytes;
}

/** Unpacked layers and lowers used within this long are the working set: trimmed after records and images. */
export const workingSetMs = 60 * 60_000;

/**
 * Trims the store down to `keep` bytes, least recently used first, as BuildKit's collector does: snapshots and
 * lowers no build used within the last hour (made again from their blobs), then cache records with the layers only
 * they held, then whole images (an image record and what only it reached), then the last hour's snapshots and lowers.
 * (Snapshots strictly first left a store at its limit without its base's lower after every build — bench:store's
 * soak: 0 lowers and 0 snapshots after 200 builds, each build making them again — while records of months ago
 * stayed.) What a running build used since `protectSince` stays.
 */
async function trim(
  store: Store,
  keep: number,
  protectSince: number,
  report: PruneReport,
  extraRoots?: readonly string[],
): Promise<void> {
  let size = await storeSize(store);
  if (size <= keep) return;
  const dropSnapshots = async (before: number) => {
    for (const snap of (await snapshots(store)).sort((a, b) => a.t - b.t)) {
      if (size <= keep) return;
      if (snap.t >= Math.min(before, protectSince)) continue; // (and in use by a running build)
      if (await rootsOnly(snap.paths[0])) {
        report.leftForRoot++;
        continue;
      }
      size -= await removeSnapshot(snap);
      report.reclaimedBytes += snap.bytes;
      report.removedSnapshots++;
    }
  };
  await dropSnapshots(Date.now() - workingSetMs);
  if (size <= keep) return;
  const again = async () => {
    await sweep(store, protectSince, report, extraRoots);
    size = await storeSize(store);
  };
  // Cache records, the one used longest ago first, in runs that should free enough (their layers' sizes; a layer an
  // image holds too stays): then a sweep, and the store measured again.
  let expected = 0;
  let pending = 0;
  for (const r of await listRecords(store)) {
    if (r.t >= protectSince) continue;
    await rm(r.path, { force: true });
    report.removedRecords++;
    report.reclaimedBytes += r.bytes;
    expected += r.bytes + r.layerBytes;
    pending++;
    if (size - expected <= keep) {
      await again();
      expected = 0;
      pending = 0;
      if (size <= keep) return;
    }
  }
  if (pending > 0) await again();
  // Whole images, the one whose manifest was used longest ago first; none a running build used since it began.
  const records = await store.listImages();
  const used = await Promise.all(
    records.map(async (r) => ({
      r,
      t: (await stat(store.blobPath(r.target.digest)).catch(() => undefined))?.mtimeMs ?? 0,
    })),
  );
  for (const { r, t } of used.sort((a, b) => a.t - b.t)) {
    if (size <= keep) return;
    if (t >= protectSince) continue;
    await store.removeImage(r.name);
    report.removedImages.push(r.name);
    await again();
  }
  await dropSnapshots(Number.POSITIVE_INFINITY);
}
