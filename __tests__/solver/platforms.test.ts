// Several platforms in one build, as release workflows build linux/amd64 and linux/arm64: one solve per platform,
// the base image's manifest for each, TARGET* args per platform, one index pushed; a foreign platform's RUN under
// binfmt_misc emulation (Debian's qemu-user-static, registered by hoist with --emulate), and a clear error at the
// line when there is none. Real parts: docker-registry, runc, qemu-user-static, skopeo.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hoist } from '../helpers/hoist.js';
import { hoistChild } from '../helpers/hostile.js';
import { arm64Busybox, pushBusyboxIndex } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

const canEmulate =
  process.getuid?.() === 0 && existsSync(arm64Busybox) && existsSync('/usr/lib/binfmt.d/qemu-aarch64.conf');
if (!canEmulate)
  process.stderr.write('NOTICE: no arm64 busybox or qemu-user-static: the multi-platform tests are skipped\n');

(canEmulate ? describeWith(['docker-registry', 'runc', 'busybox', 'skopeo']) : describe.skip)(
  'several platforms in one build',
  () => {
    let reg: TestRegistry;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-platforms-'));
    const store = path.join(work, 'store');
    let base = '';
    let n = 0;
    beforeAll(async () => {
      reg = await startRegistry('anonymous');
      base = `${reg.host}/base/busybox:multi`;
      await pushBusyboxIndex(base, store, work, ['sh', 'echo', 'uname', 'cat', 'test', 'true']);
    }, 120_000);
    afterAll(async () => {
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    const context = (dockerfile: string, files: Record<string, string> = {}) => {
      const dir = path.join(work, `ctx${n++}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
      for (const [k, v] of Object.entries(files)) writeFileSync(path.join(dir, k), v);
      return dir;
    };
    const registered = '/proc/sys/fs/binfmt_misc/qemu-aarch64';

    test('a foreign RUN without an emulator is a clear error at its line, saying how to get one', async () => {
      if (existsSync(registered)) writeFileSync(registered, '-1'); // as a machine that never had it
      const r = await hoist([
        'build',
        '--store',
        store,
        '--progress',
        'plain',
        '--platform',
        'linux/arm64',
        context(`FROM ${base}\nRUN uname -m\n`),
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /Dockerfile:2: RUN for linux\/arm64 needs emulation on this linux\/amd64 machine, and binfmt_misc has no qemu-aarch64 handler.*pass --emulate/,
      );
    }, 60_000);

    test('--platform linux/amd64,linux/arm64: one index with both, each built as its platform, arm64 RUN under emulation', async () => {
      const tag = `${reg.host}/app/multi:1`;
      const out = path.join(work, 'out');
      const ctx = context(
        `FROM ${base}\nARG TARGETPLATFORM\nARG BUILDPLATFORM\nRUN uname -m > /arch && echo "$TARGETPLATFORM from $BUILDPLATFORM" > /target\nCOPY a.txt /a.txt\n`,
        { 'a.txt': 'same for both\n' },
      );
      const r = await hoist([
        'build',
        '--store',
        store,
        '--progress',
        'plain',
        '--platform',
        'linux/amd64,linux/arm64',
        '--emulate',
        '-t',
        tag,
        '--push',
        '-o',
        `type=local,dest=${out}`,
        ctx,
      ]);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      // BuildKit's step names with several platforms; the emulated step says through what
      expect(r.err).toMatch(/\[linux\/arm64 2\/3\] RUN uname -m/);
      expect(r.err).toMatch(/\(linux\/arm64 emulated through \/usr\/libexec\/qemu-binfmt\/aarch64-binfmt-P\)/);
      const index = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${tag}`])) as {
        mediaType: string;
        manifests: { digest: string; platform: { architecture: string; os: string } }[];
      };
      expect(index.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
      expect(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual([
        'linux/amd64',
        'linux/arm64',
      ]);
      for (const [arch, uname] of [
        ['amd64', 'x86_64'],
        ['arm64', 'aarch64'],
      ]) {
        const config = JSON.parse(
          run('skopeo', ['inspect', '--tls-verify=false', '--override-arch', arch, '--config', `docker://${tag}`]),
        ) as { architecture: string };
        expect(config.architecture).toBe(arch);
        expect(readFileSync(path.join(out, `linux_${arch}`, 'arch'), 'utf8')).toBe(`${uname}\n`);
        expect(readFileSync(path.join(out, `linux_${arch}`, 'target'), 'utf8')).toBe(
          `linux/${arch} from linux/amd64\n`,
        );
        expect(readFileSync(path.join(out, `linux_${arch}`, 'a.txt'), 'utf8')).toBe('same for both\n');
      }
    }, 180_000);

    test('with several platforms, a docker archive is refused before anything is built', async () => {
      const r = await hoist([
        'build',
        '--store',
        store,
        '--platform',
        'linux/amd64,linux/arm64',
        '-o',
        `type=docker,dest=${path.join(work, 'x.tar')}`,
        context(`FROM ${base}\n`),
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/--output type=docker holds one platform; with several \(linux\/amd64, linux\/arm64\)/);
    });

    test('matrix legs: each platform pushed by digest in a process of its own, then hoist merge writes one index of both (blobs found or mounted, none uploaded)', async () => {
      const repo = `${reg.host}/app/legs`;
      const ctx = context(`FROM ${base}\nRUN uname -m > /arch\n`);
      const digests: string[] = [];
      for (const platform of ['linux/amd64', 'linux/arm64']) {
        const meta = path.join(work, `meta${n++}.json`);
        // buildx's spelling on one leg, the flag (with a tag, which is not pushed) on the other
        const push =
          platform === 'linux/amd64'
            ? ['--output', `type=image,name=${repo},push-by-digest=true,name-canonical=true,push=true`]
            : ['-t', `${repo}:not-pushed`, '--push-by-digest'];
        const r = await hoistChild([
          'build',
          '--store',
          path.join(work, `leg-store${n++}`),
          '--progress',
          'plain',
          '--platform',
          platform,
          '--emulate',
          ...push,
          '--metadata-file',
          meta,
          ctx,
        ]);
        expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
        expect(r.err).toMatch(new RegExp(`^pushed ${repo}@sha256:[0-9a-f]{64} `, 'm'));
        digests.push((JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest']);
        expect(r.out).toBe(`${digests[digests.length - 1]}\n`);
      }
      // by digest: no tag in the repository yet
      const listed = await fetch(`http://${reg.host}/v2/app/legs/tags/list`);
      expect(listed.status === 404 || ((await listed.json()) as { tags: string[] | null }).tags === null).toBe(true);
      const merged = await hoistChild([
        'merge',
        '-t',
        `${repo}:1.0`,
        '-t',
        `${reg.host}/app/released:latest`,
        ...digests.map((d) => `${repo}@${d}`),
      ]);
      expect(`${merged.code}\n${merged.err}`).toBe(`0\n${merged.err}`);
      expect(merged.err).toMatch(/merging linux\/amd64, linux\/arm64/);
      expect(merged.out).toMatch(/blobs: 0 uploaded, \d+ mounted, \d+ already there/);
      for (const tag of [`${repo}:1.0`, `${reg.host}/app/released:latest`]) {
        const index = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${tag}`])) as {
          manifests: { digest: string; platform: { architecture: string } }[];
        };
        expect(index.manifests.map((m) => [m.platform.architecture, m.digest])).toEqual([
          ['amd64', digests[0]],
          ['arm64', digests[1]],
        ]);
      }
      // a source that is not there, and no tag to push to: clear errors
      expect((await hoistChild(['merge', `${repo}@sha256:${'0'.repeat(64)}`])).err).toMatch(
        /usage: hoist merge -t NAME\[:TAG\] SOURCE/,
      );
      const missing = await hoistChild(['merge', '-t', `${repo}:x`, `${repo}@sha256:${'0'.repeat(64)}`]);
      expect(missing.code).toBe(1);
      expect(missing.err).toMatch(/manifest .*legs@sha256:0{64}.*: 404/);
    }, 240_000);

    test('a stage FROM --platform=$BUILDPLATFORM, and a stage FROM scratch that only copies, are built once for both platforms', async () => {
      const ctx = context(
        `FROM --platform=$BUILDPLATFORM ${base} AS build\nCOPY a.txt /a.txt\nRUN cat /a.txt /a.txt > /built\n` +
          `FROM scratch AS assets\nCOPY a.txt /assets/a.txt\n` +
          `FROM ${base}\nARG TARGETARCH\nCOPY --from=build /built /built\nCOPY --from=assets /assets /assets\nRUN uname -m > /arch\n`,
        { 'a.txt': 'a\n' },
      );
      const meta = path.join(work, `meta${n++}.json`);
      const r = await hoist([
        'build',
        '--store',
        path.join(work, `once-store${n++}`),
        '--progress',
        'plain',
        '--platform',
        'linux/amd64,linux/arm64',
        '--emulate',
        '--metadata-file',
        meta,
        ctx,
      ]);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      const steps = (
        JSON.parse(readFileSync(meta, 'utf8')) as {
          'hoist.steps': { platform: string; stage: string | number; instruction: string; cached: boolean }[];
        }
      )['hoist.steps'];
      const ran = (stage: string) =>
        steps
          .filter((st) => st.stage === stage && /^(COPY|RUN)/.test(st.instruction) && !st.cached)
          .map((st) => st.instruction);
      // run for the first platform only; the second found them in the store
      expect(ran('build')).toEqual(['COPY a.txt /a.txt', 'RUN cat /a.txt /a.txt > /built']);
      expect(ran('assets')).toEqual(['COPY a.txt /assets/a.txt']);
      expect(steps.filter((st) => st.stage === 'assets').map((st) => `${st.platform} ${st.cached}`)).toEqual([
        'linux/amd64 false',
        'linux/arm64 true',
      ]);
      // the final stage ran for each (its RUN twice: amd64 and, emulated, arm64)
      expect(steps.filter((st) => st.instruction === 'RUN uname -m > /arch' && !st.cached)).toHaveLength(2);
      expect(r.err).toMatch(/\[linux\/amd64->arm64 build 2\/3\] COPY a\.txt/);
    }, 180_000);

    test('a RUN in a stage FROM scratch runs for each platform (its key names the platform)', async () => {
      // a static busybox copied from the context: the same files on both platforms, until the RUN
      const ctx = context(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /m"]\n',
      );
      writeFileSync(path.join(ctx, 'busybox'), readFileSync(arm64Busybox), { mode: 0o755 });
      const meta = path.join(work, `meta${n++}.json`);
      const dest = path.join(work, `out${n++}`);
      const r = await hoist([
        'build',
        '--store',
        path.join(work, `scratch-store${n++}`),
        '--progress',
        'plain',
        '--platform',
        'linux/arm64,linux/amd64',
        '--emulate',
        '--metadata-file',
        meta,
        '--output',
        `type=local,dest=${dest}`,
        ctx,
      ]);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      const steps = (
        JSON.parse(readFileSync(meta, 'utf8')) as { 'hoist.steps': { instruction: string; cached: boolean }[] }
      )['hoist.steps'];
      expect(steps.filter((st) => st.instruction.startsWith('COPY')).map((st) => st.cached)).toEqual([false, true]);
      expect(steps.filter((st) => st.instruction.startsWith('RUN')).map((st) => st.cached)).toEqual([false, false]);
      // an arm64 binary: emulated in both (the kernel's binfmt handler runs it whatever the stage's platform)
      expect(readFileSync(path.join(dest, 'linux_arm64', 'm'), 'utf8')).toBe('aarch64\n');
      expect(readFileSync(path.join(dest, 'linux_amd64', 'm'), 'utf8')).toBe('aarch64\n');
    }, 180_000);
  },
);
