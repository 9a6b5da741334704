// What a step sees of /dev and /sys through proot and chroot: its own nodes (null, zero, full, random, urandom, tty),
// the descriptors' links and a /dev/shm of its own, made in the stage's root for the step and gone after it — never
// the machine's /dev bound in (a bind is a path translation: a root step's `rm -rf /dev` would reach the machine's
// nodes) — and no /sys (proot cannot bind it read-only). Only reading here: a step that removes /dev runs in a
// container (unprivileged.test.ts). Real parts: docker-registry, proot, python3, busybox.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hoist } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith } from '../helpers/tools.js';

(process.getuid?.() === 0 ? describeWith(['docker-registry', 'proot', 'python3', 'busybox']) : describe.skip)(
  '/dev and /sys where RUN cannot mount',
  () => {
    let reg: TestRegistry;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-nomount-dev-'));
    let base = '';
    beforeAll(async () => {
      reg = await startRegistry('anonymous');
      base = `${reg.host}/base/busybox:1`;
      await pushBusyboxBase(base, path.join(work, 'seed'), work, [
        'sh',
        'ls',
        'sort',
        'tr',
        'wc',
        'cat',
        'echo',
        'test',
        'readlink',
      ]);
    }, 60_000);
    afterAll(async () => {
      await reg?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    test.each(['proot', 'chroot'])(
      "%s: the step's own nodes and links, no /sys, nothing of it in the layer; outside a container, a warning",
      async (isolation) => {
        const ctx = path.join(work, isolation);
        mkdirSync(ctx);
        writeFileSync(
          path.join(ctx, 'Dockerfile'),
          `FROM ${base}\nRUN ls -A /dev | sort | tr '\\n' ' ' > /devs && (ls -A /sys 2>/dev/null | wc -l) > /sysn && readlink /dev/stdout > /out && echo x > /dev/shm/mine\n`,
        );
        const out = path.join(work, `${isolation}-out`);
        const r = await hoist([
          'build',
          '--store',
          path.join(work, `store-${isolation}`),
          '--progress',
          'plain',
          '--isolation',
          isolation,
          '-o',
          `type=local,dest=${out}`,
          ctx,
        ]);
        expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
        expect(readFileSync(path.join(out, 'devs'), 'utf8')).toBe(
          'fd full null random shm stderr stdin stdout tty urandom zero ',
        );
        expect(readFileSync(path.join(out, 'sysn'), 'utf8').trim()).toBe('0');
        expect(readFileSync(path.join(out, 'out'), 'utf8').trim()).toBe('/proc/self/fd/1');
        // made for the step, not kept: the layer has /dev as runc leaves it (empty)
        expect(readdirSync(path.join(out, 'dev'))).toEqual([]);
        // this machine may mount: it is no container, and the log says what that means
        expect(r.err).toMatch(
          new RegExp(
            `RUN runs through ${isolation} \\(--isolation ${isolation}; WARNING: this machine may mount, so it is no container`,
          ),
        );
      },
      120_000,
    );
  },
);
