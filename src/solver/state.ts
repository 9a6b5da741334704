// The image a stage is building, step by step: its layers (the base's, lazily fetched, then our own, in the store),
// its history and what the filesystem holds (indexed on first need). The config is the translation's.
import type { HistoryEntry } from '../image/manifest.js';
import type { Store } from '../store/store.js';
import type { Layer } from '../layer/layer.js';
import { CompressionError, decompressed } from '../layer/compression.js';
import { DigestMismatchError } from '../image/digest.js';
import { CacheBlobError } from '../cache/backend.js';
import { cleanEntryName } from '../layer/rooted.js';
import { readTar, TarError, type TarHeader } from '../layer/tar.js';
import { FsIndex } from '../layer/fs-index.js';

export class ImageState {
  private index: FsIndex | undefined;
  /** how many of `layers` the index has applied; later layers are applied on the next fs() */
  private indexed = 0;

  constructor(
    public layers: Layer[],
    /** the image's history so far: the base's entries, then one per step */
    public history: HistoryEntry[],
  ) {}

  clone(): ImageState {
    const s = new ImageState([...this.layers], [...this.history]);
    // The index is updated in place as layers are added, so a clone gets its own copy.
    s.index = this.index?.clone();
    s.indexed = this.indexed;
    return s;
  }

  /** A layer on top; `headers` (what the builder just wrote) keep an index that is up to date without reading it. */
  addLayer(layer: Layer, entry: HistoryEntry, headers?: Iterable<TarHeader>): void {
    if (headers && this.index && this.indexed === this.layers.length) {
      this.index.applyHeaders(headers, this.layers.length);
      this.indexed++;
    }
    this.layers.push(layer);
    this.history.push(entry);
  }

  /**
   * The filesystem's index. The base's layers are fetched into the store and read the first time it is needed;
   * after that only the layers added since are applied.
   */
  async fs(store: Store): Promise<FsIndex> {
    this.index ??= new FsIndex();
    for (; this.indexed < this.layers.length; this.indexed++) {
      const l = this.layers[this.indexed];
      // Its index, from the pass that unpacked or indexed it (a stage's RUN warms its layers), or read once from the
      // layer, checked against the diffID, and kept for the next build.
      const headers = await store.layerHeaders(l).catch((e: unknown) => {
        // A cache's record can lie about a layer's diffID, or name bytes that are no tar: not the build's fault,
        // the steps that layer would have given run again (solver.ts build).
        if (
          l.sources.some((src) => src.cache) &&
          (e instanceof DigestMismatchError || e instanceof TarError || e instanceof CompressionError)
        ) {
          throw new CacheBlobError(
            `the cache's record of layer ${l.descriptor.digest} does not match its content (${e.message})`,
            l.descriptor.digest,
          );
        }
        throw e;
      });
      this.index.applyHeaders(headers, this.indexed);
    }
    return this.index;
  }
}

/**
 * Regular files' contents from the image (symlinks followed inside it), each layer read once for all the files it
 * holds; a file that is missing, not a regular file, or larger than `maxBytes` is not in the answer.
 */
export async function readImageFiles(
  state: ImageState,
  store: Store,
  files: readonly string[],
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<Map<string, Buffer>> {
  const fs = await state.fs(store);
  // layer → path in the layer → the names asked for that lead to it
  const wanted = new Map<number, Map<string, string[]>>();
  for (const f of files) {
    const resolved = fs.resolve(f, true);
    const e = fs.entries.get(resolved);
    if (e?.header.type !== 'file' || e.header.size > maxBytes) continue;
    const names = wanted.get(e.layer) ?? new Map<string, string[]>();
    wanted.set(e.layer, names);
    names.set(resolved, [...(names.get(resolved) ?? []), f]);
  }
  const out = new Map<string, Buffer>();
  for (const [layer, names] of wanted) {
    await store.useLayer(state.layers[layer], async (open) => {
      const { stream } = await decompressed(await open());
      let left = names.size;
      for await (const { header, body } of readTar(stream)) {
        const asked = names.get(cleanEntryName(header.name));
        if (!asked || asked.some((f) => out.has(f))) {
          body.resume();
          continue;
        }
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        for (const f of asked) out.set(f, Buffer.concat(chunks));
        if (--left === 0) {
          stream.destroy();
          return;
        }
      }
    });
  }
  return out;
}
