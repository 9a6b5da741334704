// `hoist load` and `hoist import`.
// load: a `docker save` / `hoist save` tar (OCI layout with index.json, and/or Docker's manifest.json, gzip'd or
// not) into the store. Blobs under blobs/<alg>/<hex> are verified against their names; the legacy layout's
// layer.tar files are hashed as they are stored. Names come from index.json annotations, else RepoTags.
// import: a root filesystem tarball as a one-layer image, like `docker import`.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DigestStream, parseDigest } from '../image/digest.js';
import { type Descriptor, type ImageConfig, type ImageManifest, manifestBytes, parseImageConfig, parseManifest } from '../image/manifest.js';
import { MediaType } from '../image/media-types.js';
import { hostPlatform, type Platform } from '../image/platform.js';
import { formatReference, parseReference } from '../image/reference.js';
import { chain, compressor, decompressed, detectCompression, peek } from '../layer/compression.js';
import { checksumOk, readTar } from '../layer/tar.js';
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

export async function loadArchive(store: Store, input: Readable, what = 'archive'): Promise<LoadReport> {
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
  const dockerEntries = json<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>('manifest.json') ?? [];
  const index = json<{ manifests?: Descriptor[] }>('index.json');
  if (index?.manifests) {
    for (const d of index.manifests) {
      const parsed = parseManifest(await store.readBlob(d.digest), d.mediaType);
      const annotated = d.annotations?.['io.containerd.image.name'];
      let names: string[] = [];
      if (annotated) names = [formatReference(parseReference(annotated))];
      else if (parsed.kind === 'manifest') {
        const configPath = `blobs/${parsed.manifest.config.digest.replace(':', '/')}`;
        names = (dockerEntries.find((e) => e.Config === configPath)?.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
      }
      if (names.length === 0) report.unnamed.push(d.digest);
      for (const n of names) report.records.push(await store.putImage(n, { mediaType: parsed.mediaType, digest: parsed.digest, size: parsed.bytes.length }));
    }
    return report;
  }
  if (dockerEntries.length === 0) throw new LoadError(`${what} is neither an OCI layout (index.json) nor a docker save archive (manifest.json)`);
  for (const e of dockerEntries) {
    const config = files.get(e.Config);
    if (!config) throw new LoadError(`${what}: manifest.json names ${e.Config}, which is not in the archive`);
    const configBytes = await store.readBlob(config.digest);
    const parsedConfig = parseImageConfig(configBytes);
    if (parsedConfig.rootfs.diff_ids.length !== e.Layers.length) {
      throw new LoadError(`${what}: ${e.Config} lists ${parsedConfig.rootfs.diff_ids.length} diff_ids but manifest.json ${e.Layers.length} layers`);
    }
    const layers: Descriptor[] = [];
    for (const [i, l] of e.Layers.entries()) {
      const f = files.get(l);
      if (!f || !f.digest) throw new LoadError(`${what}: manifest.json names ${l}, which is not in the archive`);
      const head = await readHead(store, f.digest);
      const c = detectCompression(head);
      if (c === 'none' && f.digest !== parsedConfig.rootfs.diff_ids[i]) {
        throw new LoadError(`${what}: layer ${l} has digest ${f.digest}, the config says ${parsedConfig.rootfs.diff_ids[i]}`);
      }
      layers.push({ mediaType: c === 'gzip' ? MediaType.dockerLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.dockerLayer, digest: f.digest, size: f.size });
    }
    const oci = layers.some((l) => l.mediaType === MediaType.ociLayerZstd);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest,
      config: { mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig, digest: config.digest, size: config.size },
      layers,
    };
    const bytes = manifestBytes(manifest);
    const stored = await store.writeBlob(bytes);
    const names = (e.RepoTags ?? []).map((t) => formatReference(parseReference(t)));
    if (names.length === 0) report.unnamed.push(stored.digest);
    for (const n of names) report.records.push(await store.putImage(n, { mediaType: manifest.mediaType as string, digest: stored.digest, size: bytes.length }));
  }
  return report;
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
export async function importRootfs(store: Store, input: Readable, name: string, options: ImportOptions = {}): Promise<ImageRecord> {
  const ref = parseReference(name);
  const { head, stream } = await peek((await decompressed(input)).stream, 512);
  if (!checksumOk(head)) throw new LoadError(`${options.source ?? 'the input'} is not a tar archive (plain, gzip or zstd)`);
  const diff = new DigestStream();
  const layer = await store.writeBlob(chain(stream, diff, compressor('gzip')));
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
  return store.putImage(formatReference(ref), { mediaType: MediaType.dockerManifest, digest: m.digest, size: bytes.length });
}

