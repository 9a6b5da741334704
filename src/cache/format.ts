// How records travel outside the store. A cache is one OCI image manifest: its config a small JSON blob of hoist's
// own media type holding the records, its layers the layers the records name. Not an index: registries that refuse
// unusual indexes (ECR needed buildx's image-manifest=true for this) take a plain manifest. The same records can
// also ride inline in a pushed image's config (as BuildKit's inline cache does), under `hoist.cache.v1`.
import { digestOf } from '../image/digest.js';
import { type Descriptor, type ImageManifest, manifestBytes } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import { type CacheRecord, parseRecord } from './record.js';

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

/** The records as a cache manifest and its config; each layer once, in the order first named. */
export function encodeCache(records: readonly CacheRecord[]): EncodedCache {
  const layers = new Map<string, Descriptor>();
  for (const r of records) if (r.layer && !layers.has(r.layer.digest)) layers.set(r.layer.digest, { mediaType: r.layer.mediaType, digest: r.layer.digest, size: r.layer.size });
  const config = Buffer.from(JSON.stringify({ version: 1, records }));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: cacheConfigMediaType, digest: digestOf(config), size: config.length },
    layers: [...layers.values()],
  };
  return { config, manifest: Buffer.from(manifestBytes(manifest)), layers: [...layers.values()] };
}

/** The records of a cache config (or of an image config's inline field); records that do not parse are left out. */
export function decodeRecords(value: unknown, where: string): CacheRecord[] {
  const list = Array.isArray(value) ? value : (value as { version?: unknown; records?: unknown } | null)?.records;
  if (!Array.isArray(list)) throw new CacheFormatError(`${where}: no cache records`);
  return list.map(parseRecord).filter((r): r is CacheRecord => r !== undefined);
}
