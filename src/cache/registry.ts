// A cache in a registry repository: `--cache-from type=registry,ref=REF` reads a cache manifest (format.ts) or the
// inline records of an image pushed with `--cache-to type=inline`; `--cache-to type=registry,ref=REF` pushes the
// records as a cache manifest, its layers mounted from where they already are in that registry (the cache
// repository itself, a base image's) and uploaded only when the registry has them nowhere. The build's cache mounts
// ride along as blobs of the cache manifest (mounts.ts): restored into a new mount directory, saved when changed.
import { Readable } from 'node:stream';
import { type Descriptor, parseImageConfig, parseManifest } from '../image/manifest.js';
import type { Platform } from '../image/platform.js';
import { formatReference, parseReference, type Repository } from '../image/reference.js';
import { type ImageSource, platformManifest } from '../image/source.js';
import { repositoryOf } from '../layer/layer.js';
import { pushImage } from '../export/push.js';
import type { RegistryClient } from '../registry/client.js';
import { RemoteImage, registryBlobSource } from '../registry/source.js';
import { type CacheBackend, cacheBlobSource, type CacheLayers, type CacheSource, recordsByKey } from './backend.js';
import {
  cacheConfigMediaType,
  CacheFormatError,
  decodeMounts,
  decodeRecords,
  encodeCache,
  inlineCacheField,
  parseJSON,
} from './format.js';
import { type MountBlob, mountsOf, mountsSource, type MountsToSave } from './mounts.js';
import type { CacheRecord } from './record.js';

/** `type=registry,ref=REF`: read with the manifest for `platform` (or the inline records of an image). */
export function registryCache(
  client: RegistryClient,
  refText: string,
  platform: Platform,
  options: { mountMaxSize?: number } = {},
): CacheBackend {
  return {
    name: `registry ${refText}`,
    load: () => load(client, refText, platform),
    save: async (records, from) => {
      const mounts = await mountsOf(from, options.mountMaxSize);
      const image = cacheImage(records, from, mounts);
      // The very manifest this build read from the same ref: the registry holds it and every blob it names.
      if (loadedManifests.get(client)?.get(refKey(refText)) === image.root.digest)
        return { uploadedBytes: 0, summary: 'unchanged: the registry holds this cache already' };
      const r = await pushImage(client, image, [parseReference(refText)]);
      return {
        uploadedBytes: r.uploadedBytes,
        summary: [
          `${r.blobs.uploaded} blobs uploaded, ${r.blobs.mounted} mounted, ${r.blobs.exists} already there`,
          ...mounts.notes,
        ].join(', '),
      };
    },
  };
}

/** the digest of the cache manifest each ref was read at, by client (a save of the same one is skipped) */
const loadedManifests = new WeakMap<RegistryClient, Map<string, string>>();
const refKey = (refText: string) => formatReference(parseReference(refText));

async function load(client: RegistryClient, refText: string, platform: Platform): Promise<CacheSource> {
  const ref = parseReference(refText);
  const remote = await RemoteImage.open(client, ref);
  const m = await platformManifest(remote, platform, refText);
  if (m.kind !== 'manifest') throw new CacheFormatError(`${refText}: not a cache manifest`);
  // (only the ref's own manifest: a platform's manifest under an index is not what the tag names)
  if (m.digest === remote.root.digest) {
    const loaded = loadedManifests.get(client) ?? new Map<string, string>();
    loadedManifests.set(client, loaded.set(refKey(refText), m.digest));
  }
  const configBytes = await remote.readBlob(m.manifest.config);
  let records: CacheRecord[];
  let mounts: MountBlob[] = [];
  let kind: CacheSource['kind'] = 'registry';
  if (m.manifest.config.mediaType === cacheConfigMediaType) {
    const config = parseJSON(configBytes.toString('utf8'), `${refText}: the cache config`);
    records = decodeRecords(config, refText);
    mounts = decodeMounts(config);
  } else {
    // An image: its inline records, if it was pushed with them.
    const inline = parseImageConfig(configBytes)[inlineCacheField];
    if (inline === undefined)
      throw new CacheFormatError(
        `${refText} is an image without cache records (push it with --cache-to type=inline, or export a cache with --cache-to type=registry)`,
      );
    records = decodeRecords(inline, refText);
    kind = 'inline';
  }
  const name = `registry ${refText}`;
  const blobs = cacheBlobSource(name, registryBlobSource(client, ref));
  return { name, kind, lookup: recordsByKey(records), blobs, ...mountsSource(mounts, blobs) };
}

/** The records (and config, manifest) as an ImageSource, so that the push is the image push (blobs, then manifest). */
function cacheImage(records: readonly CacheRecord[], from: CacheLayers, mounts: MountsToSave): ImageSource {
  const encoded = encodeCache(
    records,
    mounts.blobs.map((m) => m.blob),
  );
  const root = parseManifest(encoded.manifest, undefined);
  const layerOf = (digest: string) =>
    from.layer(digest) ?? mounts.blobs.find((m) => m.blob.descriptor.digest === digest)?.layer;
  const open = (desc: Descriptor): Promise<Readable> =>
    from.store.openLayer(layerOf(desc.digest) ?? { descriptor: desc, diffID: '', sources: [] });
  return {
    root,
    manifest: async () => root,
    openBlob: async (desc) => (desc.mediaType === cacheConfigMediaType ? Readable.from([encoded.config]) : open(desc)),
    readBlob: async (desc) => {
      if (desc.mediaType === cacheConfigMediaType) return encoded.config;
      throw new Error(`the cache has no small blob ${desc.digest}`);
    },
    originOf: (digest: string): Repository | undefined => {
      const l = layerOf(digest);
      return l && repositoryOf(l);
    },
  };
}
