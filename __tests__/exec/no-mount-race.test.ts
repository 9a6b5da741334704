// A step run as another user through chroot or proot must not make hoist (root) act on the machine's files after it
// (issue 34). The step leaves a chain of processes behind — each forks the next, swaps a directory hoist made for the
// step's cache mount for a symlink to a directory of the machine and back, and ends — and under proot the first of
// them kills proot (it runs as the step's user), which lets its tracees go. Before: one scan of /proc after the
// step missed the newest of the chain, which then won hoist's check-then-act on the mount's directory (a directory
// of the machine emptied or chmodded, or a file of it read into the cache); 5 of 12 builds on the host. Now every
// process of the step ends before anything is taken out, and what is taken out is reached by descriptors.
// Real parts: docker-registry, chroot, proot, python3, busybox; `TRIES` builds of each.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hoist } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { raceApplets, raceDockerfile } from '../helpers/race.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

const TRIES = Number(process.env.HOIST_RACE_TRIES ?? 8);
const raceUid = 4323;

/** How many times, looking every 20 ms for `ms`, a process of user `uid` was seen (the chain's are short-lived). */
async function processesOf(uid: number, ms: number): Promise<number> {
  let seen = 0;
  for (const end = Date.now() + ms; Date.now() < end; ) {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (new RegExp(`\\nUid:\\s+${uid}\\s`).test(readFileSync(`/proc/${name}/status`, 'utf8'))) seen++;
      } catch {}
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return seen;
}

(process.getuid?.() === 0 ? describeWith(['docker-registry', 'proot', 'python3', 'busybox']) : describe.skip)(
  "a step that races hoist's cleanup where RUN cannot mount",
  () => {
    let reg: TestRegistry;
    // (the store where the step's user may reach its cache by path: not under the suite's 0700 temp dir)
    const work = mkdtempSync('/var/tmp/hoist-race-');
    chmodSync(work, 0o711);
    let base = '';
    beforeAll(async () => {
      reg = await startRegistry('anonymous');
      base = `${reg.host}/base/busybox:1`;
      await pushBusyboxBase(base, path.join(work, 'seed'), work, raceApplets);
    }, 60_000);
    afterAll(async () => {
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    test.each(['chroot', 'proot'])(
      `%s: ${TRIES} builds, the machine's directory untouched and no process of the step left`,
      async (isolation) => {
        // The canary: root's, 0700, with a directory `c` (the mount's name) holding a file.
        const canary = path.join(work, `canary-${isolation}`);
        mkdirSync(path.join(canary, 'c'), { recursive: true });
        writeFileSync(path.join(canary, 'c', 'keep'), "the machine's\n");
        chmodSync(canary, 0o700);
        chmodSync(path.join(canary, 'c'), 0o700);
        const ctx = path.join(work, `ctx-${isolation}`);
        mkdirSync(ctx);
        // (its own user, 4323: the suite's files run two at once, and others run steps as 4321 or 4322 on this machine)
        writeFileSync(path.join(ctx, 'Dockerfile'), raceDockerfile(base, canary, 3, raceUid));
        const harmed: string[] = [];
        for (let i = 0; i < TRIES; i++) {
          const r = await hoist(
            [
              'build',
              '--store',
              path.join(work, `store-${isolation}`),
              '--progress',
              'plain',
              '--no-cache',
              '--isolation',
              isolation,
              ctx,
            ],
            { readBack: false },
          );
          const state = `${(statSync(canary).mode & 0o7777).toString(8)} ${(statSync(path.join(canary, 'c')).mode & 0o7777).toString(8)} ${readdirSync(path.join(canary, 'c')).join(',')}`;
          if (state !== '700 700 keep') harmed.push(`try ${i + 1}: ${state} (exit ${r.code})`);
          // nothing of the step runs on once hoist is done with it
          const left = await processesOf(raceUid, 1000);
          if (left > 0) {
            harmed.push(`try ${i + 1}: processes of the step's user seen after the build: ${left}`);
            await new Promise((r) => setTimeout(r, 4000));
          }
          // (under proot the chain kills proot, and the step with it: killed, as under runc when its init is)
          if (isolation === 'chroot') expect(`${r.code}\n${r.err}`).toMatch(/^0\n[\s\S]*\n#3 ran\n/);
          else expect(`${r.code}\n${r.err}`).toMatch(/^1\n[\s\S]*did not complete successfully: exit code: 137/);
        }
        expect(harmed).toEqual([]);
      },
      60_000 + TRIES * 30_000,
    );

    test.each(['proot', 'chroot'])(
      '%s: a step that moves its cache mount away and leaves a link to a host directory in its place: the next build drops it with a warning, never binds the link',
      async (isolation) => {
        const ctx = path.join(work, `moved-${isolation}`);
        mkdirSync(ctx);
        // a directory of the machine's that a later step must never see through the cache
        const hostDir = path.join(work, `host-${isolation}`);
        mkdirSync(hostDir);
        writeFileSync(path.join(hostDir, 'host-secret'), "the machine's\n");
        const store = path.join(work, `store-moved-${isolation}`);
        writeFileSync(
          path.join(ctx, 'Dockerfile'),
          `FROM ${base}\nRUN --mount=type=cache,id=moved,target=/cache echo x > /cache/x && mv /cache /moved-away && ln -s ${hostDir} /cache; echo moved\n`,
        );
        const first = await hoist(['build', '--store', store, '--progress', 'plain', '--isolation', isolation, ctx], {
          readBack: false,
        });
        expect(`${first.code}\n${first.err}`).toMatch(/^0\n/);
        writeFileSync(
          path.join(ctx, 'Dockerfile'),
          `FROM ${base}\nRUN --mount=type=cache,id=moved,target=/cache echo y > /cache/y && echo /cache/*\n`,
        );
        const second = await hoist(['build', '--store', store, '--progress', 'plain', '--isolation', isolation, ctx], {
          readBack: false,
        });
        expect(`${second.code}\n${second.err}`).toMatch(/^0\n/);
        expect(second.err).toMatch(/\n#2 \/cache\/y\n/);
        expect(readdirSync(hostDir)).toEqual(['host-secret']);
        if (isolation === 'proot')
          expect(second.err).toMatch(
            /^warning: the cache mount "moved" was a symbolic link in the store \(a step moved it away\): dropped, it starts empty$/m,
          );
        // whatever the first step left where the cache was is dropped with a warning (or was never broken: chroot copies)
        const cacheDirs = readdirSync(path.join(store, 'cache-mounts')).filter((n) => !/\.(lock|users)$/.test(n));
        for (const n of cacheDirs) expect(statSync(path.join(store, 'cache-mounts', n)).isDirectory()).toBe(true);
      },
      120_000,
    );

    test('proot: a step that kills its tracer fails (exit 137) though its shell goes on and reports 0', async () => {
      // Before: the shell, let go by the dead proot, reported 0 before the warden had ended it, and the step "passed"
      // (1 in 8 builds of the race above on a loaded machine).
      const ctx = path.join(work, 'tracer-killed');
      mkdirSync(ctx);
      writeFileSync(
        path.join(ctx, 'Dockerfile'),
        `FROM ${base}\nUSER 4321:4321\nRUN t=$(sed -n 's/^TracerPid:[[:space:]]*//p' /proc/self/status); kill -9 "$t"; echo went on\n`,
      );
      for (let i = 0; i < 4; i++) {
        const r = await hoist(
          [
            'build',
            '--store',
            path.join(work, 'store-tracer'),
            '--progress',
            'plain',
            '--no-cache',
            '--isolation',
            'proot',
            ctx,
          ],
          { readBack: false },
        );
        expect(`${r.code}\n${r.err}`).toMatch(/^1\n[\s\S]*did not complete successfully: exit code: 137/);
      }
    }, 120_000);
  },
);
