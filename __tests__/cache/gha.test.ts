// The GitHub Actions cache as a layer cache, spoken by hoist itself against a local cache service (the Twirp and v1
// methods in front of Azurite, helpers/actions-cache.ts): a fresh runner's empty store reads the previous
// run's entries (every step cached, the same digest, no layer downloaded that the registry holds), a rebuild with
// nothing changed creates no entry and one with k new layers at most k + 1, scopes keep matrix legs apart, and
// every failure of the service (429, 409, a dropped connection, a corrupted entry, no service at all) leaves the
// build green with one warning. Real parts: docker-registry, runc, Azurite.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ActionsCacheService, startActionsCacheService } from '../helpers/actions-cache.js';
import { type BuildMetadata, hoistWithEnv, rerunSequence, writeCacheContext } from '../helpers/hoist.js';
import { startPackageServer } from '../helpers/package-server.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

type Meta = BuildMetadata;

(process.getuid?.() === 0 ? describeWith(['docker-registry', 'runc', 'busybox', 'getfattr', 'zstd']) : describe.skip)(
  'the Actions cache (type=gha)',
  () => {
    let reg: TestRegistry;
    let svc: ActionsCacheService;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-cache-gha-'));
    let base = '';
    let n = 0;
    const env = () => ({
      ...svc.env,
      RUNNER_TEMP: path.join(work, 'runner-temp'),
      GITHUB_WORKSPACE: path.join(work, 'workspace'),
    });

    beforeAll(async () => {
      mkdirSync(path.join(work, 'runner-temp'));
      mkdirSync(path.join(work, 'workspace'));
      delete process.env.GITHUB_SERVER_URL;
      reg = await startRegistry('anonymous');
      svc = await startActionsCacheService();
      await pushBusyboxBase(`${reg.host}/base/busybox:1`, path.join(work, 'base-store'), work);
      base = `${reg.host}/base/busybox:1`;
    }, 90_000);
    afterAll(async () => {
      await svc?.stop();
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
RUN cat /src/a.txt /src/b.txt > /built.txt && head -c 2000000 /dev/urandom > /big.bin
FROM ${base}
COPY app.txt /app/app.txt
COPY --from=build /built.txt /big.bin /app/
RUN echo done > /app/done
`,
      );
    }

    /** A build on an empty store of its own, as on a fresh runner, with the job's environment. */
    async function fresh(
      ctx: string,
      flags: string[],
      extraEnv: Record<string, string> = {},
    ): Promise<{ meta: Meta; err: string; code: number }> {
      const meta = path.join(work, `meta${n++}.json`);
      const r = await hoistWithEnv({ ...env(), ...extraEnv }, [
        'build',
        '--store',
        path.join(work, `store${n++}`),
        '--progress',
        'plain',
        '--metadata-file',
        meta,
        ...flags,
        ctx,
      ]);
      if (r.code !== 0) return { meta: {} as Meta, err: r.err, code: r.code };
      return { meta: JSON.parse(readFileSync(meta, 'utf8')) as Meta, err: r.err, code: r.code };
    }
    const ops = (m: Meta) => m['hoist.steps'].filter((s) => /^(COPY|RUN)/.test(s.instruction));
    const ran = (m: Meta) =>
      ops(m)
        .filter((s) => !s.cached)
        .map((s) => `${s.stage} ${s.instruction}`);
    const gha = (scope: string, mode = 'max') => [
      '--cache-from',
      `type=gha,scope=${scope}`,
      '--cache-to',
      `type=gha,scope=${scope},mode=${mode}`,
    ];

    test('a fresh runner reads the previous run: all cached, same digest, nothing downloaded the registry holds; no new entry', async () => {
      const ctx = context();
      const tag = `${reg.host}/app/one:1`;
      const first = await fresh(ctx, [...gha('one'), '-t', tag, '--push']);
      expect(first.err).not.toMatch(/warning/);
      expect(ran(first.meta)).toHaveLength(5);
      const created = svc.counts.creates;
      // the two layers with 2 MB of random bytes an entry each; the three small ones one pack; and the index
      expect(created).toBe(4);

      svc.resetCounts();
      const second = await fresh(ctx, [...gha('one'), '-t', tag, '--push']);
      expect(second.err).not.toMatch(/warning/);
      expect(ran(second.meta)).toEqual([]);
      expect(ops(second.meta).every((s) => s.source === 'gha')).toBe(true);
      expect(second.meta['containerimage.digest']).toBe(first.meta['containerimage.digest']);
      expect(svc.counts.downloads).toBe(1); // the index, and no layer: the registry has them all
      expect(svc.counts.creates).toBe(0);
      expect(second.err).toMatch(
        /cache exported to gha scope one: \d+ records \(0 entries created, 5 layers already there, index unchanged\)/,
      );

      // One source file changed: the steps from that COPY on run again; k new layers make at most k + 1 entries.
      svc.resetCounts();
      const changed = await fresh(context({ 'src/a.txt': 'A\n' }), [...gha('one'), '-t', tag, '--push']);
      expect(ran(changed.meta)).toEqual([
        'build COPY src/ /src/',
        'build RUN cat /src/a.txt /src/b.txt > /built.txt && head -c 2000000 /dev/urandom > /big.bin',
        '1 COPY --from=build /built.txt /big.bin /app/',
        '1 RUN echo done > /app/done',
      ]);
      const fresh4 = 4; // COPY src, RUN (big), COPY --from, RUN echo
      expect(svc.counts.creates).toBeLessThanOrEqual(fresh4 + 1);
      expect(svc.counts.creates).toBe(4); // the two big layers, one pack of the two small ones, the index
    }, 120_000);

    const warningsOf = (err: string) => err.split('\n').filter((l) => l.startsWith('warning:'));
    const noStack = (err: string) => expect(err).not.toMatch(/\n\s+at /);

    test('a 429 when creating: the build is green, one warning, and this build uploads nothing more; a 409 (another job wrote it meanwhile) is an entry there', async () => {
      svc.resetCounts();
      svc.faults.create = { status: 429, times: 1 };
      const r = await fresh(context({ 'app.txt': 'refused 429\n' }), [
        ...gha('refused-429'),
        '-t',
        `${reg.host}/app/refused:429`,
        '--push',
      ]);
      expect(r.code).toBe(0);
      noStack(r.err);
      expect(warningsOf(r.err)).toEqual([
        expect.stringMatching(
          /cache gha scope refused-429 could not be written: the Actions cache refused an entry, so this build stopped uploading/,
        ),
      ]);
      // The two big layers go up at once (one refused, the other may be under way); neither the pack nor the index
      // is tried after the refusal.
      expect(svc.counts.refused).toBe(1);
      expect(svc.counts.creates + svc.counts.refused).toBeLessThanOrEqual(2);
      svc.resetCounts();
      svc.faults.create = { status: 409, times: 1 };
      const there = await fresh(context({ 'app.txt': 'refused 409\n' }), [
        ...gha('refused-409'),
        '-t',
        `${reg.host}/app/refused:409`,
        '--push',
      ]);
      expect(there.code).toBe(0);
      expect(warningsOf(there.err)).toEqual([]);
      expect(svc.counts.refused).toBe(1);
      expect(svc.counts.creates).toBe(3);
    }, 120_000);

    test('a dropped connection, an unreachable service, no service at all: green, one warning each', async () => {
      const ctx = context({ 'app.txt': 'faults\n' });
      // One dropped connection is tried again; one that keeps dropping is a warning.
      svc.faults.drop = { match: 'GetCacheEntryDownloadURL', times: 1 };
      const once = await fresh(ctx, [...gha('faults'), '-t', `${reg.host}/app/faults:0`, '--push']);
      expect(once.code).toBe(0);
      expect(warningsOf(once.err)).toEqual([]);
      svc.faults.drop = { match: 'GetCacheEntryDownloadURL', times: 3 };
      const dropped = await fresh(ctx, [...gha('faults'), '-t', `${reg.host}/app/faults:1`, '--push']);
      expect(dropped.code).toBe(0);
      noStack(dropped.err);
      expect(warningsOf(dropped.err)).toEqual([
        expect.stringMatching(/cache gha scope faults cannot be read, building without it: /),
      ]);

      const closed = await freePort();
      const unreachable = await fresh(ctx, [...gha('faults'), '-t', `${reg.host}/app/faults:2`, '--push'], {
        ACTIONS_RESULTS_URL: `http://127.0.0.1:${closed}/`,
      });
      expect(unreachable.code).toBe(0);
      noStack(unreachable.err);
      // said at once, not after retries
      expect(warningsOf(unreachable.err)).toEqual([
        expect.stringMatching(
          /cache gha scope faults cannot be read, building without it: the Actions cache service at http:\/\/127\.0\.0\.1:\d+ cannot be reached \(ECONNREFUSED\)/,
        ),
      ]);
      expect(unreachable.err).toMatch(
        /cache exported to gha scope faults: \d+ records \(not written: the cache could not be read\)/,
      );
      const writeOnly = await fresh(
        ctx,
        ['--cache-to', 'type=gha,scope=faults', '-t', `${reg.host}/app/faults:2`, '--push'],
        { ACTIONS_RESULTS_URL: `http://127.0.0.1:${closed}/` },
      );
      expect(writeOnly.code).toBe(0);
      expect(warningsOf(writeOnly.err)).toEqual([
        expect.stringMatching(
          /cache gha scope faults could not be written: the Actions cache service at .* cannot be reached \(ECONNREFUSED\)/,
        ),
      ]);

      const none = await fresh(
        ctx,
        ['--cache-to', 'type=gha,scope=faults', '-t', `${reg.host}/app/faults:3`, '--push'],
        { ACTIONS_RESULTS_URL: '', ACTIONS_RUNTIME_TOKEN: '' },
      );
      expect(none.code).toBe(0);
      expect(warningsOf(none.err)).toEqual([
        expect.stringContaining('type=gha needs ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN'),
      ]);
    }, 120_000);

    test('an entry whose bytes do not match the layer digest is found out, and its step runs again', async () => {
      const ctx = context({ 'app.txt': 'corrupt\n' });
      const before = new Set(svc.entries().map((e) => e.key));
      await fresh(ctx, gha('corrupt'));
      const blobKeys = svc
        .entries()
        .map((e) => e.key)
        .filter((k) => k.startsWith('hoist-blob-') && !before.has(k));
      // the build stage's RUN layer and the final image's COPY --from layer, 2 MB each
      expect(blobKeys).toHaveLength(2);
      // The same bytes with one changed, put in place of both blobs' (only the final image's is read: the build stage
      // never runs): the same size, so only the digest can tell.
      for (const key of blobKeys) {
        const bytes = await svc.bytesOf(key);
        bytes[bytes.length >> 1] ^= 0xff;
        await svc.corrupt(key, bytes);
      }

      // No push: the image's layers all come into the store, the corrupt one too.
      const r = await fresh(ctx, gha('corrupt'));
      expect(r.code).toBe(0);
      noStack(r.err);
      // one warning for each corrupted entry: the final image's layer, then the build stage's that its step reads
      const found = warningsOf(r.err);
      expect(found).toHaveLength(2);
      // (the digest, or the gzip stream it no longer is, read as it arrives: whichever fails first)
      for (const key of blobKeys)
        expect(
          found.some(
            (w) =>
              w.includes(`sha256:${key.replace(/^hoist-blob-2-/, '')}`) &&
              /content has digest sha256:[0-9a-f]{64}, expected|gzip data is corrupt/.test(w),
          ),
        ).toBe(true);
      expect(ran(r.meta).length).toBeGreaterThan(0);
    }, 120_000);

    test('matrix legs (two images, two platforms) keep their own scope: each second run is fully cached', async () => {
      const legs = ['a', 'b'].flatMap((image) =>
        ['linux/amd64', 'linux/arm64'].map((platform) => ({ image, platform })),
      );
      const ctxOf = new Map(
        ['a', 'b'].map((image) => [
          image,
          context({ 'app.txt': `image ${image}\n` }, 'FROM scratch\nCOPY app.txt /app.txt\nCOPY src/ /src/\n'),
        ]),
      );
      const flags = (l: { image: string; platform: string }) => [
        '--platform',
        l.platform,
        '--cache-from',
        'type=gha',
        '--cache-to',
        'type=gha,mode=max',
        '-t',
        `${reg.host}/matrix/${l.image}:1`,
      ];
      const indexesBefore = svc.entries().filter((e) => e.key.startsWith('hoist-index-')).length;
      for (const l of legs) expect((await fresh(ctxOf.get(l.image) as string, flags(l))).code).toBe(0);
      expect(svc.entries().filter((e) => e.key.startsWith('hoist-index-')).length).toBe(indexesBefore + 4);
      svc.resetCounts();
      for (const l of legs) {
        const r = await fresh(ctxOf.get(l.image) as string, flags(l));
        expect(r.code).toBe(0);
        expect(ran(r.meta)).toEqual([]);
      }
      expect(svc.counts.creates).toBe(0);
    }, 120_000);

    test('ACTIONS_CACHE_MODE=read reads and writes nothing; write-only writes without reading', async () => {
      const ctx = context({ 'app.txt': 'modes\n' });
      svc.resetCounts();
      const read = await fresh(ctx, gha('modes'), { ACTIONS_CACHE_MODE: 'read' });
      expect(read.code).toBe(0);
      expect(read.err).toMatch(/not written: ACTIONS_CACHE_MODE=read/);
      expect(svc.counts.creates).toBe(0);
      svc.resetCounts();
      const writeOnly = await fresh(ctx, gha('modes'), { ACTIONS_CACHE_MODE: 'write-only' });
      expect({ code: writeOnly.code, err: writeOnly.code === 0 ? '' : writeOnly.err }).toEqual({ code: 0, err: '' });
      expect(svc.counts.creates).toBeGreaterThan(0);
      expect(svc.counts.lookups).toBe(0);
      expect(warningsOf(read.err + writeOnly.err)).toEqual([]);
    }, 120_000);

    test('a cache mount is kept across runs: the second fresh runner downloads nothing; an unchanged mount is not saved again', async () => {
      const pkgs = await startPackageServer();
      try {
        const dockerfile = `FROM ${base}
COPY app.txt /app.txt
RUN --mount=type=cache,id=downloads,target=/cache sh -c 'test -f /cache/pkg || wget -q -O /cache/pkg ${pkgs.url}/pkg; cp /cache/pkg /pkg'
`;
        const first = await fresh(context({ 'app.txt': 'one\n' }, dockerfile), gha('mounts'));
        expect(first.code).toBe(0);
        expect(pkgs.requests).toBe(1);
        expect(first.err).toMatch(/cache mount downloads saved/);
        // A changed input reruns the RUN on a fresh store: the cache comes back, nothing is downloaded.
        const second = await fresh(context({ 'app.txt': 'two\n' }, dockerfile), gha('mounts'));
        expect(second.code).toBe(0);
        expect(ran(second.meta)).toEqual([
          expect.stringMatching(/COPY app.txt/),
          expect.stringMatching(/RUN --mount=type=cache/),
        ]);
        expect(pkgs.requests).toBe(1);
        expect(second.err).not.toMatch(/cache mount downloads saved/);
        expect(warningsOf(first.err + second.err)).toEqual([]);
      } finally {
        await pkgs.stop();
      }
    }, 120_000);

    test("a branch run reads the default branch's entries and writes its own scope; max-size caps what a build uploads", async () => {
      const ctx = context({ 'app.txt': 'branches\n' });
      expect((await fresh(ctx, gha('branches'))).code).toBe(0);
      svc.ref = 'refs/heads/feature';
      try {
        svc.resetCounts();
        const onBranch = await fresh(ctx, gha('branches'));
        expect(ran(onBranch.meta)).toEqual([]);
        expect(svc.counts.creates).toBe(0);
        const changed = await fresh(context({ 'app.txt': 'branches\n', 'src/a.txt': 'on the branch\n' }), [
          ...gha('branches').slice(0, 2),
          '--cache-to',
          'type=gha,scope=branches,mode=max,max-size=100k',
        ]);
        expect(changed.code).toBe(0);
        // the two new 2 MB layers are over the cap; the small ones and the index are written, on the branch
        expect(changed.err).toMatch(
          /cache exported to gha scope branches: \d+ records \(\d+ entries created, \d+ layers already there, index written, 2 layers over max-size not saved\)/,
        );
        expect(svc.entries().filter((e) => e.scope === 'refs/heads/feature').length).toBe(svc.counts.creates);
      } finally {
        svc.ref = svc.defaultRef;
      }
    }, 120_000);

    test('creations are paced: a burst of 20, then about one a second (a build creating 30 entries spans 10 s or more)', async () => {
      // 29 layers over the pack limit (an entry each) and the index: unpaced, they are created in about 3 s here.
      // Lower bounds only: a slow machine spreads them more.
      const runs = Array.from({ length: 29 }, (_, i) => `RUN head -c 1100000 /dev/urandom > /f${i}`).join('\n');
      const ctx = context({}, `FROM ${base}\n${runs}\n`);
      const since = Date.now();
      const r = await fresh(ctx, gha('paced'));
      expect(r.code).toBe(0);
      expect(warningsOf(r.err)).toEqual([]);
      const times = svc
        .entries()
        .filter((e) => e.created >= since)
        .map((e) => e.created)
        .sort((a, b) => a - b);
      expect(times).toHaveLength(30);
      // At most 20 + t creations in any t seconds from the first: the 30th is 10 s after the first (less the jitter
      // of the requests' way to the service).
      for (let i = 20; i < times.length; i++)
        expect(times[i] - times[0]).toBeGreaterThanOrEqual((i + 1 - 20) * 1000 - 500);
    }, 180_000);

    // GitHub Enterprise Server (and a runner without ACTIONS_CACHE_SERVICE_V2) speaks the legacy v1 protocol.
    test.each([
      ['ACTIONS_CACHE_URL without ACTIONS_CACHE_SERVICE_V2', () => svc.envV1],
      [
        'GHES (GITHUB_SERVER_URL not github.com: v1 even with ACTIONS_CACHE_SERVICE_V2)',
        () => ({ ...svc.envV1, ACTIONS_CACHE_SERVICE_V2: 'true', GITHUB_SERVER_URL: 'https://github.example.com' }),
      ],
    ])(
      'the v1 protocol, %s: a fresh runner reads the previous run (all cached, same digest), a refused reservation is one warning, a cache mount is kept',
      async (_name, v1env) => {
        const scope = `v1-${n}`;
        const ctx = context({ 'app.txt': `${scope}\n` });
        const tag = `${reg.host}/app/${scope}:1`;
        svc.resetCounts();
        const first = await fresh(ctx, [...gha(scope), '-t', tag, '--push'], v1env());
        expect(`${first.code}\n${first.err}`).toBe(`0\n${first.err}`);
        expect(warningsOf(first.err)).toEqual([]);
        expect(svc.counts.creates).toBe(4);
        expect(svc.counts.uploadedBytes).toBeGreaterThan(4_000_000);
        expect(svc.counts.v1Calls).toBeGreaterThan(0);
        expect(svc.counts.v2Calls).toBe(0);
        svc.resetCounts();
        const second = await fresh(ctx, [...gha(scope), '-t', tag, '--push'], v1env());
        expect(ran(second.meta)).toEqual([]);
        expect(ops(second.meta).every((s) => s.source === 'gha')).toBe(true);
        expect(second.meta['containerimage.digest']).toBe(first.meta['containerimage.digest']);
        expect(svc.counts.downloads).toBe(1);
        expect(svc.counts.creates).toBe(0);
        // a reservation refused (429: too many): green, one warning
        svc.faults.create = { status: 429, times: 1 };
        const refused = await fresh(context({ 'app.txt': `${scope} refused\n` }), gha(`${scope}-refused`), v1env());
        expect(refused.code).toBe(0);
        noStack(refused.err);
        expect(warningsOf(refused.err)).toEqual([
          expect.stringMatching(/cache gha scope v1-\d+-refused could not be written: /),
        ]);
        svc.faults.create = undefined;
        // a cache mount comes back on another fresh runner
        const pkgs = await startPackageServer();
        try {
          const dockerfile = `FROM ${base}\nCOPY app.txt /app.txt\nRUN --mount=type=cache,id=${scope},target=/cache sh -c 'test -f /cache/pkg || wget -q -O /cache/pkg ${pkgs.url}/pkg; cp /cache/pkg /pkg'\n`;
          expect((await fresh(context({ 'app.txt': 'one\n' }, dockerfile), gha(`${scope}-mounts`), v1env())).code).toBe(
            0,
          );
          const again = await fresh(context({ 'app.txt': 'two\n' }, dockerfile), gha(`${scope}-mounts`), v1env());
          expect(again.code).toBe(0);
          expect(pkgs.requests).toBe(1);
        } finally {
          await pkgs.stop();
        }
      },
      180_000,
    );

    test('a rerun with nothing changed leaves the cache as good as it found it (the next change reruns what it would have)', async () => {
      const { first, direct, rerun, after } = await rerunSequence(base, context, (ctx, name) =>
        fresh(ctx, gha(`rerun-${name}`)),
      );
      expect(first.code).toBe(0);
      expect(ran(rerun.meta)).toEqual([]);
      expect(ran(direct.meta)).toEqual([
        'build COPY src/ /src/',
        expect.stringMatching(/^build RUN mkdir/),
        '1 COPY --from=build /out /app',
      ]);
      expect(ran(after.meta)).toEqual(ran(direct.meta));
    }, 120_000);
  },
);
