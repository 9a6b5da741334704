// --cache-from and --cache-to for `hoist build`: the caches opened before the build (one that cannot be read is a
// warning), which cache layers the build must fetch before it ends, and the exports after it (a failed export is a
// warning too: the build never fails because of a cache).
import type { CacheBackend, CacheFromSpec, CacheSource, CacheToSpec } from '../cache/backend.js';
import { localCache } from '../cache/local-dir.js';
import { registryCache } from '../cache/registry.js';
import type { OutputSpec } from '../export/outputs.js';
import type { Platform } from '../image/platform.js';
import { parseReference } from '../image/reference.js';
import type { Layer } from '../layer/layer.js';
import type { RegistryClient } from '../registry/client.js';
import type { BuildResult } from '../solver/solver.js';
import type { Store } from '../store/store.js';

export async function openCaches(specs: readonly CacheFromSpec[], client: RegistryClient, platform: Platform, warn: (m: string) => void): Promise<CacheSource[]> {
  const out: CacheSource[] = [];
  for (const s of specs) {
    const backend = s.type === 'registry' ? registryCache(client, s.ref, platform) : localCache(s.src);
    try {
      out.push(await backend.load());
    } catch (e) {
      warn(`cache ${backend.name} cannot be read, building without it: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * Which cache layers the build fetches before it ends: all, when an output or a cache export writes every layer;
 * for pushes, those in a cache of another registry (a push to the same registry mounts them instead).
 */
export function prefetchPolicy(outputs: readonly OutputSpec[], tags: readonly string[], cacheTo: readonly CacheToSpec[]): (layer: Layer) => boolean {
  if (outputs.some((o) => o.type !== 'registry') || cacheTo.some((c) => c.type === 'local')) return () => true;
  const registries = new Set<string>();
  for (const o of outputs) for (const n of (o.type === 'registry' ? o.names : undefined) ?? tags) registries.add(parseReference(n).registry);
  for (const c of cacheTo) if (c.type === 'registry') registries.add(parseReference(c.ref).registry);
  return (layer) => !layer.sources.some((s) => s.repository && registries.has(s.repository.registry));
}

export async function exportCaches(specs: readonly CacheToSpec[], result: BuildResult, client: RegistryClient, platform: Platform, store: Store, warn: (m: string) => void, log: (m: string) => void): Promise<number> {
  let uploaded = 0;
  for (const s of specs) {
    if (s.type === 'inline') continue; // in the image's config already
    const records = s.mode === 'max' ? result.records.all : result.records.final;
    const backend: CacheBackend = s.type === 'registry' ? registryCache(client, s.ref, platform) : localCache(s.dest);
    try {
      const r = await backend.save(records, { store, layer: result.records.layer });
      uploaded += r.uploadedBytes;
      log(`cache exported to ${backend.name}: ${records.length} records (${r.summary})`);
    } catch (e) {
      warn(`cache ${backend.name} could not be written: ${(e as Error).message}`);
    }
  }
  return uploaded;
}
