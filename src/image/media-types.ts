// Media types of Docker v2 schema 2 and OCI (shared/research/registry.md §4.2).

export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociNondistributableLayer: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociNondistributableLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociNondistributableLayerZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** What a pull asks for: every manifest kind we read. Docker-only Accept makes distribution 2.8 hide OCI manifests. */
export const manifestAccept = [
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
  MediaType.ociManifest,
  MediaType.ociIndex,
].join(', ');

export type Compression = 'gzip' | 'zstd' | 'none';

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaType.ociIndex || mt === MediaType.dockerManifestList;
}

export function isManifestMediaType(mt: string | undefined): boolean {
  return mt === MediaType.ociManifest || mt === MediaType.dockerManifest;
}

export function isConfigMediaType(mt: string | undefined): boolean {
  return mt === MediaType.ociConfig || mt === MediaType.dockerConfig;
}

/** The compression of a layer media type, or undefined when it is not a layer. */
export function layerCompression(mt: string): Compression | undefined {
  switch (mt) {
    case MediaType.dockerLayerGzip:
    case MediaType.dockerForeignLayerGzip:
    case MediaType.ociLayerGzip:
    case MediaType.ociNondistributableLayerGzip:
      return 'gzip';
    case MediaType.ociLayerZstd:
    case MediaType.ociNondistributableLayerZstd:
      return 'zstd';
    case MediaType.dockerLayer:
    case MediaType.ociLayer:
    case MediaType.ociNondistributableLayer:
      return 'none';
    default:
      return undefined;
  }
}

/** The layer media type of a family (Docker or OCI) and compression; Docker has no zstd layer type. */
export function layerMediaType(oci: boolean, compression: Compression): string {
  if (compression === 'zstd') return MediaType.ociLayerZstd;
  if (oci) return compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayer;
  return compression === 'gzip' ? MediaType.dockerLayerGzip : MediaType.dockerLayer;
}

/** Media types of one family, so a manifest never mixes Docker and OCI types. */
export function familyOf(manifestMediaType: string): 'docker' | 'oci' {
  return manifestMediaType === MediaType.dockerManifest || manifestMediaType === MediaType.dockerManifestList
    ? 'docker'
    : 'oci';
}

const toOci: Record<string, string> = {
  [MediaType.dockerManifest]: MediaType.ociManifest,
  [MediaType.dockerManifestList]: MediaType.ociIndex,
  [MediaType.dockerConfig]: MediaType.ociConfig,
  [MediaType.dockerLayerGzip]: MediaType.ociLayerGzip,
  [MediaType.dockerLayer]: MediaType.ociLayer,
  [MediaType.dockerForeignLayerGzip]: MediaType.ociNondistributableLayerGzip,
};
const toDocker: Record<string, string> = Object.fromEntries(Object.entries(toOci).map(([d, o]) => [o, d]));

/**
 * A media type (manifest, index, config or layer) in the other family: the same bytes under the other family's
 * name. A type the family has no name for (zstd in Docker's, or one that is neither's) is answered unchanged.
 */
export function convertMediaType(mt: string, oci: boolean): string {
  return (oci ? toOci[mt] : toDocker[mt]) ?? mt;
}

/**
 * Whether a manifest over layers of these types must be OCI: a layer Docker's schema 2 has no type for (zstd, which
 * skopeo, podman and CRI-O refuse under a Docker manifest, and anything that is neither family's) cannot sit in a
 * Docker manifest; with these layers, `oci` asks for OCI (oci-mediatypes=true), otherwise Docker's, as buildx's
 * default. The layers' bytes never change: a gzip layer is the same blob under either family's type.
 */
export function manifestIsOci(layerTypes: readonly string[], oci = false): boolean {
  return oci || layerTypes.some((mt) => !(mt in toOci) && !(mt in toDocker));
}

/** An index over manifests of these types: Docker's list only when every one is a Docker manifest. */
export function indexMediaTypeFor(manifestTypes: readonly string[], oci = false): string {
  return !oci && manifestTypes.every((mt) => mt === MediaType.dockerManifest)
    ? MediaType.dockerManifestList
    : MediaType.ociIndex;
}
