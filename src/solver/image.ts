// The image a build made, as an ImageSource: its layers come from the store, and those the store lacks (a base's
// the build never needed) from where they can be fetched.
import type { Readable } from 'node:stream';
import {
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  manifestBytes,
  parseManifest,
  type ParsedManifest,
} from '../image/manifest.js';
import { indexMediaTypeFor } from '../image/media-types.js';
import type { Platform } from '../image/platform.js';
import type { Repository } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import { type Layer, repositoryOf } from '../layer/layer.js';
import type { Store } from '../store/store.js';

export class BuiltImage implements ImageSource {
  constructor(
    readonly root: ParsedManifest,
    readonly configBytes: Buffer,
    private readonly layers: readonly Layer[],
    private readonly store: Store,
  ) {}

  async manifest(): Promise<ParsedManifest> {
    return this.root;
  }

  async openBlob(desc: Descriptor): Promise<Readable> {
    const l = this.layers.find((x) => x.descriptor.digest === desc.digest);
    if (l) return this.store.openLayer(l);
    return this.store.openBlob(desc.digest);
  }

  async readBlob(desc: Descriptor): Promise<Buffer> {
    return this.store.readBlob(desc.digest);
  }

  originOf(digest: string): Repository | undefined {
    const l = this.layers.find((x) => x.descriptor.digest === digest);
    return l && repositoryOf(l);
  }
}

/** The config's keys in the order BuildKit's exporter writes them, so equal images serialise to equal bytes. */
export function orderedConfig(c: ImageConfig): ImageConfig {
  const order = [
    'architecture',
    'author',
    'config',
    'created',
    'history',
    'os',
    'os.version',
    'os.features',
    'rootfs',
    'variant',
  ];
  const out: Record<string, unknown> = {};
  for (const k of order) if (c[k] !== undefined) out[k] = c[k];
  for (const k of Object.keys(c)) if (!(k in out)) out[k] = c[k];
  return out as ImageConfig;
}

/**
 * Several platforms' images as one: a Docker manifest list (buildx's default media types) naming each platform's
 * manifest when they are all Docker manifests, else an OCI index. Its blobs are its children's.
 */
export class IndexImage implements ImageSource {
  constructor(
    readonly root: ParsedManifest,
    private readonly children: readonly ImageSource[],
  ) {}

  static async of(
    images: readonly { image: ImageSource; platform: Platform; annotations?: Record<string, string> }[],
    store: Store,
    annotations?: Record<string, string>,
    oci = false,
  ): Promise<IndexImage> {
    const mediaType = indexMediaTypeFor(
      images.map(({ image }) => image.root.mediaType),
      oci,
    );
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType,
      manifests: images.map(({ image, platform, annotations: a }) => ({
        mediaType: image.root.mediaType,
        digest: image.root.digest,
        size: image.root.bytes.length,
        ...(a ? { annotations: a } : {}),
        platform: {
          architecture: platform.architecture,
          os: platform.os,
          ...(platform.variant ? { variant: platform.variant } : {}),
        },
      })),
      ...(annotations ? { annotations } : {}),
    };
    const bytes = manifestBytes(index);
    await store.writeBlob(Buffer.from(bytes));
    return new IndexImage(
      parseManifest(bytes, mediaType),
      images.map((i) => i.image),
    );
  }

  /** the child that holds a blob or is the manifest of this digest */
  private childOf(digest: string): ImageSource {
    for (const c of this.children) {
      if (c.root.digest === digest) return c;
      const m = c.root;
      if (
        m.kind === 'manifest' &&
        (m.manifest.config.digest === digest || m.manifest.layers.some((l) => l.digest === digest))
      )
        return c;
    }
    throw new Error(`internal: no image of this index holds ${digest}`);
  }

  async manifest(desc: Descriptor): Promise<ParsedManifest> {
    return this.childOf(desc.digest).root;
  }

  openBlob(desc: Descriptor): Promise<Readable> {
    return this.childOf(desc.digest).openBlob(desc);
  }

  readBlob(desc: Descriptor): Promise<Buffer> {
    return this.childOf(desc.digest).readBlob(desc);
  }

  originOf(digest: string): Repository | undefined {
    return this.childOf(digest).originOf?.(digest);
  }
}
