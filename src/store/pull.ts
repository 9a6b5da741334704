// `hoist pull`: a reference's manifest (and for an index the chosen platforms' manifests), configs and layers
// into the store, every blob verified, then a record under the reference's name. Blobs already held are not
// fetched again.
import type { Descriptor, ParsedManifest } from '../image/manifest.js';
import { indexPlatforms, selectPlatform } from '../image/manifest.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import { formatReference, type Reference, repositoryName } from '../image/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { settleAll } from '../registry/limit.js';
import { RemoteImage, registryBlobSource } from '../registry/source.js';
import type { ImageRecord, Store } from './store.js';
import { StoreError } from './store.js';

export interface PullOptions {
  /** the platform to pull from an index (default: this machine's) */
  platform?: Platform;
  allPlatforms?: boolean;
  log?: (line: string) => void;
}

export interface PullReport {
  record: ImageRecord;
  digest: string;
  /** the single-platform manifests pulled */
  manifests: { digest: string; platform?: Platform }[];
  fetchedBlobs: number;
  fetchedBytes: number;
}

export async function pullImage(
  client: RegistryClient,
  store: Store,
  ref: Reference,
  options: PullOptions = {},
): Promise<PullReport> {
  const remote = await RemoteImage.open(client, ref);
  const source = registryBlobSource(client, ref);
  const report: Omit<PullReport, 'record'> = {
    digest: remote.root.digest,
    manifests: [],
    fetchedBlobs: 0,
    fetchedBytes: 0,
  };
  const blobs = new Map<string, Descriptor>();
  const keep = async (m: ParsedManifest) => {
    await store.writeBlob(m.bytes, { digest: m.digest, size: m.bytes.length });
  };
  const visit = async (m: ParsedManifest, platform?: Platform): Promise<void> => {
    await keep(m);
    if (m.kind === 'manifest') {
      report.manifests.push({ digest: m.digest, ...(platform ? { platform } : {}) });
      for (const d of [m.manifest.config, ...m.manifest.layers]) blobs.set(d.digest, d);
      return;
    }
    const want = options.platform ?? hostPlatform();
    const chosen = options.allPlatforms
      ? m.index.manifests.filter((d) => d.platform && !(d.platform.os === 'unknown'))
      : [selectPlatform(m.index, want)].filter((d): d is Descriptor => d !== undefined);
    if (chosen.length === 0) {
      const offered = indexPlatforms(m.index).map(formatPlatform).join(', ') || 'none';
      throw new StoreError(
        `${formatReference(ref)} has no image for ${formatPlatform(want)} (it offers: ${offered}); pass --platform`,
      );
    }
    for (const d of chosen) await visit(await remote.manifest(d), d.platform);
  };
  await visit(remote.root);
  await settleAll(
    [...blobs.values()].map(async (d) => {
      // A blob of another size than the manifest says was cut short (a crash, a full disk): fetched again.
      if (await store.hasIntactBlob(d)) return;
      await source.fetch(d, store);
      report.fetchedBlobs++;
      report.fetchedBytes += d.size;
      options.log?.(`${d.digest.slice(7, 19)}: pulled (${d.size} bytes)`);
    }),
  );
  const name = formatReference(ref);
  const record = await store.putImage(
    name,
    { mediaType: remote.root.mediaType, digest: remote.root.digest, size: remote.root.bytes.length },
    repositoryName(ref),
  );
  return { record, ...report };
}
