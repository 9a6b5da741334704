import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, DigestStream, digestOf, SizeMismatchError } from '../../src/image/digest.js';
import { indexMediaTypeFor, manifestIsOci, MediaType } from '../../src/image/media-types.js';
import {
  chainIDs,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  indexPlatforms,
  inFamily,
  manifestBytes,
  ManifestError,
  parseManifest,
  selectPlatform,
} from '../../src/image/manifest.js';
import type { Platform } from '../../src/image/platform.js';

const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const entry = (platform: Platform, n: number, annotations?: Record<string, string>): Descriptor => ({
  mediaType: MediaType.ociManifest,
  digest: d(n),
  size: 10,
  platform,
  annotations,
});

describe('manifests', () => {
  test('unknown fields round-trip byte for byte', () => {
    const text =
      '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"' +
      d(1) +
      '","size":2,"x-extra":[1]},"layers":[],"vendor":{"k":"v"}}';
    const p = parseManifest(Buffer.from(text));
    expect(p.kind).toBe('manifest');
    if (p.kind !== 'manifest') return;
    expect(p.digest).toBe(digestOf(text));
    expect(Buffer.from(manifestBytes(p.manifest)).toString()).toBe(text);
  });

  test('media type comes from the body, then Content-Type, then structure', () => {
    const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    expect(parseManifest(idx).mediaType).toBe(MediaType.ociIndex);
    expect(parseManifest(idx, `${MediaType.dockerManifestList}; charset=utf-8`).mediaType).toBe(
      MediaType.dockerManifestList,
    );
  });

  test('schema 1 and malformed descriptors are rejected with a reason', () => {
    expect(() => parseManifest(Buffer.from('{"schemaVersion":1}'))).toThrow(/schema 1/);
    const bad = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: 'x', digest: 'sha256:zz', size: 1 },
      layers: [],
    };
    expect(() => parseManifest(Buffer.from(JSON.stringify(bad)))).toThrow(ManifestError);
    expect(() => parseManifest(Buffer.from('nope'))).toThrow(/not valid JSON/);
  });

  test('platform selection skips attestations and normalises', () => {
    const index: ImageIndex = {
      schemaVersion: 2,
      manifests: [
        entry({ os: 'unknown', architecture: 'unknown' }, 9, { 'vnd.docker.reference.type': 'attestation-manifest' }),
        entry({ os: 'linux', architecture: 'amd64' }, 1),
        entry({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 2),
        entry({ os: 'linux', architecture: 'arm', variant: 'v6' }, 3),
        entry({ os: 'linux', architecture: 'arm', variant: 'v7' }, 4),
      ],
    };
    expect(selectPlatform(index, { os: 'linux', architecture: 'amd64' })?.digest).toBe(d(1));
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm64' })?.digest).toBe(d(2));
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v8' })?.digest).toBe(d(4));
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' })?.digest).toBe(d(3));
    expect(selectPlatform(index, { os: 'linux', architecture: 's390x' })).toBeUndefined();
    expect(
      selectPlatform({ schemaVersion: 2, manifests: [index.manifests[0]] }, { os: 'unknown', architecture: 'unknown' }),
    ).toBeUndefined();
  });

  test('an absurd entry beside good ones is passed over, not fatal', () => {
    const absurd = [
      { os: 'linux', architecture: 'amd64/../../x' },
      { os: 42, architecture: null },
      { os: '', architecture: '' },
      { os: 'linux', architecture: `${'x'.repeat(10)}\n` },
    ] as unknown as Platform[];
    const index: ImageIndex = {
      schemaVersion: 2,
      manifests: [...absurd.map((p, i) => entry(p, 20 + i)), entry({ os: 'linux', architecture: 'amd64' }, 1)],
    };
    expect(selectPlatform(index, { os: 'linux', architecture: 'amd64' })?.digest).toBe(d(1));
    expect(indexPlatforms(index)).toEqual([{ os: 'linux', architecture: 'amd64' }]);
  });

  test('chain IDs', () => {
    const [a, b] = [d(1), d(2)];
    expect(chainIDs([a, b])).toEqual([a, digestOf(`${a} ${b}`)]);
  });
});

describe('media type families', () => {
  const manifest = (layers: string[]): ImageManifest => ({
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: d(1), size: 1 },
    layers: layers.map((mediaType, i) => ({ mediaType, digest: d(i + 2), size: 1 })),
  });

  test("an OCI base's gzip layer under a Docker manifest is named as Docker's, same digest and size", () => {
    const m = manifest([MediaType.ociLayerGzip, MediaType.dockerLayerGzip]);
    expect(manifestIsOci(m.layers.map((l) => l.mediaType))).toBe(false);
    const docker = inFamily(m, false);
    expect(docker.mediaType).toBe(MediaType.dockerManifest);
    expect(docker.layers).toEqual([
      { mediaType: MediaType.dockerLayerGzip, digest: d(2), size: 1 },
      { mediaType: MediaType.dockerLayerGzip, digest: d(3), size: 1 },
    ]);
    const oci = inFamily(m, true);
    expect([oci.mediaType, oci.config.mediaType, ...oci.layers.map((l) => l.mediaType)]).toEqual([
      MediaType.ociManifest,
      MediaType.ociConfig,
      MediaType.ociLayerGzip,
      MediaType.ociLayerGzip,
    ]);
  });

  test('a zstd layer (or one neither family names) makes the manifest OCI; uncompressed and foreign layers have both names', () => {
    expect(manifestIsOci([MediaType.dockerLayerGzip, MediaType.ociLayerZstd])).toBe(true);
    expect(manifestIsOci(['application/vnd.example.layer'])).toBe(true);
    expect(
      manifestIsOci([MediaType.ociLayer, MediaType.dockerForeignLayerGzip, MediaType.ociNondistributableLayerGzip]),
    ).toBe(false);
    expect(manifestIsOci([MediaType.dockerLayer], true)).toBe(true);
    const m = inFamily(
      manifest([MediaType.ociLayerZstd, MediaType.dockerLayerGzip, MediaType.dockerForeignLayerGzip]),
      true,
    );
    expect(m.layers.map((l) => l.mediaType)).toEqual([
      MediaType.ociLayerZstd,
      MediaType.ociLayerGzip,
      MediaType.ociNondistributableLayerGzip,
    ]);
  });

  test("an index is Docker's list only over Docker manifests", () => {
    expect(indexMediaTypeFor([MediaType.dockerManifest, MediaType.dockerManifest])).toBe(MediaType.dockerManifestList);
    expect(indexMediaTypeFor([MediaType.dockerManifest, MediaType.ociManifest])).toBe(MediaType.ociIndex);
    expect(indexMediaTypeFor([MediaType.dockerManifest], true)).toBe(MediaType.ociIndex);
  });
});

describe('DigestStream', () => {
  const data = Buffer.from('hello layer');
  const sink = async (s: DigestStream) => {
    const chunks: Buffer[] = [];
    await pipeline(Readable.from([data]), s, async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) chunks.push(c as Buffer);
    });
    return Buffer.concat(chunks);
  };
  test('passes bytes through and reports the digest', async () => {
    const s = new DigestStream();
    expect(await sink(s)).toEqual(data);
    expect(s.digest).toBe(digestOf(data));
    expect(s.size).toBe(data.length);
  });
  test('fails on a wrong digest or size', async () => {
    await expect(sink(new DigestStream({ digest: d(5), where: 'blob x' }))).rejects.toThrow(DigestMismatchError);
    await expect(sink(new DigestStream({ size: 3 }))).rejects.toThrow(SizeMismatchError);
    await expect(sink(new DigestStream({ size: 100 }))).rejects.toThrow(SizeMismatchError);
    await expect(sink(new DigestStream({ digest: digestOf(data, 'sha512') }))).resolves.toEqual(data);
  });
});
