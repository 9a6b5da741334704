// Caches beside the store, as CI uses them: a fresh runner's empty store with --cache-from the previous build's
// cache (a registry cache manifest, inline records in the pushed image, a local directory). Every step is cached,
// the manifest digest is the same and no layer blob is downloaded when the push publishes what is already there
// (counted at a proxy in front of the registry; pushed somewhere new, each cache layer is read once); a
// one-file change reruns only the steps from that COPY on. A cache blob that does not match its digest, an
// unreachable cache: warnings, and the steps run. RUN --mount=type=cache directories travel in registry and local
// caches too: a fresh runner downloads nothing again. Real parts: docker-registry (behind the fault proxy), runc.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPackageServer } from '../helpers/package-server.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { type BuildMetadata, hoist, rerunSequence, writeCacheContext } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

type Meta = BuildMetadata;

(process.getuid?.() === 0 ? describeWith(['docker-registry', 'runc', 'busybox', 'getfattr']) : describe.skip)(
  'remote caches',
  () => {
    let reg: TestRegistry;
    let proxy: FaultProxy;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-cache-remote-'));
    let base = '';
    let n = 0;

    beforeAll(async () => {
      reg = await startRegistry('anonymous');
      proxy = await startFaultProxy(reg.host);
      await pushBusyboxBase(`${reg.host}/base/busybox:1`, path.join(work, 'base-store'), work);
      base = `${proxy.host}/base/busybox:1`;
    }, 60_000);
    afterAll(async () => {
      await proxy?.stop();
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    function context(files: Record<string, string> = {}, dockerfile?: string): string {
      return writeCacheContext(
        path.join(work, `ctx${n++}`),
        files,
        dockerfile ??
          `FROM ${base} AS build
COPY src/ /src/
RUN cat /src/a.txt /src/b.txt > /built.txt
FROM ${base}
COPY app.txt /app/app.txt
COPY --from=build /built.txt /app/
RUN echo done > /app/done
`,
      );
    }

    /** A build on an empty store of its own, as on a fresh runner. */
    async function fresh(ctx: string, flags: string[]): Promise<{ meta: Meta; err: string; code: number }> {
      const meta = path.join(work, `meta${n++}.json`);
      // (what was pushed is read back from the registry itself: the proxy counts only what hoist asked for)
      const r = await hoist(
        [
          'build',
          '--store',
          path.join(work, `store${n++}`),
          '--progress',
          'plain',
          '--metadata-file',
          meta,
          ...flags,
          ctx,
        ],
        { readBack: (ref) => ref.replace(proxy.host, reg.host) },
      );
      if (r.code !== 0) return { meta: {} as Meta, err: r.err, code: r.code };
      return { meta: JSON.parse(readFileSync(meta, 'utf8')) as Meta, err: r.err, code: r.code };
    }
    const ops = (m: Meta) => m['hoist.steps'].filter((s) => /^(COPY|RUN)/.test(s.instruction));
    const ran = (m: Meta) =>
      ops(m)
        .filter((s) => !s.cached)
        .map((s) => `${s.stage} ${s.instruction}`);
    /** GETs of layer blobs (not configs: those are the small blobs every build reads) seen by the proxy since `from`. */
    // A layer named by reference is checked by its first bytes (a ranged GET of 6): no download.
    const layerGets = (from: number, layers: readonly string[]) =>
      proxy.log
        .slice(from)
        .filter(
          (l) => l.method === 'GET' && l.range !== 'bytes=0-5' && layers.some((d) => l.path.endsWith(`/blobs/${d}`)),
        );
    async function imageLayers(ref: string): Promise<string[]> {
      const [, repo, tag] = /^[^/]+\/(.+):([^:]+)$/.exec(ref) as RegExpExecArray;
      const res = await fetch(`http://${reg.host}/v2/${repo}/manifests/${tag}`, {
        headers: {
          accept: 'application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json',
        },
      });
      const m = (await res.json()) as { layers: { digest: string }[] };
      return m.layers.map((l) => l.digest);
    }

    test.each([
      [
        'registry',
        (tag: string) => [`--cache-to`, `type=registry,ref=${proxy.host}/cache/app:${tag},mode=max`],
        (tag: string) => [`--cache-from`, `type=registry,ref=${proxy.host}/cache/app:${tag}`],
      ],
      [
        'inline',
        () => ['--cache-to', 'type=inline'],
        (tag: string) => ['--cache-from', `${proxy.host}/app:${tag}`, '--cache-to', 'type=inline'],
      ],
      [
        'local',
        (tag: string) => ['--cache-to', `type=local,dest=${path.join(work, `local-${tag}`)},mode=max`],
        (tag: string) => ['--cache-from', `type=local,src=${path.join(work, `local-${tag}`)}`],
      ],
    ])(
      "%s: an empty store with the previous build's cache runs no step, gives the same digest and downloads no layer",
      async (kind, to, from) => {
        const ctx = context();
        const tag = `${kind}-1`;
        const first = await fresh(ctx, ['-t', `${proxy.host}/app:${tag}`, '--push', ...to(tag)]);
        expect(first.err).not.toMatch(/warning/);
        expect(first.code).toBe(0);
        expect(ran(first.meta)).toHaveLength(5);
        const layers = await imageLayers(`${reg.host}/app:${tag}`);
        // The same push again (the tag already publishes this manifest, so the records' diffIDs are what it says):
        // nothing of a layer is downloaded.
        const before = proxy.log.length;
        const republished = await fresh(ctx, ['-t', `${proxy.host}/app:${tag}`, '--push', ...from(tag)]);
        expect(republished.code).toBe(0);
        expect(republished.err).not.toMatch(/warning/);
        expect(ran(republished.meta)).toEqual([]);
        expect(ops(republished.meta).every((s) => s.source === (kind === 'inline' ? 'inline' : kind))).toBe(true);
        expect(republished.meta['containerimage.digest']).toBe(first.meta['containerimage.digest']);
        expect(layerGets(before, layers)).toEqual([]);
        expect(republished.meta['hoist.cache'].downloadedBytes).toBe(0);
        // Pushed to another repository of the same registry: the layers are mounted from where the cache has them, and
        // each cache layer is read once first (a fresh store has verified no (digest, diffID) pair of the cache's, and
        // the manifest is new there: issue 34), never uploaded.
        const beforeSecond = proxy.log.length;
        const second = await fresh(ctx, ['-t', `${proxy.host}/elsewhere/app:${tag}`, '--push', ...from(tag)]);
        expect(second.code).toBe(0);
        expect(second.err).not.toMatch(/warning/);
        expect(ran(second.meta)).toEqual([]);
        expect(second.meta['containerimage.digest']).toBe(first.meta['containerimage.digest']);
        const read = layerGets(beforeSecond, layers).map((l) => l.path);
        expect(read.filter((g, i) => read.indexOf(g) !== i)).toEqual([]);
        const pushed = /pushed .* \((\d+) blobs uploaded, (\d+) mounted/.exec(second.err);
        // Only the config is new there (a local cache's layers are on this machine: they are uploaded).
        if (kind !== 'local') expect(Number(pushed?.[1])).toBeLessThanOrEqual(1);
        if (kind !== 'local') expect(Number(pushed?.[2])).toBeGreaterThanOrEqual(3);

        // One file of the build stage changed: its COPY and what follows it run; the other stage's first COPY does not.
        const changed = context({ 'src/a.txt': 'a, changed\n' });
        const beforeThird = proxy.log.length;
        const third = await fresh(changed, ['-t', `${proxy.host}/app:${tag}-changed`, '--push', ...from(tag)]);
        expect(third.code).toBe(0);
        // Each layer is downloaded once: the COPY's index of the base waits for the RUN's unpacking of it (which writes
        // the index in the same pass) instead of reading the layer on its own.
        const gets = proxy.log
          .slice(beforeThird)
          .filter((l) => l.method === 'GET' && l.range !== 'bytes=0-5' && /\/blobs\/sha256:/.test(l.path))
          .map((l) => l.path);
        expect(gets.filter((g, i) => gets.indexOf(g) !== i)).toEqual([]);
        expect(ran(third.meta).sort()).toEqual(
          [
            '1 COPY --from=build /built.txt /app/',
            '1 RUN echo done > /app/done',
            'build COPY src/ /src/',
            'build RUN cat /src/a.txt /src/b.txt > /built.txt',
          ].sort(),
        );
        expect(ops(third.meta).find((s) => s.instruction.startsWith('COPY app.txt'))?.cached).toBe(true);
        if (kind !== 'registry') return;
        // Read from and written to the same ref with nothing changed: the cache manifest the build would push is the one
        // it read, so nothing is sent (no blob, no manifest); with a change it is pushed.
        const beforeSame = proxy.log.length;
        const same = await fresh(ctx, ['-t', `${proxy.host}/app:${tag}`, '--push', ...from(tag), ...to(tag)]);
        expect(same.code).toBe(0);
        expect(same.err).toMatch(/unchanged: the registry holds this cache already/);
        expect(
          proxy.log
            .slice(beforeSame)
            .filter((l) => l.method !== 'GET' && l.method !== 'HEAD' && l.path.includes('/cache/app/')),
        ).toEqual([]);
        const again = await fresh(changed, ['-t', `${proxy.host}/app:${tag}`, '--push', ...from(tag), ...to(tag)]);
        expect(again.code).toBe(0);
        expect(again.err).not.toMatch(/unchanged: the registry holds/);
        expect(again.err).toMatch(/cache exported to registry .*cache\/app.*blobs uploaded/);
      },
      120_000,
    );

    test('a cache blob that does not match its digest: a warning, and the step that gave it runs', async () => {
      const ctx = context({ 'app.txt': 'app for corruption\n' });
      const first = await fresh(ctx, ['--cache-to', `type=registry,ref=${proxy.host}/cache/app:corrupt,mode=max`]);
      expect(first.code).toBe(0);
      const cacheLayers = await imageLayers(`${reg.host}/cache/app:corrupt`);
      // Every layer of the cache comes back corrupted once.
      for (const d of cacheLayers)
        proxy.rules.push({
          match: (req) => req.method === 'GET' && (req.url ?? '').endsWith(`/blobs/${d}`),
          fault: 'corrupt-body',
          times: 1,
        });
      const second = await fresh(ctx, [
        '--cache-from',
        `type=registry,ref=${proxy.host}/cache/app:corrupt`,
        '-o',
        `type=docker,dest=${path.join(work, 'corrupt.tar')}`,
      ]);
      expect(second.code).toBe(0);
      expect(second.err).toMatch(
        /warning: cache registry .*cache\/app:corrupt: blob sha256:[0-9a-f]{64}: .*digest.*; the steps it would have given run again/,
      );
      expect(ran(second.meta).length).toBeGreaterThan(0);
    }, 120_000);

    test('a cache that cannot be read is a warning, and the build runs its steps', async () => {
      const ctx = context({ 'app.txt': 'app without a cache\n' });
      const r = await fresh(ctx, [
        '--cache-from',
        'type=registry,ref=127.0.0.1:1/nothing/here:x',
        '--cache-from',
        `${proxy.host}/never/pushed:x`,
        '--cache-from',
        `type=local,src=${path.join(work, 'no-such-dir')}`,
      ]);
      expect(r.code).toBe(0);
      expect(r.err.match(/warning: cache .* cannot be read, building without it/g)).toHaveLength(3);
      expect(ran(r.meta)).toHaveLength(5);
    }, 60_000);

    test.each([
      ['registry', (tag: string) => `type=registry,ref=${proxy.host}/cache/mounts:${tag}`],
      ['local', (tag: string) => `type=local,${'%'}=${path.join(work, `mounts-${tag}`)}`],
    ])(
      '%s: a cache mount is kept in the cache; a fresh runner downloads nothing again; an unchanged mount is carried by reference; a corrupt one starts empty',
      async (kind, spec) => {
        const pkgs = await startPackageServer();
        const to = (tag: string) => ['--cache-to', `${spec(tag).replace('%', 'dest')},mode=max`];
        const from = (tag: string) => ['--cache-from', spec(tag).replace('%', 'src')];
        const dockerfile = `FROM ${base}
COPY app.txt /app.txt
RUN --mount=type=cache,id=downloads,target=/cache sh -c 'test -f /cache/pkg || wget -q -O /cache/pkg ${pkgs.url}/pkg; mkdir -p /cache/d && ln -sf pkg /cache/d/link; cp /cache/pkg /pkg'
`;
        try {
          const first = await fresh(context({ 'app.txt': 'one\n' }, dockerfile), to('1'));
          expect(first.code).toBe(0);
          expect(pkgs.requests).toBe(1);
          expect(first.err).toMatch(/cache exported to .*: 2 records \(.*, cache mount downloads saved\)/);
          // A changed input reruns the RUN on a fresh store: the cache comes back from the cache, nothing is downloaded;
          // unchanged, it is written by reference to the blob that is there (not packed again).
          const second = await fresh(context({ 'app.txt': 'two\n' }, dockerfile), [...from('1'), ...to('2')]);
          expect(second.code).toBe(0);
          expect(ran(second.meta)).toEqual([
            expect.stringMatching(/COPY app.txt/),
            expect.stringMatching(/RUN --mount=type=cache/),
          ]);
          expect(pkgs.requests).toBe(1);
          expect(second.err).not.toMatch(/warning/);
          expect(second.err).not.toMatch(/cache mount downloads saved/);
          // ...and the new cache holds it: a third fresh runner reading only that one downloads nothing either.
          const third = await fresh(context({ 'app.txt': 'three\n' }, dockerfile), from('2'));
          expect(third.code).toBe(0);
          expect(pkgs.requests).toBe(1);
          if (kind === 'registry') {
            // A mount blob that does not match its digest: a warning, the mount starts empty, the RUN downloads again.
            const mountBlob = (await imageLayers(`${reg.host}/cache/mounts:2`)).at(-1) as string;
            proxy.rules.push({
              match: (req) => req.method === 'GET' && (req.url ?? '').endsWith(`/blobs/${mountBlob}`),
              fault: 'corrupt-body',
              times: 1,
            });
            const fourth = await fresh(context({ 'app.txt': 'four\n' }, dockerfile), from('2'));
            expect(fourth.code).toBe(0);
            expect(fourth.err).toMatch(
              /warning: cache registry .*cache\/mounts:2: cache mount downloads could not be restored, it starts empty: .*digest/,
            );
            expect(pkgs.requests).toBe(2);
          }
        } finally {
          await pkgs.stop();
        }
      },
      120_000,
    );

    test.each(['registry', 'local'])(
      '%s: a rerun with nothing changed leaves the cache as good as it found it (the next change reruns what it would have)',
      async (kind) => {
        const cached = (name: string) =>
          kind === 'registry'
            ? [
                '--cache-from',
                `type=registry,ref=${proxy.host}/cache/rerun:${name}`,
                '--cache-to',
                `type=registry,ref=${proxy.host}/cache/rerun:${name},mode=max`,
              ]
            : [
                '--cache-from',
                `type=local,src=${path.join(work, `rerun-${name}`)}`,
                '--cache-to',
                `type=local,dest=${path.join(work, `rerun-${name}`)},mode=max`,
              ];
        const { first, direct, rerun, after } = await rerunSequence(base, context, (ctx, name) =>
          fresh(ctx, cached(name)),
        );
        expect(first.code).toBe(0);
        expect(ran(rerun.meta)).toEqual([]);
        // docker reruns the changed COPY, the RUN after it and the COPY --from whose files changed
        expect(ran(direct.meta)).toEqual([
          'build COPY src/ /src/',
          expect.stringMatching(/^build RUN mkdir/),
          '1 COPY --from=build /out /app',
        ]);
        expect(ran(after.meta)).toEqual(ran(direct.meta));
      },
      120_000,
    );
  },
);
