// A layer as every part of hoist passes it around (go-containerregistry's v1.Layer, lazily): its descriptor, its
// diffID, and where its bytes can be had when the local store lacks them: the registry repositories it came from,
// a cache backend. Nothing is fetched until something reads the bytes; the store is the read-through cache in front
// of the sources (Store.openLayer).
import type { Readable } from 'node:stream';
import type { Descriptor } from '../image/manifest.js';
import type { Repository } from '../image/reference.js';

/** Where blobs go, verified against their digest (and size) before anyone can see them: the store. */
export interface BlobSink {
  writeBlob(source: Readable, expected?: { digest: string; size?: number }): Promise<{ digest: string; size: number }>;
}

/** Somewhere a blob can be fetched from. */
export interface BlobSource {
  /** for messages: "registry example.com/app", "cache registry example.com/cache" */
  readonly name: string;
  /** the registry repository it is, when it is one (a push to the same registry mounts from there) */
  readonly repository?: Repository;
  /** a cache (--cache-from) rather than the image's own registry: its blobs may be wrong, and their steps rerun */
  readonly cache?: boolean;
  /** on this machine (a directory): fetching from it downloads nothing */
  readonly local?: boolean;
  /** Streams the blob into `sink`, which verifies it; transient failures are retried as the source allows. */
  fetch(desc: Descriptor, sink: BlobSink): Promise<void>;
}

export interface Layer {
  readonly descriptor: Descriptor;
  readonly diffID: string;
  /** where the bytes can be fetched when the store lacks them, in the order to try; empty: only the store has them */
  readonly sources: readonly BlobSource[];
  /** present while the blob is still being written (CompressingLayer): the descriptor is known once it resolves */
  readonly ready?: Promise<void>;
}

/** The registry repository a layer can be mounted from, if it has one. */
export function repositoryOf(layer: Layer): Repository | undefined {
  return layer.sources.find((s) => s.repository)?.repository;
}

/**
 * A RUN step's layer while its blob is still being compressed (BuildKit compresses lazily too): its diffID, and
 * its snapshot in the store, serve the steps after it at once; the descriptor is there once `ready` resolves, and
 * reading it before is a bug (it throws). The store waits for `ready` before it opens the blob.
 */
export class CompressingLayer implements Layer {
  readonly sources: readonly BlobSource[] = [];
  readonly ready: Promise<void>;
  private desc: Descriptor | undefined;

  constructor(
    readonly diffID: string,
    compressed: Promise<Descriptor>,
  ) {
    this.ready = compressed.then((d) => {
      this.desc = d;
    });
    this.ready.catch(() => undefined); // whoever needs the descriptor awaits `ready` and meets the failure
  }

  get descriptor(): Descriptor {
    if (!this.desc) throw new Error(`internal: layer ${this.diffID} is still being compressed`);
    return this.desc;
  }
}
