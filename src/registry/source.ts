// An image in a registry repository as an ImageSource: documents fetched on demand, blobs streamed and verified.
import type { Readable } from 'node:stream';
import type { Descriptor, ParsedManifest } from '../image/manifest.js';
import type { Reference } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import type { RegistryClient } from './client.js';

export class RemoteImage implements ImageSource {
  private constructor(
    private readonly client: RegistryClient,
    readonly ref: Reference,
    readonly root: ParsedManifest,
  ) {}

  static async open(client: RegistryClient, ref: Reference): Promise<RemoteImage> {
    return new RemoteImage(client, ref, await client.getManifest(ref));
  }

  get origin(): Pick<Reference, 'registry' | 'repository'> {
    return { registry: this.ref.registry, repository: this.ref.repository };
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
