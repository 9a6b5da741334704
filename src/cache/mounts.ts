// RUN --mount=type=cache directories kept across CI runs: the ones a build used, what they held when the build
// first mounted them, and a digest of a directory's content (names, types, modes, owners, link targets and file
// bytes; never times, so that a rebuild that changed nothing in a cache does not save it again). The Actions cache
// keeps a mount as an entry of its own (gha.ts); a registry or local cache as a blob beside its layers: a gzip'd
// tar of the directory, named in the cache's config with the digest of the content it holds, so that an unchanged
// mount is carried over by reference and never packed or uploaded again.
import { createHash } from 'node:crypto';
import { createReadStream, readlinkSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { PassThrough, Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream } from '../image/digest.js';
import type { Descriptor } from '../image/manifest.js';
import { decompressed } from '../layer/compression.js';
import { extractLayer } from '../layer/extract.js';
import { openFileInside, openPinnedFile, walkPinned } from '../layer/pinned.js';
import type { BlobSink, BlobSource, Layer } from '../layer/layer.js';
import { type CacheLayers, type CacheSource, defaultMountMax } from './backend.js';
import { type LayerEntry, writeLayer } from '../layer/writer.js';

export interface UsedCacheMount {
  /** the cache's name in the store (its id, with from= or the owner it starts with, hashed) */
  name: string;
  /** the mount's id, for the log */
  id: string;
  dir: string;
  /** the digest of its content when the build first mounted it (none when it was over the size a cache keeps) */
  before?: string;
  /** the copies of this cache that the build's --cache-from caches hold (an unchanged one is saved by reference) */
  kept?: readonly KeptMount[];
}

/** A cache mount as a registry or local cache holds it: a blob, and the digest of the content it unpacks to. */
export interface MountBlob {
  name: string;
  /** treeDigest of the directory the blob holds */
  content: string;
  descriptor: Descriptor;
}

/** A cache's copy of a mount, and where its blob can be fetched. */
export interface KeptMount {
  blob: MountBlob;
  source: BlobSource;
}

/** Where persisted cache mounts come from: restores `name` into the empty directory `dir`; false when none. */
export interface MountRestorer {
  restoreMount(name: string, dir: string, maxBytes: number): Promise<boolean>;
}

/** The bytes a directory's files hold, counted until they pass `max` (a cache mount bigger than that is not looked into). */
export async function treeBytes(dir: string, max = Infinity): Promise<number> {
  let bytes = 0;
  await walkPinned(dir, async (e) => {
    if (e.stats.isFile()) bytes += e.stats.size;
    return bytes <= max;
  }).catch((e: Error) => {
    if (!(e instanceof Over)) throw e;
  });
  return bytes;
}

class Over extends Error {}

/**
 * The digest of everything under `dir` (itself excluded), and its bytes; walked by descriptors (another build may be
 * writing the cache: a link swapped in cannot lead the walk, or a read, out of it). Over `max` bytes (counted
 * first, from the files' sizes, so a huge sparse file costs nothing): no digest.
 */
export async function treeDigest(dir: string, max = Infinity): Promise<{ digest?: string; bytes: number }> {
  const bytes = await treeBytes(dir, max);
  if (bytes > max) return { bytes };
  const h = createHash('sha256');
  await walkPinned(dir, async (e) => {
    const st = e.stats;
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    h.update(
      `${JSON.stringify(e.rel)} ${type} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${type === 'f' ? st.size : 0}`,
    );
    if (type === 'l') h.update(` -> ${readlinkSync(e.path)}`);
    if (type === 'f') {
      const fd = openPinnedFile(e);
      if (fd === undefined) h.update(' (changed while read)');
      else for await (const c of createReadStream('', { fd, highWaterMark: 1 << 20 })) h.update(c as Buffer);
    }
    h.update('\n');
  });
  return { digest: `sha256:${h.digest('hex')}`, bytes };
}

/**
 * The directory as a layer blob in `sink` (the store): directories, files (hard links kept), symbolic links and
 * fifos, owners and modes as they are. Sockets and device nodes are not kept (a cache holds downloads). Walked by
 * descriptors, each file read through the descriptor the walk reached it by.
 */
export async function packMount(sink: BlobSink, dir: string): Promise<Descriptor> {
  const entries: LayerEntry[] = [];
  const links = new Map<string, string>();
  await walkPinned(dir, async (e) => {
    const st = e.stats;
    const name = e.rel;
    const base = {
      name,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: 0,
      mtime: Math.floor(st.mtimeMs / 1000),
    };
    if (st.isDirectory()) entries.push({ header: { ...base, type: 'directory' } });
    else if (st.isSymbolicLink())
      entries.push({ header: { ...base, type: 'symlink', linkname: readlinkSync(e.path) } });
    else if (st.isFIFO()) entries.push({ header: { ...base, type: 'fifo' } });
    else if (st.isFile()) {
      const first = st.nlink > 1 ? links.get(`${st.dev}:${st.ino}`) : undefined;
      if (first) entries.push({ header: { ...base, type: 'hardlink', linkname: first } });
      else {
        if (st.nlink > 1) links.set(`${st.dev}:${st.ino}`, name);
        // Opened again when the layer is written, by descriptors, and only if it is still the file walked here.
        entries.push({
          header: { ...base, type: 'file', size: st.size },
          content: { open: () => createReadStream('', { fd: openFileInside(dir, name, st), highWaterMark: 1 << 20 }) },
        });
      }
    }
  });
  const w = await writeLayer(sink, entries, { oci: true });
  return { mediaType: w.mediaType, digest: w.digest, size: w.size };
}

/**
 * A packed mount (a gzip'd tar, as packMount writes it) from `source` into the new, empty cache directory `dir`:
 * unpacked beside `dir` (every name resolved inside it, no device nodes, no setuid bits, at most `maxBytes`: the
 * blob may be hostile) and moved into place only when whole. A blob that fails leaves `dir` as it was. `check`
 * sees every byte of the blob before it is unpacked (a digest to verify).
 */
export async function unpackMount(
  source: Readable,
  dir: string,
  maxBytes: number,
  check: Transform = new PassThrough(),
): Promise<void> {
  const tmp = `${dir}.restoring-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await pipeline(source, check, async (verified: AsyncIterable<Buffer>) => {
      const { stream } = await decompressed(Readable.from(verified));
      await extractLayer(stream, tmp, { whiteouts: 'none', cacheContent: true, maxBytes });
      for await (const _ of stream); // the rest (gzip's trailer): a digest covers every byte
    });
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A kept mount's blob, fetched from its cache and checked against its digest as it streams, into `dir`. */
export async function restoreMountBlob(kept: KeptMount, dir: string, maxBytes: number): Promise<void> {
  await kept.source.fetch(kept.blob.descriptor, {
    writeBlob: async (source: Readable, expected) => {
      const check = new DigestStream(
        expected ? { ...expected, where: `cache mount blob ${expected.digest}` } : undefined,
      );
      await unpackMount(source, dir, maxBytes, check);
      return { digest: check.digest, size: check.size };
    },
  });
}

/** The mounts a registry or local cache saves: unchanged ones by reference to a cache's blob, new ones packed. */
export interface MountsToSave {
  blobs: { blob: MountBlob; layer: Layer }[];
  notes: string[];
}

/** Which of the build's cache mounts a registry or local cache keeps, and the blobs for them (packed once per build). */
export async function mountsToSave(
  sink: BlobSink,
  mounts: readonly UsedCacheMount[],
  maxBytes: number,
): Promise<MountsToSave> {
  const out: MountsToSave = { blobs: [], notes: [] };
  for (const m of mounts) {
    const now = await treeDigest(m.dir, maxBytes);
    if (now.digest === undefined) {
      out.notes.push(overMax(m.id, maxBytes));
      continue;
    }
    const kept = m.kept?.find((k) => k.blob.content === now.digest);
    if (kept) {
      out.blobs.push({
        blob: kept.blob,
        layer: { descriptor: kept.blob.descriptor, diffID: '', sources: [kept.source] },
      });
      continue;
    }
    const descriptor = await packMount(sink, m.dir);
    out.blobs.push({
      blob: { name: m.name, content: now.digest, descriptor },
      layer: { descriptor, diffID: '', sources: [] },
    });
    out.notes.push(`cache mount ${m.id} saved`);
  }
  return out;
}

/** Why a cache mount is not saved: its files hold more than the cap (counted up to there, never hashed). */
export const overMax = (id: string, maxBytes: number): string =>
  `cache mount ${id} not saved: its files hold more than mount-max-size (${maxBytes} bytes)`;

/** The build's cache mounts for a registry or local cache to save (none when the build kept none). */
export async function mountsOf(from: CacheLayers, maxBytes = defaultMountMax): Promise<MountsToSave> {
  return from.keptMounts ? from.keptMounts(maxBytes) : { blobs: [], notes: [] };
}

/** What a registry or local cache source offers of its cache mounts. */
export function mountsSource(
  mounts: readonly MountBlob[],
  blobs: CacheSource['blobs'],
): Pick<CacheSource, 'mountBlob' | 'restoreMount'> {
  const byName = new Map(mounts.map((m) => [m.name, m]));
  return {
    mountBlob: (name) => byName.get(name),
    restoreMount: async (name, dir, maxBytes) => {
      const blob = byName.get(name);
      if (!blob) return false;
      await restoreMountBlob({ blob, source: blobs }, dir, maxBytes);
      return true;
    },
  };
}
