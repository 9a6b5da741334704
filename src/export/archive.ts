// `hoist save`: images to one tar that both `docker load` and OCI tools read (the layout Docker 25+ writes,
// shared/research/registry.md §4.3/§4.4): an OCI image layout (oci-layout, index.json with the image names as
// annotations, blobs/sha256/…) plus Docker's manifest.json whose Config and Layers point into blobs/. Layers go
// in as they are stored (compressed); both loaders decompress. One platform per image: an index is narrowed to
// the manifest for the chosen platform.
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseDigest } from '../image/digest.js';
import type { Descriptor, ParsedManifest } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import { hostPlatform, type Platform } from '../image/platform.js';
import { defaultTag, familiarReference, formatReference, type Reference } from '../image/reference.js';
import { type ImageSource, NoPlatformError, platformManifest } from '../image/source.js';
import { type TarHeader, TarWriter } from '../layer/tar.js';

export interface SaveItem {
  /** the names the image is saved under (tags); none for an image saved by digest */
  refs: Reference[];
  source: ImageSource;
}

export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
}

const blobPath = (digest: string) => {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
};

async function narrow(source: ImageSource, platform: Platform): Promise<ParsedManifest> {
  try {
    return await platformManifest(source, platform);
  } catch (e) {
    if (e instanceof NoPlatformError) throw new ArchiveError(e.message);
    throw e;
  }
}

export async function saveImages(
  items: readonly SaveItem[],
  out: Writable,
  options: { platform?: Platform } = {},
): Promise<void> {
  const platform = options.platform ?? hostPlatform();
  const tar = new TarWriter();
  const done = pipeline(tar.stream, out);
  const header = (name: string, size: number, type: TarHeader['type'] = 'file'): TarHeader => ({
    name,
    type,
    mode: type === 'directory' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: 0,
  });
  const written = new Set<string>();
  const index: Descriptor[] = [];
  const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  try {
    await tar.entry(header('blobs/', 0, 'directory'));
    await tar.entry(header('blobs/sha256/', 0, 'directory'));
    const put = async (d: Descriptor, open: () => Promise<AsyncIterable<Buffer> | Buffer>) => {
      if (written.has(d.digest)) return;
      written.add(d.digest);
      await tar.entry(header(blobPath(d.digest), d.size), await open());
    };
    for (const item of items) {
      const m = await narrow(item.source, platform);
      if (m.kind !== 'manifest') throw new ArchiveError('unreachable');
      for (const d of m.manifest.layers) await put(d, () => item.source.openBlob(d));
      await put(m.manifest.config, () => item.source.readBlob(m.manifest.config));
      await put({ mediaType: m.mediaType, digest: m.digest, size: m.bytes.length }, async () => Buffer.from(m.bytes));
      const names = item.refs.filter((r) => r.tag !== undefined);
      for (const r of names.length ? names : [undefined]) {
        const d: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
        if (r)
          d.annotations = {
            'io.containerd.image.name': formatReference(r),
            'org.opencontainers.image.ref.name': r.tag ?? defaultTag,
          };
        index.push(d);
      }
      const existing = dockerManifest.find((e) => e.Config === blobPath(m.manifest.config.digest));
      const tags = names.map((r) => familiarReference({ registry: r.registry, repository: r.repository, tag: r.tag }));
      if (existing) existing.RepoTags.push(...tags.filter((t) => !existing.RepoTags.includes(t)));
      else
        dockerManifest.push({
          Config: blobPath(m.manifest.config.digest),
          RepoTags: tags,
          Layers: m.manifest.layers.map((l) => blobPath(l.digest)),
        });
    }
    const json = (v: unknown) => Buffer.from(`${JSON.stringify(v)}\n`);
    for (const [name, body] of [
      ['oci-layout', json({ imageLayoutVersion: '1.0.0' })],
      ['index.json', json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index })],
      ['manifest.json', json(dockerManifest)],
    ] as const) {
      await tar.entry(header(name, body.length), body);
    }
    await tar.finish();
  } catch (e) {
    tar.stream.destroy(e as Error);
    await done.catch(() => undefined);
    throw e;
  }
  await done;
}
