// `hoist load` and `hoist import`.
// load: a `docker save` / `hoist save` tar (OCI layout with index.json, and/or Docker's manifest.json, gzip'd or
// not) into the store. Blobs under blobs/<alg>/<hex> are verified against their names; the legacy layout's
// layer.tar files are hashed as they are stored. Names come from index.json annotations, else RepoTags.
// import: a root filesystem tarball as a one-layer image, like `docker import`.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DigestStream, parseDigest } from '../image/digest.js';
import {
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  inFamily,
  manifestBytes,
  parseImageConfig,
  parseManifest,
} from '../image/manifest.js';
import { manifestIsOci, MediaType } from '../image/media-types.js';
import { hostPlatform, type Platform } from '../image/platform.js';
import { formatReference, parseReference } from '../image/reference.js';
import { chain, CompressionError, compressor, decompressed, detectCompression, peek } from '../layer/compression.js';
import { checkedTar, checksumOk, readTar, TarError } from '../layer/tar.js';
import type { ImageRecord, Store } from './store.js';

export class LoadError extends Error {
  override readonly name = 'LoadError';
}

const metaFiles = /^(index\.json|manifest\.json|oci-layout|repositories|[^/]+\.json)$/;

async function readAllLimited(body: AsyncIterable<Buffer>, limit: number, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw new LoadError(`${name} in the archive is larger than ${limit} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

export interface LoadReport {
  records: ImageRecord[];
  /** images without a name, by manifest digest */
  unnamed: string[];
}

/** Errors of reading an archive, named by the archive (the entry alone does not say which file it was). */
async function named<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof TarError || e instanceof CompressionError) throw new LoadError(`${what}: ${e.message}`);
    throw e;
  }
}

export async function loadArchive(store: Store, input: Readable, what = 'archive'): Promise<LoadReport> {
  return named(what, () => loadFrom(store, input, what));
}

async function loadFrom(store: Store, input: Readable, what: string): Promise<LoadReport> {
  const { stream } = await decompressed(input);
  const meta = new Map<string, Buffer>();
  /** every file that became a blob: path → descriptor basics */
  const files = new Map<string, { digest: string; size: number }>();
  for await (const { header, body } of readTar(stream)) {
    const name = header.name.replace(/^\.\//, '').replace(/^\/+/, '');
    if (header.type !== 'file' && header.type !== 'symlink') continue;
    if (header.type === 'symlink') {
      // Legacy saves link identical layers; resolve later against what was stored.
      files.set(name, files.get(header.linkname?.replace(/^(\.\.\/)+/, '') ?? '') ?? { digest: '', size: -1 });
      continue;
    }
    const blob = name.match(/^blobs\/(sha256|sha512)\/([0-9a-f]+)$/);
    if (blob) {
      const digest = `${blob[1]}:${blob[2]}`;
      parseDigest(digest);
      files.set(name, await store.writeBlob(body, { digest, size: header.size }));
    } else if (metaFiles.test(name)) {
      meta.set(name, await readAllLimited(body, 64 * 1024 * 1024, name));
      files.set(name, await store.writeBlob(meta.get(name) as Buffer));
    } else {
      files.set(name, await store.writeBlob(body));
    }
  }
  const report: LoadReport = { records: [], unnamed: [] };
  const json = <T>(name: string): T | undefined => {
    const b = meta.get(name);
    if (!b) return undefined;
    try {
      return JSON.parse(b.toString('utf8')) as T;
    } catch (e) {
      throw new LoadError(`${what}: ${name} is not valid JSON: ${(e as Error).message}`);
    }
  };
  const dockerEntries = dockerManifest(json<unknown>('manifest.json'), what);
  const index = ociIndex(json<unknown>('index.json'), what);
  if (index?.manifests) {
    for (const d of index.manifests) {
      const parsed = parseManifest(await store.readBlob(d.digest), d.mediaType);
      const annotated = d.annotations?.['io.containerd.image.name'];
      let names: string[] = [];
      if (annotated) names = [formatReference(parseReference(annotated))];
      else if (parsed.kind === 'manifest') {
        const configPath = `blobs/${parsed.manifest.config.digest.replace(':', '/')}`;
        names = (dockerEntries.find((e) => e.Config === configPath)?.RepoTags ?? []).map((t) =>
          formatReference(parseReference(t)),
        );
      }
      if (names.length === 0) report.unnamed.push(d.digest);
      for (const n of names)
        report.records.push(
          await store.putImage(n, { mediaType: parsed.mediaType, digest: parsed.digest, size: parsed.bytes.length }),
        );
    }
    return report;
  }
  if (dockerEntries.length === 0)
    throw new LoadError(`${what} is neither an OCI layout (index.json) nor a docker save archive (manifest.json)`);
  for (const e of dockerEntries) {
    const config = files.get(e.Config);
    if (!config) throw new LoadError(`${what}: manifest.json names ${e.Config}, which is not in the archive`);
    const configBytes = await store.readBlob(config.digest);
    const parsedConfig = parseImageConfig(configBytes);
    if (parsedConfig.rootfs.diff_ids.length !== e.Layers.length) {
      throw new LoadError(
        `${what}: ${e.Config} lists ${parsedConfig.rootfs.diff_ids.length} diff_ids but manifest.json ${e.Layers.length} layers`,
      );
    }
    const layers: Descriptor[] = [];
    for (const [i, l] of e.Layers.entries()) {
      const f = files.get(l);
      if (!f?.digest) throw new LoadError(`${what}: manifest.json names ${l}, which is not in the archive`);
      const head = await readHead(store, f.digest);
      const c = detectCompression(head);
      if (c === 'none' && f.digest !== parsedConfig.rootfs.diff_ids[i]) {
        throw new LoadError(
          `${what}: layer ${l} has digest ${f.digest}, the config says ${parsedConfig.rootfs.diff_ids[i]}`,
        );
      }
      layers.push({
        mediaType:
          c === 'gzip' ? MediaType.dockerLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.dockerLayer,
        digest: f.digest,
        size: f.size,
      });
    }
    // a zstd layer makes the manifest OCI, every layer then named by OCI's types
    const manifest = inFamily(
      {
        schemaVersion: 2,
        config: { mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size },
        layers,
      },
      manifestIsOci(layers.map((l) => l.mediaType)),
    );
    const bytes = manifestBytes(manifest);
    const stored = await store.writeBlob(bytes);
    const names = (e.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
    if (names.length === 0) report.unnamed.push(stored.digest);
    for (const n of names)
      report.records.push(
        await store.putImage(n, { mediaType: manifest.mediaType as string, digest: stored.digest, size: bytes.length }),
      );
  }
  return report;
}

interface DockerEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** manifest.json of a docker save archive, checked: a list of {Config, RepoTags, Layers}. */
function dockerManifest(doc: unknown, what: string): DockerEntry[] {
  if (doc === undefined) return [];
  if (!Array.isArray(doc))
    throw new LoadError(
      `${what}: manifest.json is not a list of images (docker save writes [{"Config": …, "RepoTags": […], "Layers": […]}])`,
    );
  return doc.map((e: unknown, i) => {
    const entry = e as Partial<DockerEntry> | null;
    if (typeof entry !== 'object' || entry === null)
      throw new LoadError(`${what}: manifest.json entry ${i} is not an object`);
    if (typeof entry.Config !== 'string')
      throw new LoadError(`${what}: manifest.json entry ${i} has no Config file name`);
    if (!isStrings(entry.Layers)) throw new LoadError(`${what}: manifest.json entry ${i} has no Layers list`);
    if (entry.RepoTags !== undefined && entry.RepoTags !== null && !isStrings(entry.RepoTags))
      throw new LoadError(`${what}: manifest.json entry ${i} has RepoTags that are not a list of names`);
    return entry as DockerEntry;
  });
}

/** index.json of an OCI layout, checked: `manifests` a list of descriptors with a digest. */
function ociIndex(doc: unknown, what: string): { manifests?: Descriptor[] } | undefined {
  if (doc === undefined) return undefined;
  const index = doc as { manifests?: unknown } | null;
  if (typeof index !== 'object' || index === null || Array.isArray(index))
    throw new LoadError(`${what}: index.json is not an OCI image index`);
  if (index.manifests === undefined) return {};
  if (!Array.isArray(index.manifests)) throw new LoadError(`${what}: index.json's manifests is not a list`);
  for (const [i, d] of index.manifests.entries()) {
    const desc = d as Partial<Descriptor> | null;
    if (typeof desc !== 'object' || desc === null || typeof desc.digest !== 'string')
      throw new LoadError(`${what}: index.json's manifests[${i}] is not a descriptor with a digest`);
    parseDigest(desc.digest);
  }
  return index as { manifests: Descriptor[] };
}

async function readHead(store: Store, digest: string): Promise<Buffer> {
  const fh = await open(store.blobPath(digest));
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function loadArchiveFile(store: Store, file: string): Promise<LoadReport> {
  return loadArchive(store, createReadStream(file), file);
}

export interface ImportOptions {
  platform?: Platform;
  /** the history comment (docker: "Imported from <source>") */
  source?: string;
  /** config changes (Cmd, Env, …) */
  config?: ImageConfig['config'];
}

/** A root filesystem tar (plain, gzip or zstd) as a one-layer image named `name`. */
export async function importRootfs(
  store: Store,
  input: Readable,
  name: string,
  options: ImportOptions = {},
): Promise<ImageRecord> {
  const ref = parseReference(name);
  const what = options.source ?? 'the input';
  const { head, stream } = await named(what, async () => peek((await decompressed(input)).stream, 512));
  if (!checksumOk(head))
    throw new LoadError(`${options.source ?? 'the input'} is not a tar archive (plain, gzip or zstd)`);
  const diff = new DigestStream();
  // Read as a tar on the way in: a corrupt or truncated archive fails here instead of becoming a broken layer.
  const layer = await named(what, () => store.writeBlob(chain(checkedTar(stream), diff, compressor('gzip'))));
  const platform = options.platform ?? hostPlatform();
  const now = new Date().toISOString();
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: now,
    config: options.config ?? {},
    rootfs: { type: 'layers', diff_ids: [diff.digest] },
    history: [{ created: now, created_by: 'hoist import', comment: `Imported from ${options.source ?? '-'}` }],
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const c = await store.writeBlob(configBytes);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: c.digest, size: c.size },
    layers: [{ mediaType: MediaType.dockerLayerGzip, digest: layer.digest, size: layer.size }],
  };
  const bytes = manifestBytes(manifest);
  const m = await store.writeBlob(bytes);
  return store.putImage(formatReference(ref), {
    mediaType: MediaType.dockerManifest,
    digest: m.digest,
    size: bytes.length,
  });
}
