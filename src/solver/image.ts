// The image a build made, as an ImageSource: its layers come from the store, and those the store lacks (a base's
// the build never needed) from where they can be fetched.
import type { Readable } from 'node:stream';
import type { Descriptor, ImageConfig, ParsedManifest } from '../image/manifest.js';
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
  const order = ['architecture', 'author', 'config', 'created', 'history', 'os', 'os.version', 'os.features', 'rootfs', 'variant'];
  const out: Record<string, unknown> = {};
  for (const k of order) if (c[k] !== undefined) out[k] = c[k];
  for (const k of Object.keys(c)) if (!(k in out)) out[k] = c[k];
  return out as ImageConfig;
}
