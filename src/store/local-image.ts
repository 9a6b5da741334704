// An image of the store as an ImageSource. Layers are lazy: a blob the store does not hold (a build that never
// needed its bytes) is fetched into it from the repository the image came from when something reads it.
import type { Readable } from 'node:stream';
import { type Descriptor, type ParsedManifest, parseManifest } from '../image/manifest.js';
import { hostPlatform, type Platform } from '../image/platform.js';
import { parseReference, type Repository } from '../image/reference.js';
import { type ImageSource, NoPlatformError, platformManifest } from '../image/source.js';
import type { RegistryClient } from '../registry/client.js';
import { registryBlobSource } from '../registry/source.js';
import type { BlobSource } from '../layer/layer.js';
import { type ImageRecord, type Store, StoreError } from './store.js';

export class LocalImage implements ImageSource {
  readonly origin?: Repository;

  private constructor(
    private readonly store: Store,
    readonly record: ImageRecord,
    readonly root: ParsedManifest,
    private readonly client?: RegistryClient,
  ) {
    if (record.origin) this.origin = parseReference(record.origin);
  }

  static async open(store: Store, record: ImageRecord, client?: RegistryClient): Promise<LocalImage> {
    const bytes = await store.readBlob(record.target.digest);
    return new LocalImage(store, record, parseManifest(bytes, record.target.mediaType), client);
  }

  /** The same image narrowed to one manifest of its index. */
  withRoot(root: ParsedManifest): LocalImage {
    return new LocalImage(this.store, this.record, root, this.client);
  }

  async manifest(desc: Descriptor): Promise<ParsedManifest> {
    return parseManifest(await this.readBlob(desc), desc.mediaType);
  }

  /** Where a blob the store lacks is fetched from: the repository the image came from. */
  private sources(desc: Descriptor): BlobSource[] {
    if (!this.origin || !this.client) {
      throw new StoreError(
        `blob ${desc.digest} of ${this.record.name} is not in the store and the image has no registry to fetch it from; pull or build it again`,
      );
    }
    return [registryBlobSource(this.client, this.origin)];
  }

  async openBlob(desc: Descriptor): Promise<Readable> {
    if (!(await this.store.hasIntactBlob(desc))) await this.store.fetchMissing(desc, this.sources(desc));
    return this.store.openBlob(desc.digest);
  }

  async readBlob(desc: Descriptor): Promise<Buffer> {
    if (!(await this.store.hasIntactBlob(desc))) await this.store.fetchMissing(desc, this.sources(desc));
    return this.store.readBlob(desc.digest);
  }

  /** The single-platform manifest for `platform` (the host's by default); the root itself when it is one. */
  async platformManifest(platform: Platform = hostPlatform()): Promise<ParsedManifest> {
    try {
      return await platformManifest(this, platform, this.record.name);
    } catch (e) {
      if (e instanceof NoPlatformError) throw new StoreError(e.message);
      throw e;
    }
  }
}
