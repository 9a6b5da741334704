// The hostile-input suite for the cache side: what a pull request's steps, a poisoned cache (an Actions cache entry,
// a local cache directory, a registry cache) or a hostile registry can hand hoist, made the way an attacker makes it,
// with the probe's findings as named regression tests. Every run is the hoist command (dist/cli.js) as a child with
// a time limit; for each: it ends in time with 0 or 1 and no stack trace, and nothing outside its target changed (a
// "host" directory the inputs point at) or reached its log. Real parts: Debian's docker-registry, runc, and the
// Actions cache service (Azurite behind the Twirp methods, helpers/actions-cache.ts).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fingerprint, hoistChild, type Run, runFault } from '../helpers/hostile.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, haveTool } from '../helpers/tools.js';

const asRoot = process.getuid?.() === 0;
const canRun = asRoot && haveTool('runc') && haveTool('getfattr');
const applets = ['sh', 'echo', 'true', 'ls', 'cat', 'mkdir', 'rm', 'ln', 'sleep', 'touch', 'test', '[', 'mknod', 'chmod', 'head', 'dd', 'truncate', 'date'];

(asRoot ? describeWith(['docker-registry', 'busybox']) : describe.skip)('hostile input on the cache side', () => {
  let reg: TestRegistry;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-cache-hostile-'));
  const store = path.join(work, 'store');
  /** the "host": files an attacker wants to read or change, named by absolute paths in the inputs */
  const host = path.join(work, 'host');
  const marker = `HOST-CANARY-${randomBytes(8).toString('hex')}`;
  let hostBefore: Record<string, string>;
  let busybox = '';
  const tally = { runs: 0, built: 0, failedClearly: 0, cacheEntries: 0, cacheDirs: 0, mountContent: 0, registryBodies: 0, logLines: 0, raceTries: 0 };

  beforeAll(async () => {
    mkdirSync(path.join(host, 'dir'), { recursive: true });
    writeFileSync(path.join(host, 'secret.txt'), `${marker}\n`);
    writeFileSync(path.join(host, 'victim.txt'), 'victim\n');
    writeFileSync(path.join(host, 'dir', 'inner.txt'), 'inner\n');
    hostBefore = fingerprint(host);
    reg = await startRegistry('anonymous');
    busybox = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(busybox, store, work, applets);
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** Runs hoist and asserts what holds for every run; answers the run for the case's own expectations. */
  async function safely(label: string, args: string[], options: Parameters<typeof hoistChild>[1] = {}): Promise<Run> {
    const r = await hoistChild(args, { limitMs: 120_000, ...options });
    tally.runs++;
    const said = `${label}: hoist ${args.join(' ')} → ${r.code}\n${r.err}`;
    const fault = runFault(r);
    if (fault) throw new Error(`${said}\n${fault}`);
    expect(`${r.out}${r.err}`).not.toContain(marker);
    expect(fingerprint(host)).toEqual(hostBefore);
    if (r.code === 0) tally.built++;
    else tally.failedClearly++;
    return r;
  }

  let n = 0;
  function context(dockerfile: string, files: Record<string, string | Buffer | { symlink: string }> = {}): string {
    const dir = path.join(work, `ctx${n++}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    for (const [name, spec] of Object.entries(files)) {
      const p = path.join(dir, name);
      mkdirSync(path.dirname(p), { recursive: true });
      if (typeof spec === 'object' && !Buffer.isBuffer(spec)) symlinkSync(spec.symlink, p);
      else writeFileSync(p, spec);
    }
    return dir;
  }
  const build = (ctx: string, extra: string[] = []) => ['build', '--store', store, '--progress', 'plain', ...extra, ctx];

  // ---- 1. a cache mount's source= swapped for a link to / while another step mounts it ----
  (canRun ? test : test.skip)('race: a cache mount source= that a concurrent step swaps for a link to / never shows the host (CVE-2024-23651)', async () => {
    const tries = 40;
    const attacker = context(`FROM ${busybox}\nRUN --mount=type=cache,id=race,sharing=shared,target=/cm sh -c 'touch /cm/started; end=$(($(date +%s) + 100)); while [ ! -e /cm/stop ] && [ $(date +%s) -lt $end ]; do rm -rf /cm/sub; mkdir /cm/sub; rm -rf /cm/sub; ln -s / /cm/sub; done; rm -f /cm/started /cm/stop'\n`);
    const attacking = safely('attacker', build(attacker, ['--no-cache']));
    const cache = () => (existsSync(path.join(store, 'cache-mounts')) ? readdirSync(path.join(store, 'cache-mounts')) : []).map((d) => path.join(store, 'cache-mounts', d)).find((d) => existsSync(path.join(d, 'started')));
    for (let i = 0; i < 600 && !cache(); i++) await new Promise((r) => setTimeout(r, 100));
    const dir = cache();
    let mounted = 0;
    try {
      expect(dir).toBeDefined();
      // Builds on the same store, one after another, each mounting the cache's `sub` while the attacker swaps it.
      for (let i = 0; i < tries; i++) {
        const v = await safely(`victim ${i}`, build(context(`FROM ${busybox}\nRUN --mount=type=cache,id=race,sharing=shared,source=sub,target=/s sh -c 'cat /s${host}/secret.txt 2>/dev/null; ls /s/; echo try ${i}'\n`), ['--no-cache']));
        tally.raceTries++;
        // The attacker may remove `sub` between the moment it is staged and the runtime's mount: the step then
        // fails, saying so. Otherwise it shows the cache's own `sub` (or, through `sub -> /`, the cache itself).
        if (v.code === 0) mounted++;
        else expect(v.err).toMatch(/a mount source, \/sub, was removed by another step while this one started/);
        if (v.code === 0) expect(v.err).toContain(`try ${i}`);
        // The host's / holds bin, etc, proc…; the cache only what the attacker makes there (started, sub).
        expect(v.err).not.toMatch(/\b(proc|etc|var|usr)\b/);
      }
    } finally {
      if (dir) writeFileSync(path.join(dir, 'stop'), '');
      expect((await attacking).code).toBe(0);
    }
    expect(mounted).toBeGreaterThan(tries / 4);
  }, 240_000);

  // ---- 4. a bind mount of the context shows what .dockerignore leaves out ----
  (canRun ? test : test.skip)('leak: a bind mount of the context shows only what .dockerignore lets in (not .git/config with the job token)', async () => {
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    const files = {
      '.dockerignore': '.git\nignored.txt\nsecret/\n!secret/keep.txt\n',
      '.git/config': `[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic ${token}\n`,
      'ignored.txt': `ignored ${token}\n`,
      'secret/other.txt': `other ${token}\n`,
      'secret/keep.txt': 'kept\n',
      'src/app.txt': 'app\n',
      'link-to-git': { symlink: '.git/config' },
    };
    const dockerfile = `FROM ${busybox}
RUN --mount=type=bind,target=/src sh -c 'cat /src/.git/config /src/ignored.txt /src/secret/other.txt /src/link-to-git 2>&1; ls -a /src /src/secret; cat /src/secret/keep.txt /src/src/app.txt'
RUN --mount=type=bind,target=/src,rw sh -c 'cat /src/.git/config /src/ignored.txt 2>&1; ls -a /src; echo written > /src/ignored.txt'
RUN --mount=type=bind,source=secret,target=/s sh -c 'ls -a /s; cat /s/other.txt 2>&1; true'
`;
    const ctx = context(dockerfile, files);
    const before = fingerprint(ctx);
    const r = await safely('bind of the context', build(ctx, ['--no-cache']));
    tally.mountContent++;
    expect(`${r.code}\n${r.err}${r.out}`).toBe(`0\n${r.err}${r.out}`);
    expect(r.err).not.toContain(token);
    expect(r.err).toMatch(/cat: can't open '\/src\/\.git\/config': No such file or directory/);
    expect(r.err).toMatch(/cat: can't open '\/s\/other\.txt': No such file or directory/);
    expect(r.err).toContain('kept');
    expect(r.err).toContain('app');
    expect(r.err).toMatch(/keep\.txt/);
    expect(r.err).not.toMatch(/^#\d+ (\.git|ignored\.txt|other\.txt)$/m);
    // The context is the user's checkout: the rw mount wrote to a throwaway view.
    expect(fingerprint(ctx)).toEqual(before);
    // A change to an ignored file is no change to what the step sees: taken from the cache; a visible one is not.
    writeFileSync(path.join(ctx, 'ignored.txt'), 'changed\n');
    const again = await safely('bind, ignored file changed', build(ctx, ['--metadata-file', path.join(work, 'meta-bind.json')]));
    expect(again.err).not.toContain(token);
    expect(JSON.parse(readFileSync(path.join(work, 'meta-bind.json'), 'utf8'))['hoist.steps'].filter((x: { cached: boolean; instruction: string }) => !x.cached && x.instruction.startsWith('RUN'))).toEqual([]);
    writeFileSync(path.join(ctx, 'secret', 'keep.txt'), 'kept, changed\n');
    const changed = await safely('bind, visible file changed', build(ctx));
    expect(changed.err).toContain('kept, changed');
  }, 120_000);
});
