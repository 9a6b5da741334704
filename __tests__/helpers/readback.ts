// What hoist pushed, read back by an independent client: skopeo (containers/image, as podman, buildah and CRI-O
// read images). `skopeo inspect --raw` gives the manifest as the registry holds it; every platform's image (an
// index's entries one by one) is copied whole into a `dir:` (skopeo parses the manifest strictly — a Docker
// manifest listing an OCI layer type is refused — and checks every blob's digest); and each manifest is checked to
// name its config and layers in its own family's media types.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * skopeo without blocking this process: a test's registry may sit behind a server of the test's own process (a fault
 * proxy, a token server), which must go on answering while skopeo asks it.
 */
function skopeo(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('skopeo', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(out).toString())
        : reject(new Error(`skopeo ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString()}`)),
    );
  });
}

const docker = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
};

interface RawDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}
export interface RawManifest {
  mediaType?: string;
  config?: RawDescriptor;
  layers?: RawDescriptor[];
  manifests?: RawDescriptor[];
  annotations?: Record<string, string>;
}

export interface ReadBack {
  /** the manifest or index under the reference, as the registry holds it */
  raw: RawManifest;
  /** each image (the reference's own, or an index's entries that are not attestations), as skopeo copied it */
  images: { platform?: string; digest: string; manifest: RawManifest }[];
  /** an index's attestation manifests */
  attestations: RawManifest[];
}

/** The media types a manifest names, when they do not all belong to its own family (Docker's or OCI's). */
export function mixedMediaTypes(m: RawManifest): string[] {
  const isDocker = (t: string) => t.startsWith('application/vnd.docker.');
  // Docker's list holds Docker manifests only; an OCI index may hold either (buildx imagetools joins legs of both
  // kinds under one, and a leg's manifest cannot be renamed without changing the digest its job reported).
  if (m.manifests)
    return m.mediaType === docker.list ? m.manifests.map((d) => d.mediaType).filter((t) => t !== docker.manifest) : [];
  const dockerManifest = m.mediaType === docker.manifest;
  const types = [m.config?.mediaType ?? '', ...(m.layers ?? []).map((l) => l.mediaType)];
  if (dockerManifest) return types.filter((t) => !isDocker(t) || t.endsWith('.zstd'));
  return types.filter((t) => isDocker(t));
}

function repositoryOf(ref: string): string {
  const name = ref.split('@')[0];
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(0, colon) : name;
}

async function inspectRaw(ref: string, creds?: string): Promise<RawManifest> {
  return JSON.parse(
    await skopeo(['inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${ref}`]),
  ) as RawManifest;
}

async function copied(ref: string, creds?: string): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-readback-'));
  try {
    await skopeo([
      'copy',
      '-q',
      '--src-tls-verify=false',
      ...(creds ? ['--src-creds', creds] : []),
      `docker://${ref}`,
      `dir:${dir}`,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads `ref` back with skopeo, every platform's image copied; throws when skopeo refuses one or a manifest mixes
 * media types (the test fails with skopeo's own words).
 */
export async function readBack(ref: string, options: { creds?: string } = {}): Promise<ReadBack> {
  const raw = await inspectRaw(ref, options.creds);
  const out: ReadBack = { raw, images: [], attestations: [] };
  const check = (m: RawManifest, what: string) => {
    const mixed = mixedMediaTypes(m);
    if (mixed.length)
      throw new Error(`${what} (${m.mediaType}) names media types of the other family: ${mixed.join(', ')}`);
  };
  check(raw, ref);
  if (!raw.manifests) {
    await copied(ref, options.creds);
    out.images.push({ digest: '', manifest: raw });
    return out;
  }
  const repo = repositoryOf(ref);
  for (const d of raw.manifests) {
    const at = `${repo}@${d.digest}`;
    const m = await inspectRaw(at, options.creds);
    check(m, at);
    if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || d.platform?.os === 'unknown') {
      out.attestations.push(m);
      continue;
    }
    await copied(at, options.creds);
    const p = d.platform;
    out.images.push({
      platform: p && `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`,
      digest: d.digest,
      manifest: m,
    });
  }
  return out;
}

/**
 * readBack for a test that pushed as a side matter: a registry that wants credentials skopeo has not got, or a
 * proxy the test has stopped, is not the manifest's fault and is let be; anything else skopeo says fails the test.
 */
export async function readBackPushed(refs: readonly string[]): Promise<void> {
  for (const ref of refs) {
    try {
      await readBack(ref);
    } catch (e) {
      if (
        /unauthorized|authentication required|denied|connection refused|no such host|EOF|timeout/i.test(
          (e as Error).message,
        )
      )
        continue;
      throw e;
    }
  }
}
