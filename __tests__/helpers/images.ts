// Small real images for registry tests: a gzip layer made by GNU tar from files the test chooses, a config
// whose diff_ids match, and a Docker or OCI manifest over them.
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { digestOf } from '../../src/image/digest.js';
import type { ImageConfig, ImageManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/media-types.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { Readable } from 'node:stream';
import { hoistOk } from './hoist.js';
import { run } from './tools.js';

export interface TestBlob {
  mediaType: string;
  digest: string;
  size: number;
  bytes: Buffer;
}

export interface TestImage {
  config: TestBlob;
  layers: TestBlob[];
  manifest: TestBlob;
  diffIDs: string[];
}

export function blob(mediaType: string, bytes: Buffer): TestBlob {
  return { mediaType, digest: digestOf(bytes), size: bytes.length, bytes };
}

/** A layer tar of the given files (path → content), made by GNU tar as a user's tool would. */
export function layerTar(files: Record<string, string>): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-layer-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), content);
    }
    run('tar', [
      '--format=posix',
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '-C',
      dir,
      '-cf',
      path.join(dir, '..', `${path.basename(dir)}.tar`),
      ...Object.keys(files),
    ]);
    const out = readFileSync(path.join(dir, '..', `${path.basename(dir)}.tar`));
    rmSync(path.join(dir, '..', `${path.basename(dir)}.tar`));
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An image of layers made from `files` (by GNU tar), or of the layer tars given as they are (`tars`). */
export function makeImage(
  options: {
    files?: Record<string, string>[];
    tars?: Buffer[];
    oci?: boolean;
    architecture?: string;
    variant?: string;
    cmd?: string[];
  } = {},
): TestImage {
  const oci = options.oci ?? false;
  const tars = options.tars ?? (options.files ?? [{ 'hello.txt': 'hello\n' }]).map(layerTar);
  const diffIDs = tars.map((t) => digestOf(t));
  const layers = tars.map((t) => blob(oci ? MediaType.ociLayerGzip : MediaType.dockerLayerGzip, gzipSync(t)));
  const config: ImageConfig = {
    architecture: options.architecture ?? 'amd64',
    os: 'linux',
    ...(options.variant ? { variant: options.variant } : {}),
    created: '2026-01-01T00:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: options.cmd ?? ['/bin/sh'],
    },
    rootfs: { type: 'layers', diff_ids: diffIDs },
    history: diffIDs.map((_, i) => ({ created: '2026-01-01T00:00:00Z', created_by: `layer ${i}` })),
  };
  const configBlob = blob(oci ? MediaType.ociConfig : MediaType.dockerConfig, Buffer.from(JSON.stringify(config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest,
    config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  return {
    config: configBlob,
    layers,
    diffIDs,
    manifest: blob(manifest.mediaType as string, Buffer.from(JSON.stringify(manifest))),
  };
}

/** Pushes a test image's blobs and then its manifest under `refText`'s tag, with the library's client. */
export async function seed(client: RegistryClient, refText: string, image: TestImage): Promise<void> {
  const ref = parseReference(refText);
  for (const b of [...image.layers, image.config]) await client.pushBlob(ref, b, () => Readable.from([b.bytes]));
  await client.putManifest(ref, ref.tag as string, image.manifest.bytes, image.manifest.mediaType);
}

/** The default applets of the suite's busybox bases. */
export const busyboxApplets = [
  'sh',
  'echo',
  'true',
  'wget',
  'ls',
  'pwd',
  'id',
  'cat',
  'mkdir',
  'rm',
  'chmod',
  'ln',
  'sleep',
  'wc',
  'touch',
  'mkfifo',
  'mv',
  'chown',
  'grep',
  'test',
  'sed',
  'env',
];

/**
 * A busybox root filesystem in `rootfs` from Debian's busybox-static (the host's, or `busybox`): applets as symlinks,
 * passwd/group with `app` = 1000, /tmp sticky.
 */
export function busyboxRootfs(rootfs: string, applets: readonly string[] = busyboxApplets, busybox?: string): void {
  for (const dir of ['bin', 'etc', 'tmp', 'usr/local/bin', 'root'])
    mkdirSync(path.join(rootfs, dir), { recursive: true });
  writeFileSync(
    path.join(rootfs, 'bin/busybox'),
    readFileSync(busybox ?? run('sh', ['-c', 'command -v busybox']).trim()),
  );
  chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const l of applets) symlinkSync('busybox', path.join(rootfs, 'bin', l));
  writeFileSync(
    path.join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\nnogroup:x:65534:\n');
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  chmodSync(path.join(rootfs, 'root'), 0o700);
}

/** A busybox base image (busyboxRootfs), imported with hoist into `store` and pushed as `ref`. */
export async function pushBusyboxBase(
  ref: string,
  store: string,
  work: string,
  applets = busyboxApplets,
  options: { busybox?: string; platform?: string } = {},
): Promise<void> {
  const rootfs = mkdtempSync(path.join(work, 'base-rootfs-'));
  busyboxRootfs(rootfs, applets, options.busybox);
  const tar = `${rootfs}.tar`;
  run('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', rootfs, '-cf', tar, '.']);
  await hoistOk(['import', ...(options.platform ? ['--platform', options.platform] : []), tar, ref, '--store', store]);
  await hoistOk(['push', ref, '--store', store]);
}

/** Where the test set-up put Debian's arm64 busybox (scripts/test-deps.mjs), when it could. */
export const arm64Busybox = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'node_modules',
  '.cache',
  'hoist-arm64',
  'root',
  'bin',
  'busybox',
);

/**
 * A busybox base for linux/amd64 and linux/arm64 under one tag (a Docker manifest list), each platform's image
 * also under `REF-amd64` / `REF-arm64`.
 */
export async function pushBusyboxIndex(ref: string, store: string, work: string, applets?: string[]): Promise<void> {
  await pushBusyboxBase(`${ref}-amd64`, store, work, applets, { platform: 'linux/amd64' });
  await pushBusyboxBase(`${ref}-arm64`, store, work, applets, { platform: 'linux/arm64', busybox: arm64Busybox });
  const client = new RegistryClient();
  try {
    const target = parseReference(ref);
    const manifests = [];
    for (const [arch, r] of [
      ['amd64', `${ref}-amd64`],
      ['arm64', `${ref}-arm64`],
    ] as const) {
      const m = await client.getManifest(parseReference(r));
      manifests.push({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.bytes.length,
        platform: { architecture: arch, os: 'linux' },
      });
    }
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
        manifests,
      }),
    );
    await client.putManifest(
      target,
      target.tag as string,
      index,
      'application/vnd.docker.distribution.manifest.list.v2+json',
    );
  } finally {
    await client.close();
  }
}
