// Every manifest hoist writes names its blobs in one family's media types, on bases published the way registries
// serve them today: buildx-made OCI indexes with attestation manifests, gzip and zstd layers (helpers/buildx-bases.ts).
// An OCI base's gzip layer under hoist's Docker manifest is Docker's gzip type (same bytes, same digest, as buildx
// writes it); a zstd layer makes the manifest OCI. Everything pushed is read back by skopeo, every platform copied.
// Real parts: docker-registry, runc, skopeo, qemu-user-static, docker 26.1's buildx (the bases and the judge).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { canMakeBuildxBases, pushBuildxBase } from '../helpers/buildx-bases.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { hoist } from '../helpers/hoist.js';
import { readBack, type RawManifest } from '../helpers/readback.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

const dockerTypes = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  list: 'application/vnd.docker.distribution.manifest.list.v2+json',
  gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
};
const ociTypes = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  config: 'application/vnd.oci.image.config.v1+json',
};
const canEmulate = existsSync('/usr/lib/binfmt.d/qemu-aarch64.conf');

(canMakeBuildxBases() ? describeWith(['docker-registry', 'runc', 'skopeo', 'zstd']) : describe.skip)(
  'media types on buildx-made bases (OCI, attestations, zstd)',
  () => {
    let reg: TestRegistry;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-mediatypes-'));
    let n = 0;
    const bases = { oci: '', zstd: '' };
    /** each base's platforms' manifests, as buildx wrote them */
    const baseImages: Record<string, Record<string, RawManifest>> = {};
    beforeAll(async () => {
      reg = await startRegistry('anonymous');
      for (const b of ['oci', 'zstd'] as const) {
        bases[b] = `${reg.host}/base/${b}:1`;
        await pushBuildxBase(b, bases[b]);
        const back = await readBack(bases[b]);
        baseImages[b] = Object.fromEntries(back.images.map((i) => [i.platform as string, i.manifest]));
      }
    }, 600_000);
    afterAll(async () => {
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    const context = (dockerfile: string) => {
      const dir = path.join(work, `ctx${n++}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
      writeFileSync(path.join(dir, 'a.txt'), 'a\n');
      return dir;
    };
    const build = async (args: string[], dockerfile: string) => {
      const r = await hoist([
        'build',
        '--store',
        path.join(work, 'store'),
        '--progress',
        'plain',
        ...args,
        context(dockerfile),
      ]);
      if (r.code !== 0) throw new Error(`hoist build exited ${r.code}\n${r.err}`);
      return r;
    };

    test('the bases are what registries serve today: OCI indexes with attestation manifests, gzip and zstd layers', async () => {
      for (const b of ['oci', 'zstd'] as const) {
        const back = await readBack(bases[b]);
        expect(back.raw.mediaType).toBe(ociTypes.index);
        expect(back.attestations.length).toBe(2);
        expect(Object.keys(baseImages[b]).sort()).toEqual(['linux/amd64', 'linux/arm64']);
      }
      expect(baseImages.oci['linux/amd64'].layers?.[0].mediaType).toBe(ociTypes.gzip);
      expect(baseImages.zstd['linux/amd64'].layers?.[0].mediaType).toBe(ociTypes.zstd);
    });

    test("an OCI gzip base: a Docker manifest naming the base layer by Docker's type, same digest; skopeo copies it", async () => {
      const tag = `${reg.host}/out/on-oci:1`;
      const r = await build(['-t', tag, '--push'], `FROM ${bases.oci}\nRUN echo ran > /ran\nCOPY a.txt /a.txt\n`);
      const back = await readBack(tag);
      expect(back.raw.mediaType).toBe(dockerTypes.manifest);
      expect(back.raw.layers?.map((l) => l.mediaType)).toEqual([dockerTypes.gzip, dockerTypes.gzip, dockerTypes.gzip]);
      expect(back.raw.layers?.[0].digest).toBe(baseImages.oci['linux/amd64'].layers?.[0].digest);
      expect(r.out.trim()).toBe(
        run('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${tag}`]).trim(),
      );
    }, 120_000);

    test("a zstd base: the manifest is OCI (the zstd layer kept as it is, hoist's own layers OCI gzip); RUN reads the zstd layer", async () => {
      const tag = `${reg.host}/out/on-zstd:1`;
      await build(
        ['-t', tag, '--push'],
        `FROM ${bases.zstd}\nRUN test -x /bin/busybox && echo ran > /ran\nCOPY a.txt /a.txt\n`,
      );
      const back = await readBack(tag);
      expect(back.raw.mediaType).toBe(ociTypes.manifest);
      expect(back.raw.config?.mediaType).toBe(ociTypes.config);
      expect(back.raw.layers?.map((l) => l.mediaType)).toEqual([ociTypes.zstd, ociTypes.gzip, ociTypes.gzip]);
      expect(back.raw.layers?.[0].digest).toBe(baseImages.zstd['linux/amd64'].layers?.[0].digest);
    }, 120_000);

    test("oci-mediatypes=true asks for an OCI manifest on any base; type=oci is OCI by default, as BuildKit's oci exporter", async () => {
      const tag = `${reg.host}/out/asked-oci:1`;
      const layout = path.join(work, 'layout');
      await build(
        ['--output', `type=image,name=${tag},push=true,oci-mediatypes=true`, '-o', `type=oci,dest=${layout},tar=false`],
        `FROM ${bases.oci}\nCOPY a.txt /a.txt\n`,
      );
      const back = await readBack(tag);
      expect(back.raw.mediaType).toBe(ociTypes.manifest);
      expect(back.raw.layers?.map((l) => l.mediaType)).toEqual([ociTypes.gzip, ociTypes.gzip]);
      const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as RawManifest;
      expect(index.manifests?.[0].mediaType).toBe(ociTypes.manifest);
      expect(index.manifests?.[0].digest).toBe(
        run('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${tag}`]).trim(),
      );
      const dir = path.join(work, 'from-layout');
      run('skopeo', ['copy', '-q', `oci:${layout}`, `dir:${dir}`]);
      expect(existsSync(path.join(dir, 'manifest.json'))).toBe(true);
    }, 120_000);

    test("the registry cache's manifest and a provenance index are self-consistent too", async () => {
      const tag = `${reg.host}/out/attested:1`;
      const cache = `${reg.host}/out/cache:buildcache`;
      await build(
        ['-t', tag, '--push', '--provenance', 'mode=min', '--cache-to', `type=registry,ref=${cache},mode=max`],
        `FROM ${bases.oci}\nRUN echo cached > /c\n`,
      );
      const back = await readBack(tag);
      expect(back.raw.mediaType).toBe(ociTypes.index);
      expect(back.images.map((i) => i.manifest.mediaType)).toEqual([ociTypes.manifest]);
      expect(back.attestations.length).toBe(1);
      const cached = await readBack(cache);
      expect(cached.raw.mediaType).toBe(ociTypes.manifest);
      expect(cached.raw.layers?.every((l) => l.mediaType === ociTypes.gzip)).toBe(true);
    }, 120_000);

    (canEmulate ? test : test.skip)(
      "two platforms on each base (arm64 RUN emulated): every platform's manifest of one family, the index too",
      async () => {
        for (const b of ['oci', 'zstd'] as const) {
          const tag = `${reg.host}/out/multi-${b}:1`;
          await build(
            ['--platform', 'linux/amd64,linux/arm64', '--emulate', '-t', tag, '--push'],
            `FROM ${bases[b]}\nRUN uname -m > /arch\n`,
          );
          const back = await readBack(tag);
          expect(back.images.map((i) => i.platform)).toEqual(['linux/amd64', 'linux/arm64']);
          const want = b === 'oci' ? dockerTypes.manifest : ociTypes.manifest;
          expect(back.images.map((i) => i.manifest.mediaType)).toEqual([want, want]);
          expect(back.raw.mediaType).toBe(b === 'oci' ? dockerTypes.list : ociTypes.index);
        }
      },
      300_000,
    );

    test('merged legs of both families make an OCI index that skopeo reads per platform', async () => {
      const repo = `${reg.host}/out/legs`;
      const leg = async (base: string, platform: string) => {
        const dir = path.join(work, `meta${n++}.json`);
        await build(
          [
            '--platform',
            platform,
            '--output',
            `type=image,name=${repo},push-by-digest=true,name-canonical=true,push=true`,
            '--metadata-file',
            dir,
          ],
          `FROM ${base}\nCOPY a.txt /a.txt\n`,
        );
        return (JSON.parse(readFileSync(dir, 'utf8')) as Record<string, string>)['containerimage.digest'];
      };
      const amd64 = await leg(bases.oci, 'linux/amd64');
      const arm64 = await leg(bases.zstd, 'linux/arm64');
      const r = await hoist([
        'merge',
        '--store',
        path.join(work, 'store'),
        '-t',
        `${repo}:1`,
        `${repo}@${amd64}`,
        `${repo}@${arm64}`,
      ]);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      const back = await readBack(`${repo}:1`);
      expect(back.raw.mediaType).toBe(ociTypes.index);
      expect(back.images.map((i) => [i.platform, i.manifest.mediaType])).toEqual([
        ['linux/amd64', dockerTypes.manifest],
        ['linux/arm64', ociTypes.manifest],
      ]);
    }, 180_000);

    test('an index whose entry is an index cannot be merged: said clearly, nothing pushed', async () => {
      const client = new RegistryClient();
      try {
        const inner = await client.getManifest(parseReference(bases.oci));
        const nested = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: ociTypes.index,
            manifests: [{ mediaType: inner.mediaType, digest: inner.digest, size: inner.bytes.length }],
          }),
        );
        await client.putManifest(parseReference(bases.oci), 'nested', nested, ociTypes.index);
      } finally {
        await client.close();
      }
      const r = await hoist([
        'merge',
        '--store',
        path.join(work, 'store'),
        '-t',
        `${reg.host}/out/nested:1`,
        `${reg.host}/base/oci:nested`,
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /hoist merge: .*base\/oci:nested: its entry sha256:[0-9a-f]{64} is itself an index; name the images it lists \(or that index\) instead/,
      );
      expect(r.err).not.toMatch(/internal/);
    });

    describe("next to docker 26.1's buildx", () => {
      let dockerd: Dockerd;
      beforeAll(async () => {
        dockerd = await startDockerd();
      }, 120_000);
      afterAll(async () => {
        await dockerd?.stop();
      });

      test('the same Dockerfile on an OCI base: buildx names the base layer as hoist does', async () => {
        const dockerfile = `FROM ${bases.oci}\nCOPY a.txt /a.txt\n`;
        const theirs = `${reg.host}/out/buildx:1`;
        const r = dockerd.docker([
          'buildx',
          'build',
          '--provenance=false',
          '--platform',
          'linux/amd64',
          '-t',
          theirs,
          '--push',
          context(dockerfile),
        ]);
        expect(`${r.status}\n${r.stderr.slice(-2000)}`).toBe(`0\n${r.stderr.slice(-2000)}`);
        const ours = `${reg.host}/out/hoist:1`;
        await build(['-t', ours, '--push'], dockerfile);
        const [a, b] = [(await readBack(theirs)).raw, (await readBack(ours)).raw];
        expect(b.mediaType).toBe(a.mediaType);
        expect(b.layers?.map((l) => l.mediaType)).toEqual(a.layers?.map((l) => l.mediaType));
        expect(b.layers?.[0].digest).toBe(a.layers?.[0].digest);
      }, 180_000);
    });
  },
);
