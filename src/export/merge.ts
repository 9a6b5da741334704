// One index from images already in a registry, as `docker buildx imagetools create` makes it: the matrix legs of a
// release push one platform each by digest, and a last job joins them under the release's tags. Each source is a
// manifest (its platform read from its config) or an index (its entries taken as they are); the index is pushed
// with pushImage, so every blob is found where it is (a repository of the same registry mounts it: no layer is
// downloaded) and nothing is tagged before all of it is in place.
import type { Readable } from 'node:stream';
import {
  type Descriptor,
  type ImageIndex,
  manifestBytes,
  parseImageConfig,
  parseManifest,
  type ParsedManifest,
} from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import { formatPlatform, type Platform } from '../image/platform.js';
import { familiarReference, type Reference, type Repository } from '../image/reference.js';
import type { ImageSource } from '../image/source.js';
import type { RegistryClient } from '../registry/client.js';
import { RemoteImage } from '../registry/source.js';

export class MergeError extends Error {
  override readonly name = 'MergeError';
}

interface Entry {
  descriptor: Descriptor;
  manifest: ParsedManifest;
  from: RemoteImage;
}

/** The images `sources` name, as one index an ImageSource serves (its blobs where each source has them). */
export async function mergedIndex(
  client: RegistryClient,
  sources: readonly Reference[],
): Promise<{ image: ImageSource; platforms: Platform[] }> {
  if (sources.length === 0) throw new MergeError('nothing to merge: name the images (REPO@sha256:… or REPO:TAG)');
  const entries: Entry[] = [];
  for (const ref of sources) {
    const remote = await RemoteImage.open(client, ref);
    const root = remote.root;
    const found: Entry[] = [];
    if (root.kind === 'index') {
      for (const d of root.index.manifests) {
        const manifest = await remote.manifest(d);
        // (an index among an index's entries has no blobs of its own to find: its images are what to join)
        if (manifest.kind === 'index')
          throw new MergeError(
            `${familiarReference(ref)}: its entry ${d.digest} is itself an index; name the images it lists (or that index) instead`,
          );
        found.push({ descriptor: d, manifest, from: remote });
      }
    } else {
      const config = parseImageConfig(await remote.readBlob(root.manifest.config));
      if (!config.architecture || !config.os)
        throw new MergeError(`${familiarReference(ref)}: its config names no platform (architecture and os)`);
      const platform: Platform = {
        os: config.os,
        architecture: config.architecture,
        ...(config.variant ? { variant: config.variant } : {}),
      };
      found.push({
        descriptor: { mediaType: root.mediaType, digest: root.digest, size: root.bytes.length, platform },
        manifest: root,
        from: remote,
      });
    }
    for (const e of found) if (!entries.some((x) => x.descriptor.digest === e.descriptor.digest)) entries.push(e);
  }
  // A leg's attestation manifests (BuildKit's: unknown/unknown, naming the image they attest) come along, after the
  // images, as buildx imagetools create keeps them; they are not platforms.
  const attestation = (d: Descriptor) => d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';
  entries.sort((a, b) => Number(attestation(a.descriptor)) - Number(attestation(b.descriptor)));
  const key = (d: Descriptor) => (d.platform && !attestation(d) ? formatPlatform(d.platform as Platform) : undefined);
  const seen = new Map<string, Descriptor>();
  for (const e of entries) {
    const k = key(e.descriptor);
    if (k === undefined) continue;
    if (seen.has(k))
      throw new MergeError(
        `two images for ${k} (${seen.get(k)?.digest} and ${e.descriptor.digest}): name one image per platform`,
      );
    seen.set(k, e.descriptor);
  }
  // Docker's list when every entry is a Docker manifest (buildx's default), else an OCI index.
  const docker = entries.every((e) => e.descriptor.mediaType === MediaType.dockerManifest);
  const mediaType = docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const index: ImageIndex = { schemaVersion: 2, mediaType, manifests: entries.map((e) => e.descriptor) };
  const bytes = manifestBytes(index);
  const root = parseManifest(bytes, mediaType);
  return {
    image: new MergedImage(root, entries),
    platforms: entries.flatMap((e) =>
      e.descriptor.platform && !attestation(e.descriptor) ? [e.descriptor.platform as Platform] : [],
    ),
  };
}

class MergedImage implements ImageSource {
  constructor(
    readonly root: ParsedManifest,
    private readonly entries: readonly Entry[],
  ) {}

  private entryOf(digest: string): Entry {
    for (const e of this.entries) {
      if (e.descriptor.digest === digest) return e;
      const m = e.manifest;
      if (
        m.kind === 'manifest' &&
        (m.manifest.config.digest === digest || m.manifest.layers.some((l) => l.digest === digest))
      )
        return e;
    }
    throw new MergeError(`internal: no merged image holds ${digest}`);
  }

  async manifest(desc: Descriptor): Promise<ParsedManifest> {
    return this.entryOf(desc.digest).manifest;
  }

  openBlob(desc: Descriptor): Promise<Readable> {
    return this.entryOf(desc.digest).from.openBlob(desc);
  }

  readBlob(desc: Descriptor): Promise<Buffer> {
    return this.entryOf(desc.digest).from.readBlob(desc);
  }

  originOf(digest: string): Repository | undefined {
    return this.entryOf(digest).from.origin;
  }
}
