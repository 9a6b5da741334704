// How records travel outside the store. A cache is one OCI image manifest: its config a small JSON blob of hoist's
// own media type holding the records, its layers the layers the records name. Not an index: registries that refuse
// unusual indexes (ECR needed buildx's image-manifest=true for this) take a plain manifest. The same records can
// also ride inline in a pushed image's config (as BuildKit's inline cache does), under `hoist.cache.v1`. A cache
// manifest may also carry the build's cache mounts (mounts.ts): blobs after the layers, named in the config.
import { digestOf, isDigest } from '../image/digest.js';
import { type Descriptor, type ImageManifest, inFamily, manifestBytes } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import type { MountBlob } from './mounts.js';
import { type CacheRecord, parseRecord } from './record.js';
import { canonicalJSON } from './keys.js';

/** the annotation on a cache-mount blob in a cache manifest: the mount's id, hashed (for people reading it) */
const mountAnnotation = 'dev.hoist.cache-mount';

export const cacheConfigMediaType = 'application/vnd.hoist.cache.config.v1+json';

/** The image config field that holds inline records. */
export const inlineCacheField = 'hoist.cache.v1';

export class CacheFormatError extends Error {
  override readonly name = 'CacheFormatError';
}

export interface EncodedCache {
  config: Buffer;
  manifest: Buffer;
  /** the layers, in the manifest's order */
  layers: Descriptor[];
}

/**
 * The records (and mounts) as a cache manifest and its config; each blob once, layers in the order first named.
 * The records go in the order of their keys, each written canonically (keys.ts): the same records are the same
 * bytes whatever order a build met them in, so that a build that changed nothing exports the manifest it read.
 */
export function encodeCache(records: readonly CacheRecord[], mounts: readonly MountBlob[] = []): EncodedCache {
  const layers = new Map<string, Descriptor>();
  records = [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const r of records)
    if (r.layer && !layers.has(r.layer.digest))
      layers.set(r.layer.digest, { mediaType: r.layer.mediaType, digest: r.layer.digest, size: r.layer.size });
  for (const m of mounts)
    if (!layers.has(m.descriptor.digest))
      layers.set(m.descriptor.digest, { ...m.descriptor, annotations: { [mountAnnotation]: m.name } });
  const mountList = mounts.map((m) => ({
    name: m.name,
    content: m.content,
    mediaType: m.descriptor.mediaType,
    digest: m.descriptor.digest,
    size: m.descriptor.size,
  }));
  const recordsJSON = `[${records.map((r) => canonicalJSON(r)).join(',')}]`;
  const config = Buffer.from(
    `{"version":1,"records":${recordsJSON}${mountList.length > 0 ? `,"mounts":${JSON.stringify(mountList)}` : ''}}`,
  );
  // An OCI manifest names its layers by OCI types (the records keep the type each layer was built with).
  const manifest: ImageManifest = inFamily(
    {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: cacheConfigMediaType, digest: digestOf(config), size: config.length },
      layers: [...layers.values()],
    },
    true,
  );
  return { config, manifest: Buffer.from(manifestBytes(manifest)), layers: manifest.layers };
}

/**
 * JSON.parse for what a cache holds: its error never quotes the text (whose first bytes could be anything, a host
 * file's among them, had something led the read there), only says where it was.
 */
export function parseJSON(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CacheFormatError(`${where} is not valid JSON`);
  }
}

/** The records of a cache config (or of an image config's inline field); records that do not parse are left out. */
export function decodeRecords(value: unknown, where: string): CacheRecord[] {
  const list = Array.isArray(value) ? value : (value as { version?: unknown; records?: unknown } | null)?.records;
  if (!Array.isArray(list)) throw new CacheFormatError(`${where}: no cache records`);
  return list.map(parseRecord).filter((r): r is CacheRecord => r !== undefined);
}

/** The cache mounts a cache config names; entries that do not parse are left out. */
export function decodeMounts(value: unknown): MountBlob[] {
  const list = (value as { mounts?: unknown } | null)?.mounts;
  if (!Array.isArray(list)) return [];
  const out: MountBlob[] = [];
  for (const m of list as Partial<{
    name: unknown;
    content: unknown;
    mediaType: unknown;
    digest: unknown;
    size: unknown;
  }>[]) {
    if (
      typeof m !== 'object' ||
      m === null ||
      typeof m.name !== 'string' ||
      !/^[0-9a-f]{32}$/.test(m.name) ||
      typeof m.content !== 'string' ||
      !isDigest(m.content)
    )
      continue;
    if (
      typeof m.mediaType !== 'string' ||
      typeof m.digest !== 'string' ||
      !isDigest(m.digest) ||
      !Number.isSafeInteger(m.size) ||
      (m.size as number) < 0
    )
      continue;
    out.push({
      name: m.name,
      content: m.content,
      descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.size as number },
    });
  }
  return out;
}
