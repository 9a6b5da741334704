// A store left alone (issue 37), sized for CI (bench/store.mjs runs the same at full size and prints the figures):
// eight builds at once on one store while the collection trims it and a `hoist prune` starts at a random moment;
// builds killed outright (SIGKILL) at moments spread over pull, RUN, layer capture, push and cache export, and a
// prune killed; a full disk under the store; the registry killed in the middle of a push.
// Real parts: Debian's docker-registry, runc, skopeo (reads back every digest the builds report), the Actions
// cache service harness (azurite), a tmpfs for the full disk.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { storeSize } from '../../src/store/gc.js';
import { Store } from '../../src/store/store.js';
import { type ActionsCacheService, startActionsCacheService } from '../helpers/actions-cache.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { readBack } from '../helpers/readback.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
const sh = (script: string) => run('sh', ['-c', script]).trim();

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

/** hoist as a child process, as a runner starts it; `child` for a test that kills it. */
function hoistChild(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; done: Promise<Ran>; err: () => string } {
  const child = spawn(process.execPath, [cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => void (err += d.toString()));
  return {
    child,
    err: () => err,
    done: new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err }))),
  };
}
const hoistRun = (args: string[], env: NodeJS.ProcessEnv = {}) => hoistChild(args, env).done;

/** `hoist store check`: its exit status and what it printed. */
const check = (store: string) => {
  const r = spawnSync(process.execPath, [cli, 'store', 'check', '--store', store], { encoding: 'utf8' });
  return `${r.status} ${r.stdout}${r.stderr}`;
};
const mountsUnder = (dir: string) => sh(`grep -F ' ${dir}' /proc/mounts || true`);
const loopsOn = (dir: string) => sh(`losetup -a | grep -F '${dir}' || true`);

(process.getuid?.() === 0 ? describeWith(['docker-registry', 'runc', 'busybox', 'skopeo', 'losetup']) : describe.skip)(
  'a store left alone',
  () => {
    let reg: TestRegistry;
    let svc: ActionsCacheService;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-unattended-'));
    let base = '';
    let n = 0;
    beforeAll(async () => {
      reg = await startRegistry('anonymous');
      svc = await startActionsCacheService();
      base = `${reg.host}/base/busybox:1`;
      await pushBusyboxBase(base, path.join(work, 'base-store'), work);
      mkdirSync(path.join(work, 'runner-temp'));
    }, 90_000);
    afterAll(async () => {
      await svc?.stop();
      await reg?.stop();
      sh(`umount ${work}/full 2>/dev/null || true`);
      rmSync(work, { recursive: true, force: true });
    });

    function context(dockerfile: string, files: Record<string, string | Buffer> = {}): string {
      const dir = path.join(work, `ctx${n++}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'Dockerfile'), dockerfile.replaceAll('{{BASE}}', base));
      for (const [k, v] of Object.entries(files)) writeFileSync(path.join(dir, k), v);
      return dir;
    }
    const ghaEnv = () => ({ ...svc.env, RUNNER_TEMP: path.join(work, 'runner-temp'), GITHUB_WORKSPACE: work });

    test('eight builds at once for two rounds, the collection trimming and a prune at a random moment: every build and every image whole, the store under its limit', async () => {
      const store = path.join(work, 'load-store');
      const limit = 6_000_000;
      // Four Dockerfiles (two builds each): one the same each round, three whose steps change every round.
      const dockerfiles = (round: number) => [
        'FROM {{BASE}}\nRUN echo same > /same && head -c 300000 /dev/zero > /zeros\n',
        `FROM {{BASE}} AS build\nRUN echo ${round} > /r && head -c 400000 /dev/urandom > /noise\nFROM {{BASE}}\nCOPY --from=build /r /noise /\n`,
        `FROM {{BASE}}\nCOPY f.txt /\nRUN mkdir /many && for i in 1 2 3 4 5 6 7 8 9 10; do echo ${round}-$i > /many/$i; done\n`,
        `FROM {{BASE}}\nRUN head -c 500000 /dev/urandom > /r${round}\n`,
      ];
      const failures: string[] = [];
      const reported: string[] = [];
      let collected = 0;
      for (const round of [1, 2]) {
        const files = dockerfiles(round);
        const builds = Array.from({ length: 8 }, (_, i) => {
          const ctx = context(files[i % 4], { 'f.txt': `round ${round} build ${i}\n` });
          // two builds push to each repository, with the same tag; half export their cache to one registry ref, half
          // to one Actions cache scope
          const repo = `${reg.host}/load/app${i % 4}`;
          const cache =
            i % 2 === 0
              ? [
                  '--cache-from',
                  `${reg.host}/load/cache`,
                  '--cache-to',
                  `type=registry,ref=${reg.host}/load/cache,mode=max`,
                ]
              : ['--cache-from', 'type=gha,scope=load', '--cache-to', 'type=gha,scope=load,mode=max'];
          return hoistRun(
            [
              'build',
              '--store',
              store,
              '--store-max',
              String(limit),
              '--progress',
              'plain',
              '-t',
              `${repo}:${round}`,
              '--push',
              ...cache,
              ctx,
            ],
            ghaEnv(),
          ).then((r) => ({ r, repo }));
        });
        // a prune at a random moment of the round
        await new Promise((r) => setTimeout(r, 200 + Math.random() * 2000));
        const pruned = await hoistRun(['prune', '--store', store]);
        if (pruned.code !== 0) failures.push(`prune: ${pruned.err}`);
        for (const { r, repo } of await Promise.all(builds)) {
          if (/^store: over its limit of /m.test(r.err)) collected++;
          if (r.code !== 0) failures.push(r.err);
          else reported.push(`${repo}@${r.out.trim().split('\n').at(-1)}`);
        }
      }
      expect(failures).toEqual([]);
      expect(reported).toHaveLength(16);
      // the limit is small: builds ended over it and trimmed the store
      expect(collected).toBeGreaterThan(0);
      // every digest a build reported is read back whole by skopeo
      for (const ref of reported) await readBack(ref);
      expect(check(store)).toMatch(/^0 checked .*: nothing broken\n$/);
      const s = await Store.open(store);
      try {
        expect(await storeSize(s)).toBeLessThanOrEqual(limit);
      } finally {
        await s.close();
      }
      expect(mountsUnder(store)).toBe('');
    }, 300_000);

    test('builds and prunes killed outright at moments spread over their work: the next build succeeds, the store checks clean, nothing is left mounted', async () => {
      const store = path.join(work, 'fault-store');
      // a pull (the store emptied first), a RUN writing 300 files, their capture, a push, a cache export
      const ctx = context(
        'FROM {{BASE}}\nARG RUN=0\nRUN mkdir /d && i=0; while [ $i -lt 300 ]; do head -c 4000 /dev/urandom > /d/f$i; i=$((i+1)); done\nCOPY big.bin /\n',
        { 'big.bin': randomBytes(3_000_000) },
      );
      const args = (i: number) => [
        'build',
        '--store',
        store,
        '--progress',
        'plain',
        '--build-arg',
        `RUN=${i}`,
        '-t',
        `${reg.host}/faults/app:${i}`,
        '--push',
        '--cache-to',
        `type=registry,ref=${reg.host}/faults/cache,mode=max`,
        ctx,
      ];
      expect((await hoistRun(args(0))).code).toBe(0);
      const kills: string[] = [];
      // The moments, by what the build has said (not by time: a loaded machine moves them): its start, the base's
      // pull, the RUN, the COPY (the RUN's layer captured), the export and push after the last step, the cache export
      // after the push.
      const moments = [/^/, /#1 \[/, /#2 \[.*RUN/, /#3 \[.*COPY/, /#3 DONE/, /^pushed /m];
      for (const [i, moment] of moments.entries()) {
        expect((await hoistRun(['prune', '--all', '--store', store])).code).toBe(0);
        const b = hoistChild(args(i + 1));
        for (let t = 0; t < 6000 && !moment.test(b.err()) && b.child.exitCode === null; t++)
          await new Promise((r) => setTimeout(r, 5));
        b.child.kill('SIGKILL');
        const killed = await b.done;
        if (killed.code === null) kills.push(killed.err.trim().split('\n').at(-1) ?? '');
        const next = await hoistRun(args(100 + i));
        expect(next.err).not.toMatch(/internal error/);
        expect(next.code).toBe(0);
        expect(check(store)).toMatch(/^0 checked .*: nothing broken\n$/);
        expect(mountsUnder(store)).toBe('');
        expect(loopsOn(store)).toBe('');
        // the killed build's tag, if it was written at all, names a whole image
        const tagged = spawnSync(
          'skopeo',
          ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/faults/app:${i + 1}`],
          { encoding: 'utf8' },
        );
        if (tagged.status === 0) await readBack(`${reg.host}/faults/app:${i + 1}`);
      }
      // (the last, after the push, may have finished first)
      expect(kills.length).toBeGreaterThanOrEqual(5);
      // a prune killed on its way
      for (let i = 0; i < 3; i++) {
        const p = hoistChild(['prune', '--all', '--store', store]);
        await new Promise((r) => setTimeout(r, Math.random() * 60));
        p.child.kill('SIGKILL');
        await p.done;
        expect((await hoistRun(args(200 + i))).code).toBe(0);
        expect(check(store)).toMatch(/^0 checked .*: nothing broken\n$/);
      }
    }, 300_000);

    test('a full disk under the store: a clear error naming the store and what to do, nothing half-written kept, and the same build succeeds once space is freed', async () => {
      const disk = path.join(work, 'full');
      mkdirSync(disk);
      sh(`mount -t tmpfs -o size=40m tmpfs ${disk}`);
      const store = path.join(disk, 'store');
      const copying = context('FROM {{BASE}}\nCOPY big.bin /\n', { 'big.bin': randomBytes(8_000_000) });
      const running = context('FROM {{BASE}}\nRUN head -c 8000000 /dev/urandom > /big.bin\n');
      // the base in the store, then a filler leaves ~4 MB free
      expect((await hoistRun(['pull', '--store', store, base])).code).toBe(0);
      const filler = path.join(disk, 'filler');
      const fill = () => sh(`fallocate -l $(( $(stat -f -c '%a*%S' ${disk}) - 4000000 )) ${filler}`);
      fill();
      for (const ctx of [copying, running]) {
        const failed = await hoistRun([
          'build',
          '--store',
          store,
          '--progress',
          'plain',
          '-t',
          `${reg.host}/full/app:1`,
          '--push',
          ctx,
        ]);
        expect(failed.code).toBe(1);
        expect(failed.err).not.toMatch(/internal error/);
        expect(failed.err).toMatch(
          new RegExp(
            `the disk holding hoist's store ${store} (is full|ran out of space) \\(.* free.*\\): free space with \`hoist prune\` .* --store-max SIZE / HOIST_STORE_MAX .* --store DIR / HOIST_STORE`,
          ),
        );
        expect(check(store)).toMatch(/^0 checked .*: nothing broken\n$/);
        expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
        expect(mountsUnder(store)).toBe('');
      }
      // nothing was pushed under the tag
      expect(
        spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/full/app:1`]).status,
      ).not.toBe(0);
      rmSync(filler);
      for (const ctx of [copying, running]) {
        const ok = await hoistRun([
          'build',
          '--store',
          store,
          '--progress',
          'plain',
          '-t',
          `${reg.host}/full/app:1`,
          '--push',
          ctx,
        ]);
        expect(ok.err).toMatch(/pushed/);
        expect(ok.code).toBe(0);
        await readBack(`${reg.host}/full/app:1`);
      }
      expect(check(store)).toMatch(/^0 checked .*: nothing broken\n$/);
      sh(`umount ${disk}`);
    }, 120_000);

    test('the registry killed in the middle of a push: restarted, the push goes on; gone, the push fails clearly and the tag never names a part of an image', async () => {
      const store = path.join(work, 'crash-store');
      const uploads = (repo: string) => path.join(reg.storage, 'docker/registry/v2/repositories', repo, '_uploads');
      /** Kills the registry once an upload to `repo` has bytes on its disk; `restartAfter`: brings it back then. */
      const crashMidUpload = async (repo: string, restartAfter?: number) => {
        for (let i = 0; i < 3000; i++) {
          const dir = uploads(repo);
          const growing =
            existsSync(dir) &&
            readdirSync(dir).some(
              (u) => (statSync(path.join(dir, u, 'data'), { throwIfNoEntry: false })?.size ?? 0) > 1_000_000,
            );
          if (growing) break;
          await new Promise((r) => setTimeout(r, 5));
        }
        await reg.crash();
        if (restartAfter !== undefined) {
          await new Promise((r) => setTimeout(r, restartAfter));
          await reg.restart();
        }
      };
      const ctx = context('FROM {{BASE}}\nCOPY big.bin /\n', { 'big.bin': randomBytes(60_000_000) });
      const resumed = hoistRun([
        'build',
        '--store',
        store,
        '--progress',
        'plain',
        '-t',
        `${reg.host}/crash/resumed:1`,
        '--push',
        ctx,
      ]);
      await crashMidUpload('crash/resumed', 500);
      const r = await resumed;
      expect(r.err).toMatch(/pushed/);
      expect(r.code).toBe(0);
      const back = await readBack(`${reg.host}/crash/resumed:1`);
      expect(back.images).toHaveLength(1);

      // other bytes (the first image's would be mounted from its repository, not uploaded)
      const other = context('FROM {{BASE}}\nCOPY big.bin /\n', { 'big.bin': randomBytes(60_000_000) });
      const gone = hoistRun([
        'build',
        '--store',
        store,
        '--progress',
        'plain',
        '-t',
        `${reg.host}/crash/gone:1`,
        '--push',
        other,
      ]);
      await crashMidUpload('crash/gone');
      const g = await gone;
      await reg.restart();
      expect(g.code).toBe(1);
      expect(g.err).not.toMatch(/internal error/);
      expect(g.err).toMatch(new RegExp(`${reg.host.replace(/\./g, '\\.')}.*(refused|reset|closed|connect)`, 'i'));
      expect(
        spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/crash/gone:1`]).status,
      ).not.toBe(0);
      // and pushed again, whole
      const again = await hoistRun([
        'build',
        '--store',
        store,
        '--progress',
        'plain',
        '-t',
        `${reg.host}/crash/gone:1`,
        '--push',
        other,
      ]);
      expect(again.code).toBe(0);
      await readBack(`${reg.host}/crash/gone:1`);
    }, 120_000);
  },
);
