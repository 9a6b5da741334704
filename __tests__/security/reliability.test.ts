// What must hold around a build beside the input itself: `hoist prune --all` while a build runs; an interrupt while
// a base layer downloads or unpacks; what a build killed outright (SIGKILL) leaves, cleaned by the next prune and
// the next build; a blob in the store cut short or damaged, fetched again; RUN flags refused at their line; mount
// sources that are symlinks, and stages with device nodes, under rw and cache mounts; the overlay's own error.
// Real parts: Debian's docker-registry (behind the fault proxy where a download must trickle), runc.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecError, mountOverlay } from '../../src/exec/overlay.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { hoist } from '../helpers/hoist.js';
import { makeImage, pushBusyboxBase, seed } from '../helpers/images.js';
import { type RawEntry, rawTar } from '../helpers/raw-tar.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'cli.js');
const asRoot = process.getuid?.() === 0;

/** The hoist command as a child; `until` resolves once its standard error matches. */
function start(
  args: string[],
  env?: NodeJS.ProcessEnv,
): { child: ChildProcess; err: () => string; until: (re: RegExp) => Promise<void>; done: Promise<number | null> } {
  const child = spawn(process.execPath, [cli, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  let err = '';
  let out = '';
  child.stderr?.on('data', (d: Buffer) => void (err += d.toString()));
  child.stdout?.on('data', (d: Buffer) => void (out += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 3000 && !re.test(err); i++) {
      if (child.exitCode !== null) throw new Error(`hoist ended (${child.exitCode}) before ${re}: ${err}${out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    if (!re.test(err)) throw new Error(`never saw ${re}: ${err}`);
  };
  return { child, err: () => err, until, done };
}

const sh = (script: string) => run('sh', ['-c', script]).trim();
const mountsUnder = (dir: string) => sh(`grep -F ' ${dir}' /proc/mounts || true`);

(asRoot ? describeWith(['docker-registry', 'runc', 'busybox', 'getfattr']) : describe.skip)('reliability', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let client: RegistryClient;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-reliability-'));
  const store = path.join(work, 'store');
  let base = '';
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
    proxy = await startFaultProxy(reg.host);
    client = new RegistryClient();
    base = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(base, store, work);
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  let n = 0;
  function context(dockerfile: string, files: Record<string, string> = {}): string {
    const dir = path.join(work, `ctx${n++}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile.replaceAll('{{BASE}}', base));
    for (const [k, v] of Object.entries(files)) writeFileSync(path.join(dir, k), v);
    return dir;
  }

  test('hoist prune --all while a build runs leaves what the build uses (three times)', async () => {
    for (let i = 0; i < 3; i++) {
      const b = start([
        'build',
        '--progress',
        'plain',
        '--store',
        store,
        context(
          `FROM {{BASE}}\nRUN echo one > /one\nRUN echo started${i} && sleep 2\nRUN cat /one && ls /bin/sh > /after\n`,
        ),
      ]);
      await b.until(new RegExp(`#\\d+ started${i}`));
      const p = spawnSync(process.execPath, [cli, 'prune', '--all', '--store', store], { encoding: 'utf8' });
      expect(p.status).toBe(0);
      expect(await b.done).toBe(0);
    }
  }, 60_000);

  test('an interrupt while a base layer downloads (build and pull) leaves no partial blob', async () => {
    const ref = `${proxy.host}/big/download:1`;
    const big = rawTar([{ name: 'big.bin', body: randomBytes(6 << 20) }]);
    const img = makeImage({ tars: [big] });
    await seed(client, `${reg.host}/big/download:1`, img);
    for (const args of [
      ['build', '--progress', 'plain', context(`FROM ${ref}\nCOPY Dockerfile /d\n`)],
      ['pull', ref],
    ]) {
      const s = path.join(work, `dl-store-${n++}`);
      proxy.rules.push({
        match: (req) => req.url?.includes(img.layers[0].digest) ?? false,
        fault: 'slow-body',
        times: 1,
      });
      const h = start([args[0], '--store', s, ...args.slice(1)]);
      // Under way: a temp file of the download is growing.
      for (let i = 0; i < 1000; i++) {
        const partial =
          existsSync(path.join(s, 'tmp')) &&
          readdirSync(path.join(s, 'tmp'), { withFileTypes: true }).find(
            (e) => e.isFile() && statSync(path.join(s, 'tmp', e.name)).size > 0,
          );
        if (partial) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      h.child.kill('SIGINT');
      expect(await h.done).toBe(130);
      expect(readdirSync(path.join(s, 'tmp'))).toEqual([]);
      expect(existsSync(path.join(s, 'blobs', 'sha256', img.layers[0].digest.slice(7)))).toBe(false);
    }
  }, 60_000);

  test.each([
    ['an EROFS index and its tar', undefined],
    ['a snapshot directory', 'directories'],
  ] as const)(
    'an interrupt while a base layer is made a lower (%s) leaves nothing partial',
    async (_kind, lowers) => {
      const many: RawEntry[] = Array.from({ length: 20_000 }, (_, i) => ({
        name: `d${i % 100}/f${i}`,
        body: 'x'.repeat(1000),
      }));
      const img = makeImage({ tars: [rawTar(many)] });
      const ref = `${reg.host}/big/unpack-${lowers ?? 'erofs'}:1`;
      await seed(client, ref, img);
      const s = path.join(work, `unpack-store-${lowers ?? 'erofs'}`);
      const h = start(
        [
          'build',
          '--progress',
          'plain',
          '--store',
          s,
          context(`FROM {{BASE}}\nRUN --mount=type=bind,from=${ref},target=/m ls /m\n`),
        ],
        lowers ? { HOIST_LOWERS: lowers } : undefined,
      );
      // Under way: a snapshot being unpacked is a directory in tmp beside the build's own; a tar being written, a file.
      const tmp = path.join(s, 'tmp');
      const underWay = () =>
        existsSync(tmp) &&
        readdirSync(tmp, { withFileTypes: true }).some((e) =>
          lowers
            ? e.isDirectory() && !e.name.includes('-build-') && readdirSync(path.join(tmp, e.name)).length > 20
            : e.isFile() && statSync(path.join(tmp, e.name)).size > 100_000,
        );
      for (let i = 0; i < 2000 && !underWay(); i++) await new Promise((r) => setTimeout(r, 2));
      h.child.kill('SIGINT');
      expect(await h.done).toBe(130);
      expect(readdirSync(tmp)).toEqual([]);
      expect(existsSync(path.join(s, 'snapshots', img.diffIDs[0].slice(7)))).toBe(false);
      expect(readdirSync(path.join(s, 'lowers'))).toEqual([]);
      expect(mountsUnder(s)).toBe('');
    },
    60_000,
  );

  test('what a SIGKILLed build leaves (container, temp dir, secret; its mounts go with it, or stay when its mount helper is killed too) is cleaned by the next prune, then by the next build', async () => {
    const secret = path.join(work, 'secret.txt');
    writeFileSync(secret, 'sekrit-value\n');
    for (const next of ['prune', 'build'] as const) {
      const s = path.join(work, `killed-${next}`);
      const dockerfile = `FROM {{BASE}} AS a\nRUN echo a > /a\nFROM {{BASE}}\nCOPY --from=a /a /a\nRUN --mount=type=secret,id=s,target=/s echo started && sleep 61\n`;
      const b = start([
        'build',
        '--progress',
        'plain',
        '--store',
        s,
        '--secret',
        `id=s,src=${secret}`,
        context(dockerfile),
      ]);
      await b.until(/#\d+ started/);
      const pid = b.child.pid as number;
      // The second time its mount helper (python3, its child) is killed with it, as a kill of the job's whole process
      // group would: then its mounts are left too.
      const helper = next === 'build' ? sh(`pgrep -P ${pid} python3 || true`).trim() : '';
      if (next === 'build') expect(helper).not.toBe('');
      if (helper) process.kill(Number(helper.split('\n')[0]), 'SIGKILL');
      b.child.kill('SIGKILL');
      await b.done;
      // What it left: its container, its secret. Its mounts (the RUN's overlay, the stage mounted for COPY --from, the
      // base's EROFS index) went with it, its mount helper reading the end of its pipe and detaching them; unless the
      // helper was killed too.
      for (let i = 0; i < 300 && !helper && mountsUnder(s) !== ''; i++) await new Promise((r) => setTimeout(r, 10));
      if (helper) expect(mountsUnder(s)).not.toBe('');
      else expect(mountsUnder(s)).toBe('');
      expect(sh(`runc list -q | grep '^hoist-${pid}-' || true`)).not.toBe('');
      expect(readdirSync('/dev/shm').filter((e) => e.startsWith(`hoist-secret-${pid}-`))).toHaveLength(1);
      // `hoist store check` finds it (and leaves it: exit 4), and after the next prune or build, nothing.
      const check = () => spawnSync(process.execPath, [cli, 'store', 'check', '--store', s], { encoding: 'utf8' });
      const found = check();
      expect(`${found.status} ${found.stdout}`).toMatch(
        /^4 left by killed builds: 1 container, .*1 secret dir \(hoist store check --repair cleans them up\)\nchecked .*: nothing broken\n$/,
      );
      const r = spawnSync(
        process.execPath,
        [
          cli,
          ...(next === 'prune'
            ? ['prune', '--store', s]
            : ['build', '--progress', 'plain', '--store', s, context('FROM scratch\nCOPY Dockerfile /\n')]),
        ],
        { encoding: 'utf8' },
      );
      expect(r.status).toBe(0);
      expect(next === 'prune' ? r.stdout : r.stderr).toMatch(
        next === 'build'
          ? /leaned up after killed builds: 1 container, [2-9] mounts, [1-3] temp dirs?, 1 secret dir/
          : /leaned up after killed builds: 1 container, [1-3] temp dirs?, 1 secret dir/,
      );
      expect(mountsUnder(s)).toBe('');
      expect(sh(`runc list -q | grep '^hoist-${pid}-' || true`)).toBe('');
      expect(readdirSync('/dev/shm').filter((e) => e.startsWith(`hoist-secret-${pid}-`))).toEqual([]);
      expect(sh('pgrep -f "[s]leep 61" || true')).toBe('');
      expect(readdirSync(path.join(s, 'tmp')).filter((e) => e.startsWith(`${pid}-`))).toEqual([]);
      const after = check();
      expect(`${after.status} ${after.stdout}`).toMatch(/^0 checked .*: nothing broken\n$/);
    }
  }, 90_000);

  test('a blob cut short in the store is fetched again by pull, a damaged one by a build that reads it', async () => {
    const img = makeImage({ files: [{ 'f.txt': 'content of the layer\n'.repeat(1000) }] });
    const ref = `${reg.host}/damaged/image:1`;
    await seed(client, ref, img);
    const s = path.join(work, 'damaged-store');
    const layer = img.layers[0];
    const blobFile = path.join(s, 'blobs', 'sha256', layer.digest.slice(7));
    const intact = () => createHash('sha256').update(readFileSync(blobFile)).digest('hex') === layer.digest.slice(7);
    expect((await hoist(['pull', '--store', s, ref])).code).toBe(0);
    truncateSync(blobFile, Math.floor(layer.size / 2));
    const again = await hoist(['pull', '--store', s, ref]);
    expect(again.code).toBe(0);
    expect(intact()).toBe(true);
    // The same size, one byte changed: found when the build reads the layer, fetched again, and the build goes on.
    const bytes = readFileSync(blobFile);
    bytes[bytes.length - 20] ^= 0xff;
    writeFileSync(blobFile, bytes);
    const built = await hoist([
      'build',
      '--store',
      s,
      '--progress',
      'quiet',
      context(`FROM ${ref}\nCOPY Dockerfile /copied\n`),
    ]);
    expect(built.err).toBe('');
    expect(built.code).toBe(0);
    expect(intact()).toBe(true);
    // And cut short, as a RUN's lower layer.
    rmSync(path.join(s, 'snapshots'), { recursive: true, force: true });
    truncateSync(blobFile, 100);
    const ran = await hoist([
      'build',
      '--store',
      s,
      '--progress',
      'quiet',
      context(`FROM {{BASE}}\nRUN --mount=type=bind,from=${ref},target=/m cat /m/f.txt > /dev/null\n`),
    ]);
    expect(ran.code).toBe(0);
    expect(intact()).toBe(true);
  }, 60_000);

  test('RUN --network and --security values BuildKit refuses fail at their line', async () => {
    const bogus = await hoist([
      'build',
      '--store',
      store,
      '--progress',
      'quiet',
      context('FROM {{BASE}}\nRUN --network=bogus true\n'),
    ]);
    expect(bogus.code).toBe(1);
    expect(bogus.err).toMatch(
      /Dockerfile:2: unsupported network mode "bogus": RUN --network takes default, none or host/,
    );
    const insecure = await hoist([
      'build',
      '--store',
      store,
      '--progress',
      'quiet',
      context('FROM {{BASE}}\nRUN --security=insecure true\n'),
    ]);
    expect(insecure.code).toBe(1);
    expect(insecure.err).toMatch(/Dockerfile:2: RUN --security=insecure is not allowed/);
  });

  test('rw bind and cache from= mounts whose source is a symlink, from a stage with device nodes', async () => {
    const r = await hoist([
      'build',
      '--store',
      store,
      '--progress',
      'plain',
      context(`FROM {{BASE}} AS s
RUN mkdir /real && echo seeded > /real/f && ln -s real /l && mknod /real/null2 c 1 3 && mknod /real/ptmx2 c 5 2
FROM {{BASE}}
RUN --mount=type=cache,id=from-link,from=s,source=/l,target=/c cat /c/f
RUN --mount=type=bind,from=s,source=/l,target=/m,rw sh -c 'cat /m/f && echo changed > /m/f && ls -l /m/null2 && rm /m/ptmx2'
RUN --mount=type=bind,from=s,source=/l,target=/m cat /m/f
`),
    ]);
    expect(r.code).toBe(0);
    expect(r.err.match(/#\d+ seeded/g)).toHaveLength(3);
  });

  test('an overlay the kernel refuses says what mount and the kernel said, not that root is needed', async () => {
    const scratch = mkdtempSync(path.join(work, 'scratch-'));
    const e = await mountOverlay([path.join(work, 'no-such-lower')], scratch).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExecError);
    expect((e as Error).message).toMatch(/cannot mount the overlay for RUN: mount: /);
    expect((e as Error).message).not.toMatch(/needs root/);
  });
});
