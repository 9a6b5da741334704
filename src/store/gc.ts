// Garbage collection of the store (`hoist prune`). The build cache (cache records) goes, as `docker builder prune`
// removes it; what an image record reaches is kept: its index, manifests, config, layers and the snapshots of its
// diffIDs (unpacked directories, or a tar with its EROFS index). The rest is "dangling" and goes, except what a live
// hoist process may be using right now (newer than the oldest lease: the records it used and what they name, the
// blobs and snapshots it touched). `all` empties the store; `keepStorage` then trims least recently used first:
// snapshots (they can be made again from the blobs), then whole images.
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
async function reachable(store: Store, roots: Iterable<{ digest: string; mediaType?: string }>): Promise<{ blobs: Set<string>; diffIDs: Set<string> }> {
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
        parseImageConfig(bytes).rootfs.diff_ids.forEach((x) => diffIDs.add(x));
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

export async function prune(store: Store, options: PruneOptions = {}): Promise<PruneReport> {
  return withFileLock(store.gcLock, async () => {
    const report: PruneReport = { removedBlobs: 0, removedSnapshots: 0, removedCacheMounts: 0, leftForRoot: 0, removedImages: [], removedRecords: 0, reclaimedBytes: 0 };
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
    const recordDir = path.join(store.root, 'records');
    for (const f of await readdir(recordDir).catch(() => [] as string[])) {
      const p = path.join(recordDir, f);
      const st = await stat(p).catch(() => undefined);
      if (!st || st.mtimeMs >= protectSince) continue;
      await rm(p, { force: true });
      report.removedRecords++;
      report.reclaimedBytes += st.size;
    }
    const sweep = async () => {
      const records = await store.listImages();
      const roots = [...records.map((r) => r.target), ...(options.extraRoots ?? []).map((digest) => ({ digest }))];
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
      for (const snap of await snapshots(store)) {
        if (diffIDs.has(`sha256:${snap.hex}`) || snap.t >= protectSince) continue;
        if (await rootsOnly(snap.paths[0])) {
          report.leftForRoot++;
          continue;
        }
        report.reclaimedBytes += await removeSnapshot(snap);
        report.removedSnapshots++;
      }
      const indexDir = path.join(store.root, 'indexes');
      for (const f of await readdir(indexDir).catch(() => [])) {
        if (diffIDs.has(`sha256:${f.replace(/\.json$/, '')}`)) continue;
        const st = await stat(path.join(indexDir, f)).catch(() => undefined);
        if (!st || st.mtimeMs >= protectSince) continue;
        await rm(path.join(indexDir, f), { force: true });
        report.reclaimedBytes += st.size;
      }
    };
    // What killed builds left (their mounts first, then their temp dirs): prune could not remove them otherwise.
    report.leftovers = cleanLeftovers(store.root);
    await sweep();
    if (options.keepStorage !== undefined) await trim(store, options.keepStorage, protectSince, report, sweep);
    return report;
  });
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

export async function storeSize(store: Store): Promise<number> {
  let n = 0;
  for (const d of ['blobs', 'snapshots', 'lowers']) n += await treeSize(path.join(store.root, d));
  return n;
}

/** A layer made usable by RUN: its unpacked directory, or its tar and EROFS index (one entry, the pair). */
interface SnapshotEntry {
  hex: string;
  paths: string[];
  /** last used */
  t: number;
}

async function snapshots(store: Store): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  const snapDir = path.join(store.root, 'snapshots');
  for (const hex of await readdir(snapDir).catch(() => [] as string[])) {
    const st = await stat(path.join(snapDir, hex)).catch(() => undefined);
    if (st) out.push({ hex, paths: [path.join(snapDir, hex)], t: st.mtimeMs });
  }
  const pairs = new Map<string, SnapshotEntry>();
  const lowerDir = path.join(store.root, 'lowers');
  for (const f of await readdir(lowerDir).catch(() => [] as string[])) {
    const hex = f.replace(/\.(tar|erofs)$/, '');
    const st = await stat(path.join(lowerDir, f)).catch(() => undefined);
    if (!st) continue;
    const entry = pairs.get(hex) ?? { hex, paths: [], t: 0 };
    // The index is what a build touches when it mounts the pair; the index first, so that no index outlives its tar.
    entry.paths[f.endsWith('.erofs') ? 'unshift' : 'push'](path.join(lowerDir, f));
    entry.t = Math.max(entry.t, st.mtimeMs);
    pairs.set(hex, entry);
  }
  return [...out, ...pairs.values()];
}

async function removeSnapshot(snap: SnapshotEntry): Promise<number> {
  let n = 0;
  for (const p of snap.paths) {
    n += await treeSize(p);
    await rm(p, { recursive: true, force: true });
  }
  return n;
}

async function trim(store: Store, keep: number, protectSince: number, report: PruneReport, sweep: () => Promise<void>): Promise<void> {
  let size = await storeSize(store);
  if (size <= keep) return;
  for (const snap of (await snapshots(store)).sort((a, b) => a.t - b.t)) {
    if (size <= keep) return;
    if (snap.t >= protectSince) continue; // in use by a running build
    if (await rootsOnly(snap.paths[0])) {
      report.leftForRoot++;
      continue;
    }
    const n = await removeSnapshot(snap);
    size -= n;
    report.reclaimedBytes += n;
    report.removedSnapshots++;
  }
  // Whole images, the one whose manifest was used longest ago first.
  const records = await store.listImages();
  const used = await Promise.all(records.map(async (r) => ({ r, t: (await stat(store.blobPath(r.target.digest)).catch(() => undefined))?.mtimeMs ?? 0 })));
  for (const { r } of used.sort((a, b) => a.t - b.t)) {
    if (size <= keep) return;
    await store.removeImage(r.name);
    report.removedImages.push(r.name);
    const before = report.reclaimedBytes;
    await sweep();
    size -= report.reclaimedBytes - before;
  }
}
