// `hoist store check` (fsck): every object of the store checked against what names it, and what dead hoist processes
// left. A blob must hash to its name; an image record must parse and name a manifest or index the store holds, whose
// manifests (those held) name a config the store holds; a cache record must parse and its layer be held; a lower's tar must hash to its
// diffID and have its EROFS index beside it (and no index without its tar); a layer index must parse as headers; a
// verified note must name a diffID. Left by a killed build: temp dirs, mounts and runtime containers of dead pids.
// `repair` removes what is broken (the next build fetches or makes it again) and cleans what was left, under the
// store's gc lock (as `hoist prune`), sparing whatever a running build wrote since the oldest live lease.
// An unpacked layer (a snapshot directory) has no digest of its own: its regular files are held to its layer index's
// names and sizes. Not checked here: layer blobs a manifest names but the store lacks (a base's layers are fetched
// when a build needs them: absent is normal).
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseRecord } from '../cache/record.js';
import { DigestStream, isDigest } from '../image/digest.js';
import { parseManifest } from '../image/manifest.js';
import { isConfigMediaType, isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import { cleanLeftovers, findLeftovers, describeLeftovers } from '../exec/leftovers.js';
import { oldestLiveLease } from './gc.js';
import { withFileLock } from './lock.js';
import type { Store } from './store.js';
import type { TarHeader } from '../layer/tar.js';

export interface CheckProblem {
  /** the store's path of what is broken, relative to its root */
  path: string;
  what: string;
  /** removed (with `repair`) */
  repaired: boolean;
}

export interface CheckReport {
  checked: {
    blobs: number;
    images: number;
    records: number;
    lowers: number;
    indexes: number;
    notes: number;
    snapshots: number;
  };
  problems: CheckProblem[];
  /** what dead processes left, in words ('' when nothing); cleaned with `repair` */
  leftovers: string;
  /** objects that looked broken but are newer than a running build's start (its work in progress): not judged */
  busy: number;
}

/** e2fsck's exit codes, which scripts already know: nothing wrong, all repaired, something left broken. */
export const checkExit = { clean: 0, repaired: 1, broken: 4 } as const;

export function checkExitCode(r: CheckReport, repair: boolean): number {
  const left = r.problems.some((p) => !p.repaired) || (!repair && r.leftovers !== '');
  if (left) return checkExit.broken;
  return r.problems.length > 0 || (repair && r.leftovers !== '') ? checkExit.repaired : checkExit.clean;
}

const hexName = /^[0-9a-f]{64}$/;

export async function checkStore(store: Store, options: { repair?: boolean } = {}): Promise<CheckReport> {
  const run = () => check(store, options.repair === true);
  return options.repair ? withFileLock(store.gcLock, run) : run();
}

async function check(store: Store, repair: boolean): Promise<CheckReport> {
  const report: CheckReport = {
    checked: { blobs: 0, images: 0, records: 0, lowers: 0, indexes: 0, notes: 0, snapshots: 0 },
    problems: [],
    leftovers: '',
    busy: 0,
  };
  // What a running build may be writing right now (a lower's tar before its index) is newer than the oldest live
  // lease: not judged, and never removed.
  const since = await oldestLiveLease(store, repair);
  const problem = async (abs: string, what: string) => {
    const st = await stat(abs).catch(() => undefined);
    if (st && st.mtimeMs >= since) {
      report.busy++;
      return;
    }
    // (not removable by this user: a root-owned snapshot, a read-only store; said as left broken)
    const repaired =
      repair &&
      (await rm(abs, { recursive: true, force: true }).then(
        () => true,
        () => false,
      ));
    report.problems.push({ path: path.relative(store.root, abs), what, repaired });
  };
  const list = (dir: string) => readdir(path.join(store.root, dir)).catch(() => [] as string[]);

  const blobs = new Set<string>();
  for (const algorithm of ['sha256', 'sha512']) {
    for (const name of await list(path.join('blobs', algorithm))) {
      const abs = path.join(store.root, 'blobs', algorithm, name);
      const digest = `${algorithm}:${name}`;
      report.checked.blobs++;
      if (!isDigest(digest)) {
        await problem(abs, 'a blob whose name is no digest');
        continue;
      }
      if (await store.blobIntact(digest)) blobs.add(digest);
      else await problem(abs, `its bytes do not hash to ${digest}`);
    }
  }

  for (const name of await list('images')) {
    const abs = path.join(store.root, 'images', name);
    report.checked.images++;
    let target: { digest: string; mediaType: string } | undefined;
    let imageName = '';
    try {
      const r = JSON.parse(await readFile(abs, 'utf8')) as {
        name?: unknown;
        target?: { digest?: unknown; mediaType?: unknown };
      };
      if (
        typeof r.name === 'string' &&
        typeof r.target?.digest === 'string' &&
        isDigest(r.target.digest) &&
        typeof r.target.mediaType === 'string'
      ) {
        target = { digest: r.target.digest, mediaType: r.target.mediaType };
        imageName = r.name;
      }
    } catch {
      // not JSON
    }
    if (!target) {
      await problem(abs, 'an image record that is not one');
      continue;
    }
    const missing = await missingDocuments(store, target, blobs);
    if (missing) await problem(abs, `image ${imageName}: ${missing}`);
  }

  for (const name of await list('records')) {
    const abs = path.join(store.root, 'records', name);
    report.checked.records++;
    const r = await readFile(abs, 'utf8')
      .then((t) => parseRecord(JSON.parse(t)))
      .catch(() => undefined);
    if (!r || `${r.key.slice(7)}.json` !== name)
      await problem(abs, 'a cache record that is not one, or not under its key');
    // (the store's records are of layers this store made: one whose blob is gone or damaged would be a step taken
    // from the cache with nothing to show for it)
    else if (r.layer && !blobs.has(r.layer.digest))
      await problem(abs, `a cache record of the layer ${r.layer.digest}, which the store lacks whole`);
  }

  const lowers = new Map<string, Set<string>>();
  for (const f of await list('lowers')) {
    const m = /^([0-9a-f]{64})\.(tar|erofs)$/.exec(f);
    if (!m) continue; // a partial write goes through tmp/: nothing else is made here
    lowers.set(m[1], (lowers.get(m[1]) ?? new Set()).add(m[2]));
  }
  for (const [hex, kinds] of lowers) {
    report.checked.lowers++;
    const tar = path.join(store.root, 'lowers', `${hex}.tar`);
    if (!kinds.has('tar')) {
      await problem(path.join(store.root, 'lowers', `${hex}.erofs`), 'an EROFS index without its tar');
      continue;
    }
    if (!(await hashesTo(tar, `sha256:${hex}`))) {
      if (kinds.has('erofs'))
        await problem(
          path.join(store.root, 'lowers', `${hex}.erofs`),
          'the index of a tar that does not hash to its diffID',
        );
      await problem(tar, `a lower's tar that does not hash to sha256:${hex}`);
    } else if (!kinds.has('erofs')) {
      await problem(tar, "a lower's tar without its EROFS index");
    }
  }

  for (const f of await list('indexes')) {
    const abs = path.join(store.root, 'indexes', f);
    report.checked.indexes++;
    const ok =
      hexName.test(f.replace(/\.json$/, '')) &&
      (await readFile(abs, 'utf8')
        .then((t) => {
          const doc = JSON.parse(t) as { version?: unknown; headers?: unknown };
          return doc.version === 1 && Array.isArray(doc.headers);
        })
        .catch(() => false));
    if (!ok) await problem(abs, 'a layer index that is not one');
  }

  // An unpacked layer has no digest of its own, but its layer index says what it holds: a regular file of another
  // size (cut short by a power loss: snapshots are not synced file by file) or missing makes it broken.
  for (const hex of await list('snapshots')) {
    const abs = path.join(store.root, 'snapshots', hex);
    if (!hexName.test(hex)) continue;
    const headers = await readFile(path.join(store.root, 'indexes', `${hex}.json`), 'utf8')
      .then((t) => (JSON.parse(t) as { headers?: TarHeader[] }).headers)
      .catch(() => undefined);
    report.checked.snapshots++;
    // (its index is written before it is named: one without is what an older hoist or a hand left)
    if (!Array.isArray(headers)) {
      await problem(abs, 'an unpacked layer without its layer index (nothing to hold it to)');
      continue;
    }
    const wrong = await snapshotMismatch(abs, headers);
    if (wrong) await problem(abs, `an unpacked layer that is not its layer's: ${wrong}`);
  }

  for (const f of await list('verified')) {
    const abs = path.join(store.root, 'verified', f);
    report.checked.notes++;
    const ok = hexName.test(f) && isDigest((await readFile(abs, 'utf8').catch(() => '')).trim());
    if (!ok) await problem(abs, 'a verified note that names no diffID');
  }

  const left = repair ? cleanLeftovers(store.root) : findLeftovers(store.root);
  report.leftovers = describeLeftovers(left);
  return report;
}

/**
 * How an unpacked layer differs from its headers (undefined: it does not): each regular file the layer ends with is
 * there with its size. Walked without following a symbolic link (the directory's own entries, lstat).
 */
async function snapshotMismatch(dir: string, headers: readonly TarHeader[]): Promise<string | undefined> {
  const want = new Map<string, number>();
  for (const h of headers) {
    const name = h.name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
    if (h.type === 'file') want.set(name, h.size);
    else want.delete(name);
  }
  const have = new Map<string, number>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => [])) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) have.set(r, (await lstat(path.join(dir, r)).catch(() => undefined))?.size ?? -1);
    }
  };
  await walk('');
  for (const [name, size] of want) {
    if (path.basename(name).startsWith('.wh.')) continue; // a whiteout: applied, or an overlay's device
    const got = have.get(name);
    // (a name that is not plain text may be spelt otherwise on disk: only its size is held to)
    if (got === undefined) {
      if (/^[\x20-\x7e]+$/.test(name)) return `${name} is missing`;
    } else if (got !== size) return `${name} has ${got} bytes, its layer ${size}`;
  }
  return undefined;
}

/** Whether the file's bytes hash to `digest` (read whole, in a stream). */
function hashesTo(file: string, digest: string): Promise<boolean> {
  return pipeline(createReadStream(file), new DigestStream({ digest }), async (s) => {
    for await (const _ of s) void _;
  }).then(
    () => true,
    () => false,
  );
}

/** What of an image's documents the store lacks (its manifest or index, a held manifest's config), or undefined. */
async function missingDocuments(
  store: Store,
  target: { digest: string; mediaType: string },
  blobs: ReadonlySet<string>,
): Promise<string | undefined> {
  if (!blobs.has(target.digest))
    return `its ${isIndexMediaType(target.mediaType) ? 'index' : 'manifest'} ${target.digest} is missing or damaged`;
  const queue = [target];
  while (queue.length > 0) {
    const d = queue.pop() as { digest: string; mediaType: string };
    if (!isIndexMediaType(d.mediaType) && !isManifestMediaType(d.mediaType)) continue;
    if (!blobs.has(d.digest)) continue; // another platform's manifest, not pulled: fetched when asked for
    let m: ReturnType<typeof parseManifest>;
    try {
      m = parseManifest(await store.readBlob(d.digest), d.mediaType);
    } catch (e) {
      return `${d.digest} is no ${isIndexMediaType(d.mediaType) ? 'index' : 'manifest'} (${(e as Error).message})`;
    }
    if (m.kind === 'index') queue.push(...m.index.manifests);
    else if (isConfigMediaType(m.manifest.config.mediaType) && !blobs.has(m.manifest.config.digest))
      return `the config ${m.manifest.config.digest} of ${d.digest} is missing or damaged`;
  }
  return undefined;
}
