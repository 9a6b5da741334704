// Manifests, indexes and image configs. Values keep every field they were read with (unknown fields
// round-trip), and a manifest travels with its exact bytes: its digest is the hash of those bytes.
import { digestOf, parseDigest } from './digest.js';
import { convertMediaType, isIndexMediaType, isManifestMediaType, MediaType } from './media-types.js';
import { formatPlatform, type Platform, parsePlatform, samePlatform } from './platform.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  data?: string;
  [field: string]: unknown;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
  artifactType?: string;
  [field: string]: unknown;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The runtime part of an image config (`config` in the JSON). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
  [field: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
  [field: string]: unknown;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
  [field: string]: unknown;
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

/** A manifest or index as read: its kind, its parsed value, its exact bytes and their digest. */
export type ParsedManifest =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest; bytes: Uint8Array; digest: string }
  | { kind: 'index'; mediaType: string; index: ImageIndex; bytes: Uint8Array; digest: string };

function checkDescriptor(d: unknown, where: string): asserts d is Descriptor {
  const x = d as Descriptor;
  if (typeof x !== 'object' || x === null) throw new ManifestError(`${where}: not an object`);
  if (typeof x.mediaType !== 'string') throw new ManifestError(`${where}: mediaType missing`);
  if (typeof x.digest !== 'string') throw new ManifestError(`${where}: digest missing`);
  try {
    parseDigest(x.digest);
  } catch (e) {
    throw new ManifestError(`${where}: ${(e as Error).message}`);
  }
  if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) {
    throw new ManifestError(`${where}: size must be a non-negative integer`);
  }
}

/**
 * Parses manifest bytes. `contentType` is the registry's Content-Type (parameters ignored); the body's own
 * `mediaType` decides when present, and structure decides for OCI documents that omit it.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    // JSON.parse's message quotes the text: not in an error (it may be any file's first bytes).
    throw new ManifestError('manifest is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ManifestError('manifest is not a JSON object');
  const ct = contentType?.split(';')[0].trim().toLowerCase();
  const declared = typeof value.mediaType === 'string' ? value.mediaType : undefined;
  let mediaType = declared ?? (ct && ct !== 'application/json' && ct !== 'text/plain' ? ct : undefined);
  if (mediaType === undefined) mediaType = Array.isArray(value.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  if (
    mediaType === MediaType.dockerSchema1 ||
    mediaType === MediaType.dockerSchema1Signed ||
    value.schemaVersion === 1
  ) {
    throw new ManifestError(
      'this is a Docker schema 1 manifest, which is deprecated and not supported; push the image again with a current Docker or builder',
    );
  }
  if (value.schemaVersion !== 2)
    throw new ManifestError(`unsupported schemaVersion ${JSON.stringify(value.schemaVersion)}`);
  const digest = digestOf(bytes);
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(value.manifests)) throw new ManifestError('index has no manifests list');
    for (const [i, d] of value.manifests.entries()) checkDescriptor(d, `index manifests[${i}]`);
    return { kind: 'index', mediaType, index: value as unknown as ImageIndex, bytes, digest };
  }
  if (isManifestMediaType(mediaType)) {
    checkDescriptor(value.config, 'manifest config');
    if (!Array.isArray(value.layers)) throw new ManifestError('manifest has no layers list');
    for (const [i, d] of value.layers.entries()) checkDescriptor(d, `manifest layers[${i}]`);
    return { kind: 'manifest', mediaType, manifest: value as unknown as ImageManifest, bytes, digest };
  }
  throw new ManifestError(`unsupported manifest media type ${JSON.stringify(mediaType)}`);
}

/**
 * The manifest in one family's media types, its config's and layers' too: the same blobs under names that agree
 * (skopeo, podman, buildah and CRI-O refuse a Docker manifest that lists an OCI layer type; docker and containerd
 * let it pass). A type the family has no name for stays as it is: manifestIsOci says when OCI is the only choice.
 */
export function inFamily(m: ImageManifest, oci: boolean): ImageManifest {
  return {
    ...m,
    mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest,
    config: { ...m.config, mediaType: convertMediaType(m.config.mediaType, oci) },
    layers: m.layers.map((l) => ({ ...l, mediaType: convertMediaType(l.mediaType, oci) })),
  };
}

/** Serialises a manifest or index once; these bytes are what gets hashed, stored and pushed. */
export function manifestBytes(value: ImageManifest | ImageIndex): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  let value: ImageConfig;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8')) as ImageConfig;
  } catch {
    throw new ManifestError('image config is not valid JSON');
  }
  if (typeof value !== 'object' || value === null) throw new ManifestError('image config is not a JSON object');
  if (!value.rootfs || !Array.isArray(value.rootfs.diff_ids))
    throw new ManifestError('image config has no rootfs.diff_ids');
  return value;
}

/** BuildKit attestation manifests sit in indexes as `unknown/unknown` with a reference-type annotation. */
export function isAttestation(d: Descriptor): boolean {
  return (
    d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' ||
    (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown')
  );
}

/**
 * An entry's platform, when it is one that can be read (strings of the allowed characters): an index may hold an
 * absurd entry beside good ones, and the good ones must still be found.
 */
function readablePlatform(d: Descriptor): Platform | undefined {
  const p = d.platform as Partial<Platform> | undefined;
  if (
    !p ||
    typeof p.os !== 'string' ||
    typeof p.architecture !== 'string' ||
    (p.variant !== undefined && typeof p.variant !== 'string')
  )
    return undefined;
  const text = formatPlatform(p as Platform);
  if (/\s/.test(text)) return undefined;
  try {
    parsePlatform(text);
    return p as Platform;
  } catch {
    return undefined;
  }
}

/** The platforms an index offers, attestations (and entries whose platform cannot be read) left out. */
export function indexPlatforms(index: ImageIndex): Platform[] {
  return index.manifests.filter((d) => !isAttestation(d)).flatMap((d) => readablePlatform(d) ?? []);
}

/**
 * The index entry for a platform. An exact match (after normalisation) wins; a requested variant-less platform
 * takes the best variant on offer (arm64 matches arm64/v8; arm/v7 runs on arm/v8). Attestations are never picked.
 */
export function selectPlatform(index: ImageIndex, want: Platform): Descriptor | undefined {
  const candidates = index.manifests.filter((d) => !isAttestation(d) && readablePlatform(d) !== undefined);
  const exact = candidates.find((d) => samePlatform(d.platform as Platform, want));
  if (exact) return exact;
  const w = parsePlatform(formatPlatform(want));
  const sameArch = candidates.filter((d) => {
    const p = parsePlatform(formatPlatform(d.platform as Platform));
    return p.os === w.os && p.architecture === w.architecture;
  });
  if (w.architecture === 'arm') {
    // An arm/vN machine runs arm/vM for every M ≤ N.
    const level = (p: Platform) => Number((p.variant ?? 'v7').slice(1));
    const fits = sameArch
      .filter((d) => level(parsePlatform(formatPlatform(d.platform as Platform))) <= level(w))
      .sort((a, b) => level(b.platform as Platform) - level(a.platform as Platform));
    return fits[0];
  }
  if (w.variant === undefined) return sameArch[0];
  return undefined;
}

/** Descriptor of a manifest's bytes, with the platform when it sits in an index. */
export function describe(mediaType: string, bytes: Uint8Array, platform?: Platform): Descriptor {
  const d: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length };
  if (platform) d.platform = platform;
  return d;
}

/** ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)) (image-spec config.md). */
export function chainIDs(diffIDs: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) out.push(out.length === 0 ? d : digestOf(`${out[out.length - 1]} ${d}`));
  return out;
}

/** The platform an image config describes. */
export function configPlatform(config: ImageConfig): Platform {
  const p: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) p.variant = config.variant;
  return p;
}
