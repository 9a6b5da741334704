// The local store as the build cache: a second build of an unchanged context runs no step and gives the same
// manifest digest; --no-cache and --no-cache-filter; the metadata file and the log say what was cached; prune
// removes the records. Real parts: docker-registry (the base image), runc.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BuildMetadata, hoist, hoistOk, hoistWithEnv } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

type Meta = BuildMetadata;

(process.getuid?.() === 0 ? describeWith(['docker-registry', 'runc', 'busybox', 'getfattr']) : describe.skip)(
  'the local build cache',
  () => {
    let reg: TestRegistry;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-cache-local-'));
    const store = path.join(work, 'store');
    const ctx = path.join(work, 'ctx');
    beforeAll(async () => {
      reg = await startRegistry('anonymous');
      const base = `${reg.host}/base/busybox:1`;
      await pushBusyboxBase(base, store, work);
      mkdirSync(path.join(ctx, 'src'), { recursive: true });
      writeFileSync(path.join(ctx, 'src', 'main.txt'), 'main\n');
      writeFileSync(
        path.join(ctx, 'Dockerfile'),
        `FROM ${base} AS build
WORKDIR /src
COPY src/ ./
RUN cat main.txt > /built.txt && date > /when.txt
FROM ${base}
COPY --from=build /built.txt /app/
RUN echo ok > /ok
`,
      );
    }, 60_000);
    afterAll(async () => {
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    let n = 0;
    async function build(extra: string[] = [], at = store): Promise<{ meta: Meta; err: string }> {
      const meta = path.join(work, `meta${n++}.json`);
      const r = await hoistOk(['build', '--store', at, '--progress', 'plain', '--metadata-file', meta, ...extra, ctx]);
      return { meta: JSON.parse(readFileSync(meta, 'utf8')) as Meta, err: r.err };
    }
    const ops = (m: Meta) => m['hoist.steps'].filter((s) => /^(COPY|RUN|WORKDIR)/.test(s.instruction));

    test('where the time went: hoist.profile in the metadata file, by phase and by step; --debug says it in the log', async () => {
      type Profile = {
        seconds: number;
        phases: { phase: string; seconds: number; spans: number; bytes?: number }[];
        steps: { step: string; phases: Record<string, number> }[];
      };
      const fresh = path.join(work, 'profile-store');
      const first = await build(['--debug'], fresh);
      const p = (first.meta as unknown as { 'hoist.profile': Profile })['hoist.profile'];
      const phase = (name: string) => p.phases.find((x) => x.phase === name);
      // an empty store: the base is pulled (download and unpacking in one pass), the steps run and make layers
      for (const name of ['start', 'resolve', 'pull', 'run']) expect(phase(name)?.seconds).toBeGreaterThan(0);
      // (a few small files: these may take less than the millisecond the report rounds to)
      for (const name of ['context', 'layer', 'compress']) expect(phase(name)?.seconds).toBeGreaterThanOrEqual(0);
      expect(phase('pull')?.bytes).toBeGreaterThan(100_000);
      expect(phase('run')?.spans).toBe(2);
      expect(p.seconds).toBeGreaterThanOrEqual(Math.max(...p.phases.map((x) => x.seconds)) - 0.01);
      const runStep = p.steps.find((s) => s.step.includes('RUN cat main.txt'));
      expect(runStep?.phases.run).toBeGreaterThan(0);
      expect(runStep?.phases.layer).toBeGreaterThan(0);
      expect(first.err).toMatch(/^profile: [\d.]+ s in all; phases/m);
      expect(first.err).toMatch(/^profile: {3}run +[\d.]+ s +2×$/m);
      // all cached: nothing runs, nothing is pulled; without --debug the log says nothing of it
      const second = await build([], fresh);
      const q = (second.meta as unknown as { 'hoist.profile': Profile })['hoist.profile'];
      expect(q.phases.map((x) => x.phase)).not.toContain('run');
      expect(q.phases.map((x) => x.phase)).not.toContain('pull');
      expect(second.err).not.toMatch(/^profile:/m);
    });

    test('a second build of an unchanged context runs no step and gives the same manifest digest', async () => {
      const first = await build();
      expect(ops(first.meta).every((s) => !s.cached)).toBe(true);
      expect(first.meta['hoist.cache']).toMatchObject({ hits: 0, misses: 5 });
      const second = await build();
      // The last stage's steps are hits, and its COPY --from too: the build stage it reads is not even looked at again.
      expect(ops(second.meta).map((s) => s.stage)).toEqual([1, 1]);
      expect(ops(second.meta).every((s) => s.cached && s.source === 'local')).toBe(true);
      expect(second.meta['hoist.cache']).toMatchObject({ hits: 2, misses: 0, downloadedBytes: 0 });
      expect(second.meta['containerimage.digest']).toBe(first.meta['containerimage.digest']);
      expect(second.err).toMatch(/#\d+ CACHED/);
      expect(second.err.trim().split('\n').at(-1)).toBe('cache: 2 of 2 steps cached, 0B downloaded, 0B uploaded');
    });

    test('--no-cache runs every step; --no-cache-filter the steps of the stages it names', async () => {
      const all = await build(['--no-cache']);
      expect(ops(all.meta).every((s) => !s.cached)).toBe(true);
      const filtered = await build(['--no-cache-filter', 'build']);
      const byStage = (stage: string | number) => ops(filtered.meta).filter((s) => s.stage === stage);
      expect(byStage('build').every((s) => !s.cached)).toBe(true);
      // The last stage's COPY --from reads a build stage that ran again: its content is the same file, so it stays.
      expect(byStage(1).every((s) => s.cached)).toBe(true);
    });

    test('SOURCE_DATE_EPOCH is part of every key: a build with it reuses nothing built without it, and the same epoch again reuses all', async () => {
      const epoch = async (value: string) => {
        const meta = path.join(work, `meta${n++}.json`);
        const r = await hoistWithEnv({ SOURCE_DATE_EPOCH: value }, [
          'build',
          '--store',
          store,
          '--progress',
          'plain',
          '--metadata-file',
          meta,
          ctx,
        ]);
        expect(r.code).toBe(0);
        return JSON.parse(readFileSync(meta, 'utf8')) as Meta;
      };
      await build();
      const first = await epoch('1000');
      expect(ops(first).every((s) => !s.cached)).toBe(true);
      const again = await epoch('1000');
      expect(ops(again).every((s) => s.cached)).toBe(true);
      expect(again['containerimage.digest']).toBe(first['containerimage.digest']);
      expect(ops(await epoch('2000')).every((s) => !s.cached)).toBe(true);
    });

    test('hoist prune removes the records: the next build runs its steps again', async () => {
      const pruned = await hoist(['prune', '--store', store]);
      expect(pruned.code).toBe(0);
      expect(pruned.out).toMatch(/Deleted [1-9]\d* cache records/);
      const again = await build();
      expect(ops(again.meta).every((s) => !s.cached)).toBe(true);
    });
  },
);
