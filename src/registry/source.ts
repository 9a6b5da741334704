// An image in a registry repository as an ImageSource: documents fetched on demand, blobs streamed and verified.
import type { Readable } from 'node:stream';
import type { Descriptor, ParsedManifest } from '../image/manifest.js';
import { formatRepository, type Reference, type Repository } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import type { BlobSink, BlobSource, Layer } from '../layer/layer.js';
import type { RegistryClient } from './client.js';

/**
 * A registry repository as a place a layer's bytes can be fetched from: each transfer within the client's limit
 * on parallel transfers, retried on transient failures, verified by the sink.
 */
export function registryBlobSource(client: RegistryClient, repository: Repository): BlobSource {
  const repo = { registry: repository.registry, repository: repository.repository };
  return {
    name: `registry ${formatRepository(repo)}`,
    repository: repo,
    fetch: (desc, sink: BlobSink) =>
      client.limiter.run(() =>
        client.retrying(`blob ${desc.digest}`, async () => {
          await sink.writeBlob(await client.openBlob(repo, desc), desc);
        }),
      ),
  };
}

/** The layers of an image manifest of `origin`, lazy: fetched from that repository when read. */
export function registryLayers(
  client: RegistryClient,
  origin: Repository,
  m: ParsedManifest,
  diffIDs: readonly string[],
): Layer[] {
  if (m.kind !== 'manifest') throw new Error('layers of an index');
  const source = registryBlobSource(client, origin);
  return m.manifest.layers.map((descriptor, i) => ({ descriptor, diffID: diffIDs[i], sources: [source] }));
}

export class RemoteImage implements ImageSource {
  private constructor(
    private readonly client: RegistryClient,
    readonly ref: Reference,
    readonly root: ParsedManifest,
  ) {}

  static async open(client: RegistryClient, ref: Reference): Promise<RemoteImage> {
    return new RemoteImage(client, ref, await client.getManifest(ref));
  }

  get origin(): Repository {
    return { registry: this.ref.registry, repository: this.ref.repository };
  }

  /** The layers of one of its manifests, lazy: fetched from this repository when read. */
  layers(m: ParsedManifest, diffIDs: readonly string[]): Layer[] {
    return registryLayers(this.client, this.origin, m, diffIDs);
  }

  manifest(desc: Descriptor): Promise<ParsedManifest> {
    return this.client.getManifest(this.ref, desc.digest);
  }

  openBlob(desc: Descriptor): Promise<Readable> {
    return this.client.openBlob(this.ref, desc);
  }

  readBlob(desc: Descriptor): Promise<Buffer> {
    return this.client.fetchBlob(this.ref, desc);
  }
}
