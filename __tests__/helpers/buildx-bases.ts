// Base images made the way registries serve them today, by docker 26.1's buildx (BuildKit 0.13): an OCI index of
// linux/amd64 and linux/arm64 OCI manifests with BuildKit's attestation manifests (a provenance statement each),
// gzip layers (`oci`) or zstd layers (`zstd`). Each holds a busybox for its architecture (images.ts busyboxRootfs). Made once per test run
// as OCI layouts under HOIST_TEST_SHARED (the first test file that asks builds them, the others wait for it), and
// copied into a test's registry byte for byte by skopeo (`--all --preserve-digests`): the manifests a test reads are
// buildx's own.
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildx26, startDockerd } from './dockerd.js';
import { arm64Busybox, busyboxRootfs } from './images.js';
import { haveTool, run } from './tools.js';

export type BuildxBase = 'oci' | 'zstd';

const applets = [
  'sh',
  'echo',
  'true',
  'ls',
  'cat',
  'mkdir',
  'rm',
  'id',
  'uname',
  'test',
  'sed',
  'wc',
  'touch',
  'env',
  'tar',
  'sha256sum',
];

/** Whether the bases can be made here: docker 26's buildx, skopeo, and both architectures' busybox. */
export function canMakeBuildxBases(): boolean {
  const ok =
    buildx26() !== undefined &&
    haveTool('skopeo') &&
    haveTool('busybox') &&
    existsSync(arm64Busybox) &&
    process.getuid?.() === 0;
  if (!ok)
    process.stderr.write(
      "NOTICE: docker 26's buildx, skopeo or the arm64 busybox is missing: the tests on buildx-made (OCI, zstd, attested) bases are skipped\n",
    );
  return ok;
}

async function make(into: string): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-buildx-bases-'));
  const dockerd = await startDockerd();
  try {
    const ctx = path.join(work, 'ctx');
    busyboxRootfs(path.join(ctx, 'rootfs-amd64'), applets);
    busyboxRootfs(path.join(ctx, 'rootfs-arm64'), applets, arm64Busybox);
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      'FROM scratch\nARG TARGETARCH\nCOPY rootfs-${TARGETARCH}/ /\nENV PATH=/bin\nCMD ["/bin/sh"]\n',
    );
    const outputs: Record<BuildxBase, string> = {
      oci: 'oci-mediatypes=true,compression=gzip',
      zstd: 'oci-mediatypes=true,compression=zstd,force-compression=true',
    };
    for (const [name, options] of Object.entries(outputs)) {
      const dest = path.join(work, name);
      const r = dockerd.docker([
        'buildx',
        'build',
        '--platform',
        'linux/amd64,linux/arm64',
        '--provenance=mode=min',
        '--output',
        `type=oci,dest=${dest},tar=false,${options}`,
        ctx,
      ]);
      if (r.status !== 0) throw new Error(`buildx could not make the ${name} base: ${r.stderr.slice(-2000)}`);
    }
    const tmp = `${into}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    for (const name of Object.keys(outputs)) renameSync(path.join(work, name), path.join(tmp, name));
    renameSync(tmp, into);
  } finally {
    await dockerd.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

let made: Promise<string> | undefined;

/** The layouts' directory, made when no test file of this run made it yet. */
function layouts(): Promise<string> {
  made ??= (async () => {
    const shared = process.env.HOIST_TEST_SHARED ?? tmpdir();
    const dir = path.join(shared, 'buildx-bases');
    const lock = `${dir}.lock`;
    for (let i = 0; !existsSync(dir); i++) {
      try {
        mkdirSync(lock);
      } catch {
        // another test file is making them
        if (i > 2400) throw new Error(`${lock} held for 10 minutes: remove it`);
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      try {
        if (!existsSync(dir)) await make(dir);
      } finally {
        rmSync(lock, { recursive: true, force: true });
      }
    }
    return dir;
  })();
  return made;
}

/** Pushes a buildx-made base (its index, attestations and both platforms, digests kept) as `ref`. */
export async function pushBuildxBase(name: BuildxBase, ref: string, options: { creds?: string } = {}): Promise<void> {
  const dir = await layouts();
  run('skopeo', [
    'copy',
    '-q',
    '--all',
    '--preserve-digests',
    '--dest-tls-verify=false',
    ...(options.creds ? ['--dest-creds', options.creds] : []),
    `oci:${path.join(dir, name)}`,
    `docker://${ref}`,
  ]);
}
