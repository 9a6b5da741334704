// The collection after every build (issue 37): when the store holds more than its limit, it is trimmed least
// recently used first (gc.ts trim: snapshots and lowers, then cache records, then images) down to the limit, as
// BuildKit's default policy keeps its cache under keepStorage. The limit: --store-max / HOIST_STORE_MAX, in bytes
// (`10GB`, `512MiB`) or a share of the file system holding the store (`15%`); by default 10% of it and at least
// 2 GB (BuildKit's default keeps 10% of the disk, 2 GB where the disk's size is unknown: docker/docs
// content/manuals/build/cache/garbage-collection.md; the floor is issue 37's, so that a small disk still keeps a
// base and its cache); `0` turns the collection off. One collection at a
// time, under the gc lock; a build that finds it held waits up to a minute, then leaves the work to the next build.
import { statfs } from 'node:fs/promises';
import { formatBytes, parseBytes } from '../cli/format.js';
import { trimStore, storeSize, type PruneReport } from './gc.js';
import { acquireFileLock } from './lock.js';
import type { Store } from './store.js';

export const defaultShare = 0.1;
export const defaultFloor = 2_000_000_000;

export class StoreLimitError extends Error {
  override readonly name = 'StoreLimitError';
}

/** The store's limit in bytes from the option's text (undefined: the default); 0 is off. */
export async function storeLimit(text: string | undefined, root: string): Promise<number> {
  const fsBytes = async () => {
    const s = await statfs(root);
    return s.blocks * s.bsize;
  };
  const t = text?.trim();
  if (t === undefined || t === '') return Math.max(defaultFloor, Math.floor((await fsBytes()) * defaultShare));
  const share = /^(\d+(?:\.\d+)?)\s*%$/.exec(t);
  if (share) {
    const n = Number(share[1]);
    if (!(n > 0 && n <= 100))
      throw new StoreLimitError(`store limit ${JSON.stringify(text)}: a share must be above 0% and at most 100%`);
    return Math.floor(((await fsBytes()) * n) / 100);
  }
  try {
    return parseBytes(t);
  } catch {
    throw new StoreLimitError(
      `store limit ${JSON.stringify(text)}: expected a size (10GB, 512MiB, 1000000), a share of the disk (15%), or 0 for no limit`,
    );
  }
}

export interface Collection {
  limit: number;
  before: number;
  after: number;
  ms: number;
  report: PruneReport;
}

/**
 * Trims the store when it holds more than `limit` bytes; undefined when it did not (under the limit, the limit off,
 * or another process collecting). Cheap when under the limit: flat directories listed, snapshot sizes kept.
 */
export async function collect(store: Store, limit: number): Promise<Collection | undefined> {
  if (!(limit > 0)) return undefined;
  const t0 = performance.now();
  // Another collection (or a prune) running: this one waits for it, briefly, and then measures what it left (the
  // last of several builds that end together must not skip the trim the others could not do while it ran).
  const release = await acquireFileLock(store.gcLock, { timeoutMs: 60_000 }).catch(() => undefined);
  if (!release) return undefined;
  try {
    const before = await storeSize(store);
    if (before <= limit) return undefined;
    const report = await trimStore(store, limit);
    return { limit, before, after: await storeSize(store), ms: performance.now() - t0, report };
  } finally {
    await release();
  }
}

/**
 * The store trimmed to its limit after a build, whatever its outcome; a collection that fails is said, never the
 * build's failure.
 */
export async function collectAfter(store: Store, limit: number, say: (line: string) => void): Promise<void> {
  try {
    const c = await collect(store, limit);
    if (c) say(describeCollection(c));
  } catch (e) {
    say(`store: the collection after the build failed: ${(e as Error).message}`);
  }
}

/** The collection's one log line. */
export function describeCollection(c: Collection, format: (n: number) => string = formatBytes): string {
  const r = c.report;
  const what = [
    r.removedSnapshots && `${r.removedSnapshots} unpacked layers`,
    r.removedRecords && `${r.removedRecords} cache records`,
    r.removedBlobs && `${r.removedBlobs} blobs`,
    r.removedImages.length && `${r.removedImages.length} images`,
  ].filter(Boolean);
  const still = c.after > c.limit ? `; still ${format(c.after)}: the rest is in use by running builds or by root` : '';
  return `store: over its limit of ${format(c.limit)} (${format(c.before)}): freed ${format(c.before - c.after)} in ${(c.ms / 1000).toFixed(2)} s${what.length ? ` (${what.join(', ')})` : ''}${still}`;
}
