// --cache-from and --cache-to of a build (index.ts): the caches opened before the build (one that cannot be read is a
// warning), which cache layers the build must fetch before it ends, and the exports after it (a failed export is a
// warning too: the build never fails because of a cache).
import {
  type CacheBackend,
  CacheBlobError,
  type CacheFromSpec,
  type CacheSource,
  type CacheToSpec,
} from './backend.js';
import { localCache } from './local-dir.js';
import { type MountsToSave, mountsToSave } from './mounts.js';
import { registryCache } from './registry.js';
import type { OutputSpec } from '../export/outputs.js';
import { layerCompression } from '../image/media-types.js';
import { formatPlatform, type Platform } from '../image/platform.js';
import { detectCompression } from '../layer/compression.js';
import { formatRepository, parseReference, type Reference } from '../image/reference.js';
import type { Layer } from '../layer/layer.js';
import type { RegistryClient } from '../registry/client.js';
import { sharedBy } from '../registry/limit.js';
import type { BuildResult } from '../solver/solver.js';
import type { Store } from '../store/store.js';

/** What the caches of a build need to know of it: the registry client, and what a gha scope is named after. */
export interface CacheContext {
  client: RegistryClient;
  platform: Platform;
  tags: readonly string[];
  target?: string;
  /** what the backends of one build share (the gha index read once) */
  build: Map<string, unknown>;
}

/** A gha scope by default: the image (its first tag's repository), the platform and the target. */
export function defaultGhaScope(ctx: CacheContext): string {
  const image = ctx.tags.length > 0 ? formatRepository(parseReference(ctx.tags[0])) : 'hoist';
  return [image, formatPlatform(ctx.platform), ...(ctx.target ? [ctx.target] : [])].join('|');
}

async function backendFor(spec: CacheFromSpec | CacheToSpec, ctx: CacheContext): Promise<CacheBackend> {
  switch (spec.type) {
    case 'registry':
      return registryCache(
        ctx.client,
        spec.ref,
        ctx.platform,
        'mountMaxSize' in spec ? { mountMaxSize: spec.mountMaxSize } : {},
      );
    case 'local':
      return localCache(
        'src' in spec ? spec.src : spec.dest,
        'mountMaxSize' in spec ? { mountMaxSize: spec.mountMaxSize } : {},
      );
    case 'gha': {
      // Loaded only when used.
      const { ghaCache } = await import(/* webpackMode: "eager" */ './gha.js');
      const mode = 'mode' in spec ? spec.mode : 'min';
      return ghaCache(
        {
          scope: spec.scope ?? defaultGhaScope(ctx),
          mode,
          ...('maxSize' in spec && spec.maxSize !== undefined ? { maxSize: spec.maxSize } : {}),
          ...('mountMaxSize' in spec && spec.mountMaxSize !== undefined ? { mountMaxSize: spec.mountMaxSize } : {}),
          ...(spec.url ? { url: spec.url } : {}),
          ...(spec.token ? { token: spec.token } : {}),
        },
        ctx.build,
      );
    }
    case 'inline':
      throw new Error('internal: the inline cache has no backend');
  }
}

export async function openCaches(
  specs: readonly CacheFromSpec[],
  ctx: CacheContext,
  warn: (m: string) => void,
): Promise<CacheSource[]> {
  const out: CacheSource[] = [];
  for (const s of specs) {
    let name = `type=${s.type}`;
    try {
      const backend = await backendFor(s, ctx);
      name = backend.name;
      out.push(await backend.load());
    } catch (e) {
      warn(`cache ${name} cannot be read, building without it: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Which cache layers the build fetches before it ends: all, when an output or a cache export writes every layer
 * (or the image only goes to the store); for pushes, none that a push target's registry can mount (it holds the
 * cache) or that every target repository holds already (the push skips it: a layer from the Actions cache that the
 * registry has is never downloaded) — provided its diffID can be trusted without reading it. A layer fetched is
 * checked as it arrives (digest, compression, diffID); one pushed by reference is checked where it is held (the size
 * the registry has, its first bytes' compression): a cache record that lies about either is a CacheBlobError, and the
 * steps it would have given run again.
 *
 * The diffID of a layer pushed by reference is the record's, and the image's config says it: a record that lies
 * about it made `--push` publish an image docker refuses ("layers from manifest don't match image configuration").
 * It is taken only when hoist has verified that (digest, diffID) pair itself (store.ts noteVerified: a layer it
 * wrote, downloaded or unpacked), or when every target repository already publishes the very manifest being built
 * (`image`, its digest: its config names those diffIDs, and only a writer of the target itself could have put it
 * there — a fresh runner rebuilding what was pushed downloads nothing). Otherwise the layer is fetched and checked: a
 * fresh runner pushing a cached image somewhere new downloads each such layer once.
 */
export function prefetchPolicy(
  outputs: readonly OutputSpec[],
  tags: readonly string[],
  cacheTo: readonly CacheToSpec[],
  client: RegistryClient,
  store: Store,
): (layer: Layer, image: string) => Promise<boolean> {
  if (outputs.some((o) => o.type !== 'registry') || cacheTo.some((c) => c.type === 'local')) return async () => true;
  const images: Reference[] = [];
  for (const o of outputs)
    for (const n of (o.type === 'registry' ? o.names : undefined) ?? tags) images.push(parseReference(n));
  const targets = [...images];
  for (const c of cacheTo) if (c.type === 'registry') targets.push(parseReference(c.ref));
  if (targets.length === 0) return async () => true;
  const registries = new Set(targets.map((t) => t.registry));
  const published = new Map<string, Promise<boolean>>();
  const publishedEverywhere = (image: string) => {
    let p = published.get(image);
    if (!p) {
      const there = (r: Reference) =>
        client.resolve({ registry: r.registry, repository: r.repository, digest: image }).then(
          (m) => m.digest === image,
          () => false,
        );
      p =
        images.length === 0 ? Promise.resolve(false) : Promise.all(images.map(there)).then((all) => all.every(Boolean));
      published.set(image, p);
    }
    return p;
  };
  return async (layer, image) => {
    const digest = layer.descriptor.digest;
    // What is asked is asked at once (one round trip, not three): whether the store checked the layer itself, whether
    // the image is published already, and what the registry holds of the layer (its size, its first bytes).
    const verified = store.isVerified(digest, layer.diffID);
    const mountable = layer.sources.find((s) => s.repository && registries.has(s.repository.registry))?.repository;
    const asked = mountable ? [mountable] : targets;
    const sizes = asked.map((r) => client.blobExists(r, digest).catch(() => undefined));
    const prefix = asked.length
      ? client.blobPrefix(asked[0], digest, 6).catch(() => undefined)
      : Promise.resolve(undefined);
    if (!(await verified) && !(await publishedEverywhere(image))) return true;
    // Held by every target (or the repository it mounts from): pushed by name, without its bytes.
    const held = await Promise.all(sizes);
    if (held.some((size) => size === undefined)) return true;
    if (asked.length === 0) return false;
    // (its first bytes could not be had: fetched, and checked, instead)
    return !checkHeld(layer, asked[0], held[0] as number, await prefix);
  };
}

/**
 * A cache layer that the push will name without reading it, checked against what the registry holds: its size, and
 * its first bytes' compression (`prefix`; when they could not be had, the layer is fetched and checked instead).
 */
function checkHeld(
  layer: Layer,
  repo: Reference | NonNullable<Layer['sources'][number]['repository']>,
  size: number,
  prefix: Buffer | undefined,
): boolean {
  const d = layer.descriptor;
  const where = `${repo.registry}/${repo.repository}`;
  if (size !== d.size)
    throw new CacheBlobError(
      `the cache's record of layer ${d.digest} says ${d.size} bytes, ${where} holds ${size}`,
      d.digest,
    );
  if (prefix === undefined) return false;
  const said = layerCompression(d.mediaType);
  const found = detectCompression(prefix);
  if (said !== found)
    throw new CacheBlobError(
      `the cache's record of layer ${d.digest} says ${d.mediaType}, but ${where} holds it ${found === 'none' ? 'uncompressed' : `${found}-compressed`}`,
      d.digest,
    );
  return true;
}

export async function exportCaches(
  specs: readonly CacheToSpec[],
  result: BuildResult,
  ctx: CacheContext,
  store: Store,
  warn: (m: string) => void,
  log: (m: string) => void,
): Promise<number> {
  let uploaded = 0;
  // The mounts' blobs, packed once for every registry and local cache of the build (per size cap).
  const packed = new Map<number, Promise<MountsToSave>>();
  const keptMounts = (maxBytes: number) =>
    sharedBy(packed, maxBytes, () => mountsToSave(store, result.cacheMounts, maxBytes));
  for (const s of specs) {
    if (s.type === 'inline') continue; // in the image's config already
    const records = s.mode === 'max' ? result.records.all : result.records.final;
    let backend: CacheBackend | undefined;
    try {
      backend = await backendFor(s, ctx);
      const r = await backend.save(records, {
        store,
        layer: result.records.layer,
        mounts: result.cacheMounts,
        keptMounts,
      });
      uploaded += r.uploadedBytes;
      log(`cache exported to ${backend.name}: ${records.length} records (${r.summary})`);
    } catch (e) {
      warn(`cache ${backend?.name ?? `type=${s.type}`} could not be written: ${(e as Error).message}`);
    }
  }
  return uploaded;
}
