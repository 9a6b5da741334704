// Where an image's documents and blobs come from, in the spirit of go-containerregistry's v1.Image: a registry
// repository, the local store, an archive. Push, copy and save take any source and do not care which.
import type { Readable } from 'node:stream';
import { type Descriptor, indexPlatforms, type ParsedManifest, selectPlatform } from './manifest.js';
import { formatPlatform, type Platform } from './platform.js';
import type { Repository } from './reference.js';

export interface ImageSource {
  /** the manifest or index the source was opened at */
  readonly root: ParsedManifest;
  /** a child manifest of an index */
  manifest(desc: Descriptor): Promise<ParsedManifest>;
  /** a blob's bytes, as a stream that fails at its end unless they match the descriptor */
  openBlob(desc: Descriptor): Promise<Readable>;
  /** a small blob (a config) whole and verified */
  readBlob(desc: Descriptor): Promise<Buffer>;
  /** the registry repository the blobs live in, when they do (a push to the same registry mounts from it) */
  readonly origin?: Repository;
  /** where one blob lives, for images whose blobs come from several places (a build on a base image) */
  originOf?(digest: string): Repository | undefined;
}

/** An index without an image for the platform asked for. */
export class NoPlatformError extends Error {
  override readonly name = 'NoPlatformError';
}

/**
 * The single-platform manifest of an image: the root when it is one, else the index's entry for `platform` as
 * docker picks it (nested indexes followed). `name` says which image in the error.
 */
export async function platformManifest(
  source: ImageSource,
  platform: Platform,
  name?: string,
): Promise<ParsedManifest> {
  let m = source.root;
  while (m.kind === 'index') {
    const d = selectPlatform(m.index, platform);
    if (!d) {
      const offered = indexPlatforms(m.index).map(formatPlatform).join(', ') || 'none';
      throw new NoPlatformError(
        `${name ?? m.digest} has no image for ${formatPlatform(platform)} (it offers: ${offered}); pass --platform`,
      );
    }
    m = await source.manifest(d);
  }
  return m;
}
