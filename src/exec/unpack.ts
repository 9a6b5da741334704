// An image's layers applied one over another into a plain directory (whiteouts delete what they name): the root of
// a step where no overlay can be mounted, or a stage's filesystem read by COPY --from there.
import { decompressed } from '../layer/compression.js';
import { extractLayer } from '../layer/extract.js';
import type { Layer } from '../layer/layer.js';
import type { Store } from '../store/store.js';

export async function extractState(store: Store, layers: readonly Layer[], dir: string): Promise<void> {
  for (const l of layers) {
    await store.useLayer(l, async (open) =>
      extractLayer((await decompressed(await open())).stream, dir, { whiteouts: 'apply' }),
    );
  }
}
