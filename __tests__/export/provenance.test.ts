// SLSA provenance attestations (--provenance, the Action's provenance/attests), stored as BuildKit stores them
// (moby/buildkit docs/attestations/attestation-storage.md): an OCI index of the image (in OCI media types) and an
// attestation manifest (unknown/unknown, vnd.docker.reference.*) whose layer is an in-toto statement with a SLSA v0.2
// predicate. Read back from a real registry.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { writeLayer } from '../../src/layer/writer.js';
import { imagePackages } from '../../src/solver/solver.js';
import { ImageState } from '../../src/solver/state.js';
import { Store } from '../../src/store/store.js';
import path from 'node:path';
import { hoistBuildType, imagePurl, parseProvenance } from '../../src/export/provenance.js';
import { maxSbomPackages, osRelease, parseApkInstalled, parseDpkgStatus, parseSbom } from '../../src/export/sbom.js';
import { hoist } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';
import { buildx26 } from '../helpers/dockerd.js';

test('provenance values as buildx takes them; purls as BuildKit writes them', () => {
  expect(parseProvenance('')).toBeUndefined();
  expect(parseProvenance('false')).toBeUndefined();
  expect(parseProvenance('disabled=true')).toBeUndefined();
  expect(parseProvenance('true')).toEqual({ mode: 'min' });
  expect(parseProvenance('mode=max,builder-id=https://ci/run/1')).toEqual({
    mode: 'max',
    builderId: 'https://ci/run/1',
  });
  expect(parseProvenance('type=provenance,mode=min,inline-only=true')).toEqual({ mode: 'min' });
  expect(() => parseProvenance('mode=full')).toThrow(
    'provenance "mode=full": "mode=full" is not mode=min|max, builder-id=URL or disabled=true|false',
  );
  expect(imagePurl('alpine:3.17', 'linux/amd64')).toBe('pkg:docker/alpine@3.17?platform=linux%2Famd64');
  expect(imagePurl('docker.io/library/alpine', 'linux/arm64/v8')).toBe(
    'pkg:docker/alpine@latest?platform=linux%2Farm64%2Fv8',
  );
  expect(imagePurl('localhost:5000/acme/app:1', 'linux/amd64')).toBe(
    'pkg:docker/localhost%3A5000/acme/app@1?platform=linux%2Famd64',
  );
});

describeWith(['docker-registry', 'skopeo', 'busybox'])('a pushed image with its provenance', () => {
  let reg: TestRegistry;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-provenance-'));
  let base = '';
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
    base = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(base, path.join(work, 'seed'), work);
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const raw = <T>(ref: string) =>
    JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as T;
  const blob = async (repo: string, digest: string) =>
    JSON.parse(await (await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`)).text()) as Record<string, unknown>;
  type Index = {
    mediaType: string;
    manifests: {
      mediaType: string;
      digest: string;
      platform: { os: string; architecture: string };
      annotations?: Record<string, string>;
    }[];
  };
  type Manifest = {
    mediaType: string;
    config: { mediaType: string; digest: string };
    layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
  };

  let n = 0;
  function context(): string {
    const ctx = path.join(work, `ctx-${n++}`);
    mkdirSync(ctx);
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base}\nARG GREETING\nCOPY a /a\n`);
    writeFileSync(path.join(ctx, 'a'), 'a\n');
    writeFileSync(path.join(work, 'secret'), 'never-in-the-statement');
    return ctx;
  }

  test("mode=max: an OCI index of the image and its attestation; the statement names the image, its base, the args and the secret's id only", async () => {
    const ref = `${reg.host}/prov/app:1`;
    const r = await hoist([
      'build',
      '--store',
      path.join(work, 'store'),
      '--provenance',
      'mode=max,builder-id=https://ci.example/run/7',
      '--build-arg',
      'GREETING=hi',
      '--secret',
      `id=tok,src=${path.join(work, 'secret')}`,
      '-t',
      ref,
      '--push',
      context(),
    ]);
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
    const index = raw<Index>(ref);
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests).toHaveLength(2);
    const [img, att] = index.manifests;
    expect(img).toMatchObject({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      platform: { os: 'linux', architecture: 'amd64' },
    });
    expect(att).toMatchObject({
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.digest': img.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
    });
    const image = raw<Manifest>(`${reg.host}/prov/app@${img.digest}`);
    expect(image.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(image.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);
    const attestation = raw<Manifest>(`${reg.host}/prov/app@${att.digest}`);
    expect(attestation.layers).toEqual([
      expect.objectContaining({
        mediaType: 'application/vnd.in-toto+json',
        annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' },
      }),
    ]);
    const config = await blob('prov/app', attestation.config.digest);
    expect(config).toEqual({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: [attestation.layers[0].digest] },
    });
    const statement = (await blob('prov/app', attestation.layers[0].digest)) as {
      subject: unknown;
      predicate: Record<string, unknown>;
    };
    expect(statement).toMatchObject({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://slsa.dev/provenance/v0.2',
    });
    expect(statement.subject).toEqual([
      { name: imagePurl(ref, 'linux/amd64'), digest: { sha256: img.digest.slice(7) } },
    ]);
    const baseDigest = run('skopeo', [
      'inspect',
      '--tls-verify=false',
      '--format',
      '{{.Digest}}',
      `docker://${base}`,
    ]).trim();
    expect(statement.predicate).toMatchObject({
      builder: { id: 'https://ci.example/run/7' },
      buildType: hoistBuildType,
      materials: [{ uri: imagePurl(base, 'linux/amd64'), digest: { sha256: baseDigest.slice(7) } }],
      invocation: {
        configSource: { entryPoint: 'Dockerfile' },
        parameters: {
          frontend: 'dockerfile.v0',
          args: { 'build-arg:GREETING': 'hi' },
          secrets: [{ id: 'tok', optional: true }],
        },
      },
      metadata: {
        completeness: { parameters: true, environment: true, materials: false },
        'https://mobyproject.org/buildkit@v1#hermetic': true,
      },
    });
    expect(JSON.stringify(statement)).not.toContain('never-in-the-statement');
    // what skopeo (as docker) picks for this platform is the image, never the attestation
    expect(
      JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])) as {
        Architecture: string;
        Layers: string[];
      },
    ).toMatchObject({ Architecture: 'amd64', Layers: image.layers.map((l) => l.digest) });
    // and buildx 0.13 reads it as BuildKit's own provenance
    const buildx = buildx26();
    if (!buildx) process.stderr.write('NOTICE: docker 26 was not fetched: the provenance is not read back by buildx\n');
    else {
      const home = mkdtempSync(path.join(work, 'home-'));
      const seen = spawnSync(buildx, ['imagetools', 'inspect', ref, '--format', '{{json .Provenance.SLSA}}'], {
        encoding: 'utf8',
        env: { ...process.env, HOME: home },
      });
      expect(seen.stderr).toBe('');
      expect(JSON.parse(seen.stdout)).toMatchObject({
        buildType: hoistBuildType,
        builder: { id: 'https://ci.example/run/7' },
        invocation: { parameters: { frontend: 'dockerfile.v0' } },
      });
    }
  });

  test('--sbom with provenance: one attestation manifest, the SPDX statement first; the packages dpkg lists, as buildx reads them', async () => {
    const ctx = path.join(work, `ctx-${n++}`);
    mkdirSync(ctx);
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      `FROM ${base}\nCOPY status /var/lib/dpkg/status\nCOPY os-release /etc/os-release\n`,
    );
    writeFileSync(
      path.join(ctx, 'status'),
      'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n',
    );
    writeFileSync(path.join(ctx, 'os-release'), 'ID=debian\nVERSION_ID="12"\n');
    const ref = `${reg.host}/prov/sbom:1`;
    const r = await hoist([
      'build',
      '--store',
      path.join(work, 'store'),
      '--sbom',
      'true',
      '--attest',
      'type=provenance,mode=min',
      '-t',
      ref,
      '--push',
      ctx,
    ]);
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
    const att = raw<Index>(ref).manifests[1];
    const layers = raw<Manifest>(`${reg.host}/prov/sbom@${att.digest}`).layers;
    expect(layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])).toEqual([
      'https://spdx.dev/Document',
      'https://slsa.dev/provenance/v0.2',
    ]);
    const spdx = (await blob('prov/sbom', layers[0].digest)) as {
      predicate: {
        spdxVersion: string;
        packages: { name: string; versionInfo: string; externalRefs: { referenceLocator: string }[] }[];
      };
    };
    expect(spdx.predicate.spdxVersion).toBe('SPDX-2.3');
    expect(spdx.predicate.packages.map((p) => [p.name, p.versionInfo, p.externalRefs[0].referenceLocator])).toEqual([
      ['libc6', '2.36-9', 'pkg:deb/debian/libc6@2.36-9?arch=amd64&upstream=glibc&distro=debian-12'],
    ]);
    const buildx = buildx26();
    if (buildx) {
      const home = mkdtempSync(path.join(work, 'home-'));
      const seen = spawnSync(buildx, ['imagetools', 'inspect', ref, '--format', '{{json .SBOM.SPDX}}'], {
        encoding: 'utf8',
        env: { ...process.env, HOME: home },
      });
      expect(seen.stderr).toBe('');
      expect(JSON.parse(seen.stdout)).toMatchObject({ spdxVersion: 'SPDX-2.3', packages: [{ name: 'libc6' }] });
    }
  });

  test('legs pushed by digest with their provenance merge into one index: the images, then their attestations', async () => {
    const ctx = path.join(work, `ctx-${n++}`);
    mkdirSync(ctx);
    writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a /a\n');
    writeFileSync(path.join(ctx, 'a'), 'a\n');
    const legs: string[] = [];
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      const r = await hoist([
        'build',
        '--store',
        path.join(work, 'store'),
        '--platform',
        platform,
        '--provenance',
        'true',
        '-t',
        `${reg.host}/prov/legs`,
        '--push-by-digest',
        '-q',
        ctx,
      ]);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      legs.push(`${reg.host}/prov/legs@${r.out.trim()}`);
    }
    const m = await hoist([
      'merge',
      '--store',
      path.join(work, 'store'),
      '-t',
      `${reg.host}/prov/legs:merged`,
      ...legs,
    ]);
    expect(`${m.code}\n${m.err}`).toBe(`0\n${m.err}`);
    const index = raw<Index>(`${reg.host}/prov/legs:merged`);
    expect(index.manifests.map((d) => `${d.platform.os}/${d.platform.architecture}`)).toEqual([
      'linux/amd64',
      'linux/arm64',
      'unknown/unknown',
      'unknown/unknown',
    ]);
    expect(index.manifests.slice(2).map((d) => d.annotations?.['vnd.docker.reference.digest'])).toEqual(
      index.manifests.slice(0, 2).map((d) => d.digest),
    );
  });

  test('mode=min leaves the build args out; no --provenance (or false) pushes the plain manifest', async () => {
    const ref = `${reg.host}/prov/min:1`;
    const r = await hoist([
      'build',
      '--store',
      path.join(work, 'store'),
      '--provenance',
      'true',
      '--build-arg',
      'GREETING=hi',
      '-t',
      ref,
      '--push',
      context(),
    ]);
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
    const att = raw<Index>(ref).manifests[1];
    const statement = (await blob(
      'prov/min',
      raw<Manifest>(`${reg.host}/prov/min@${att.digest}`).layers[0].digest,
    )) as {
      predicate: {
        invocation: { parameters: Record<string, unknown> };
        metadata: { completeness: { parameters: boolean } };
      };
    };
    expect(statement.predicate.invocation.parameters.args).toEqual({});
    expect(statement.predicate.invocation.parameters.secrets).toBeUndefined();
    expect(statement.predicate.metadata.completeness.parameters).toBe(false);
    for (const off of [[], ['--provenance', 'false']]) {
      const plain = `${reg.host}/prov/plain:${off.length}`;
      const p = await hoist(['build', '--store', path.join(work, 'store'), ...off, '-t', plain, '--push', context()]);
      expect(p.code).toBe(0);
      expect(raw<{ mediaType: string }>(plain).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    }
  });
});

test('the package databases an SBOM reads: dpkg status (installed only), apk installed, os-release', () => {
  const dpkg =
    'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n multi-line\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n';
  expect(parseDpkgStatus(dpkg)).toEqual([
    { type: 'deb', name: 'libc6', version: '2.36-9+deb12u4', arch: 'amd64', source: 'glibc' },
    { type: 'deb', name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all' },
  ]);
  const apk =
    'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\nC:Q1def=\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\n';
  expect(parseApkInstalled(apk)).toEqual([
    { type: 'apk', name: 'musl', version: '1.2.4-r2', arch: 'x86_64', license: 'MIT', source: 'musl' },
    { type: 'apk', name: 'busybox', version: '1.36.1-r5', arch: 'x86_64', license: 'GPL-2.0-only' },
  ]);
  expect(osRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')).toEqual({
    id: 'debian',
    versionId: '12',
  });
  expect(parseSbom('true')).toBe(true);
  expect(parseSbom('disabled=true')).toBe(false);
  expect(() => parseSbom('generator=docker/scout-sbom-indexer:1')).toThrow("generator= names BuildKit's scanner image");
});

test('an SBOM reads the package databases from the layers, and not one larger than the cap', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-sbom-'));
  const store = await Store.open(path.join(dir, 'store'));
  try {
    const h = { mode: 0o644, uid: 0, gid: 0, mtime: 1000 };
    const status = Buffer.from(
      'Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13\n',
    );
    const apk = Buffer.from(`P:musl\nV:1.2.4-r2\nA:x86_64\n${'x'.repeat(4000)}\n`);
    const written = await writeLayer(store, [
      {
        header: { ...h, name: 'var/lib/dpkg/status.d/zlib1g', type: 'file', size: status.length },
        content: { bytes: status },
      },
      { header: { ...h, name: 'lib/apk/db/installed', type: 'file', size: apk.length }, content: { bytes: apk } },
    ]);
    const state = new ImageState(
      [
        {
          descriptor: { mediaType: written.mediaType, digest: written.digest, size: written.size },
          diffID: written.diffID,
          sources: [],
        },
      ],
      [],
    );
    const found = await imagePackages(state, store, 1024);
    expect(found.packages).toEqual([{ type: 'deb', name: 'zlib1g', version: '1:1.2.13', arch: 'amd64' }]);
    expect(found.notes).toEqual([
      expect.stringMatching(/^\/lib\/apk\/db\/installed \(\d+ bytes\) was not read: over 1024 bytes$/),
    ]);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an image that lists more packages than an SBOM takes (issue 34: a million made a 484 MB attestation): the first 50000, and a note', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-sbom-many-'));
  const store = await Store.open(path.join(dir, 'store'));
  try {
    const h = { mode: 0o644, uid: 0, gid: 0, mtime: 1000 };
    const many = 120_000;
    const status = Buffer.from(
      Array.from(
        { length: many },
        (_, i) => `Package: p${i}\nStatus: install ok installed\nVersion: 1.${i}\nDescription: filler\n long text\n`,
      ).join('\n'),
    );
    const written = await writeLayer(store, [
      { header: { ...h, name: 'var/lib/dpkg/status', type: 'file', size: status.length }, content: { bytes: status } },
    ]);
    const state = new ImageState(
      [
        {
          descriptor: { mediaType: written.mediaType, digest: written.digest, size: written.size },
          diffID: written.diffID,
          sources: [],
        },
      ],
      [],
    );
    const found = await imagePackages(state, store);
    expect(found.packages).toHaveLength(maxSbomPackages);
    expect(found.packages.at(-1)).toEqual({
      type: 'deb',
      name: `p${maxSbomPackages - 1}`,
      version: `1.${maxSbomPackages - 1}`,
    });
    expect(found.notes).toEqual([
      `the image lists more than ${maxSbomPackages} packages: the first ${maxSbomPackages} are in this SBOM`,
    ]);
    // the parsers stop at their limit (a stanza's continuation lines and keys an SBOM does not use are not kept)
    expect(parseDpkgStatus(status.toString(), 3).map((p) => p.name)).toEqual(['p0', 'p1', 'p2']);
    expect(parseApkInstalled('P:a\nV:1\n\nP:b\nV:2\n\nP:c\nV:3\n', 2).map((p) => p.name)).toEqual(['a', 'b']);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
