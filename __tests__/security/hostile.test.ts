// The hostile-input suite: what a pull request or a base image can hand hoist, made the way an attacker makes it
// (archives written byte by byte, contexts whose paths lead through symlinks, stages and images with absolute
// links), fed through every way hoist reads such input: ADD, a base image's layer (read for the filesystem index,
// unpacked for a RUN mount, applied for type=local), `hoist import`, `hoist load`, COPY --from, RUN bind and cache
// mounts. Every run is the hoist command (dist/cli.js) as a child with a time limit, so that a hang is seen even
// when it would block the event loop. For each run: it ends in time with 0 or 1 and no stack trace; nothing
// outside its target changed (a "host" directory the inputs point at, files beside the output directory, and the
// files the output directory held before); nothing of the host directory reaches the output or the log; no error
// names a path of the store's temp dirs. Real parts: Debian's docker-registry (base images), runc (RUN).
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { MediaType } from '../../src/image/media-types.js';
import { RegistryClient } from '../../src/registry/client.js';
import { blob, makeImage, pushBusyboxBase, seed, type TestImage } from '../helpers/images.js';
import { type RawEntry, rawTar } from '../helpers/raw-tar.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  cli,
  type ContextFiles,
  fingerprint,
  hoistChild,
  makeHost,
  type Run,
  runFault,
  writeFiles,
} from '../helpers/hostile.js';
import { describeWith, haveTool } from '../helpers/tools.js';

const asRoot = process.getuid?.() === 0;
const canRun = asRoot && haveTool('runc') && haveTool('getfattr');
/** Each run's limit: the slowest legitimate run here takes a second or two. */
const limitMs = 60_000;

/** Every file's content below `dir` (symlinks not followed), for looking for the host's marker. */
function contents(dir: string): string {
  let all = '';
  const visit = (p: string) => {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isFile()) all += readFileSync(p, 'latin1');
    else if (st.isDirectory()) for (const n of readdirSync(p)) visit(path.join(p, n));
  };
  visit(dir);
  return all;
}

/**
 * The cases whose steps run, again through the executors where nothing may be mounted (proot where it is installed,
 * chroot): the host stays unchanged through each (issue 34). None of them writes /dev, /proc or /sys.
 */
function withIsolations<T extends { name: string; needsRun?: boolean }>(
  cases: readonly T[],
): (T & { isolation?: 'proot' | 'chroot' })[] {
  const others = [...(haveTool('proot') && haveTool('python3') ? (['proot'] as const) : []), 'chroot' as const];
  return [
    ...cases,
    ...cases
      .filter((c) => c.needsRun)
      .flatMap((c) => others.map((isolation) => ({ ...c, name: `${c.name} (through ${isolation})`, isolation }))),
  ];
}

(asRoot ? describeWith(['docker-registry', 'busybox']) : describe.skip)('hostile input', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-hostile-'));
  const store = path.join(work, 'store');
  const {
    host,
    marker,
    before: hostBefore,
  } = makeHost(work, { 'ignore-all': '*\n', 'Dockerfile.evil': 'FROM scratch\nCOPPY {{MARKER}} /\n' });
  let busybox = '';
  const tally = { runs: 0, archives: 0, loads: 0, contexts: 0, stages: 0, failedClearly: 0, built: 0, slowestMs: 0 };

  beforeAll(async () => {
    reg = await startRegistry('anonymous');
    client = new RegistryClient();
    busybox = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(busybox, store, work);
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  let n = 0;
  /** An output directory holding files from before the build, with a file beside it. */
  function outputDir(): { dest: string; check: () => void } {
    const parent = path.join(work, `out${n++}`, 'parent');
    const dest = path.join(parent, 'out');
    mkdirSync(path.join(dest, 'keep'), { recursive: true });
    writeFileSync(path.join(parent, 'sibling.txt'), 'beside the output\n');
    writeFileSync(path.join(dest, 'precious.txt'), 'was here before the build\n');
    writeFileSync(path.join(dest, 'keep', 'inner.txt'), 'also here before\n');
    const beside = readFileSync(path.join(parent, 'sibling.txt'), 'utf8');
    return {
      dest,
      check: () => {
        expect(readFileSync(path.join(parent, 'sibling.txt'), 'utf8')).toBe(beside);
        expect(readFileSync(path.join(dest, 'precious.txt'), 'utf8')).toBe('was here before the build\n');
        expect(readFileSync(path.join(dest, 'keep', 'inner.txt'), 'utf8')).toBe('also here before\n');
        expect(contents(dest)).not.toContain(marker);
      },
    };
  }

  /** Runs hoist and asserts what holds for every run; answers the run for the case's own expectations. */
  async function safely(label: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<Run> {
    const r = await hoistChild(args, { input, limitMs, ...(env ? { env: { ...process.env, ...env } } : {}) });
    tally.runs++;
    tally.slowestMs = Math.max(tally.slowestMs, r.ms);
    const said = `${label}: hoist ${args.join(' ')} → ${r.code}\n${r.err}`;
    const fault = runFault(r);
    if (fault) throw new Error(`${said}\n${fault}${r.hung ? ` (killed after ${limitMs} ms)` : ''}`);
    if (r.err.includes(path.join(store, 'tmp'))) throw new Error(`${said}\nnames a temp path of the store`);
    expect(`${r.out}${r.err}`).not.toContain(marker);
    expect(fingerprint(host)).toEqual(hostBefore);
    if (r.code === 0) tally.built++;
    else tally.failedClearly++;
    return r;
  }

  const withStore = (args: string[]) => [args[0], '--store', store, ...args.slice(1)];

  let ctxN = 0;
  function context(dockerfile: string, files: ContextFiles = {}): string {
    const own: ContextFiles =
      'Dockerfile' in files
        ? {}
        : { Dockerfile: dockerfile.replaceAll('{{BUSYBOX}}', busybox).replaceAll('{{HOST}}', host) };
    return writeFiles(path.join(work, `ctx${ctxN++}`), { ...own, 'marker.txt': 'an ordinary file\n', ...files });
  }

  async function build(label: string, ctx: string, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<Run> {
    const out = outputDir();
    const r = await safely(
      label,
      withStore(['build', '--progress', 'plain', ...extra, '-o', `type=local,dest=${out.dest}`, ctx]),
      undefined,
      env,
    );
    out.check();
    return r;
  }

  // ---- archives ----
  const f = (name: string, body: string | Buffer = 'x', extra: Partial<RawEntry> = {}): RawEntry => ({
    name,
    body,
    ...extra,
  });
  const d = (name: string): RawEntry => ({ name, flag: '5', mode: '0000755\0' });
  const s = (name: string, target: string): RawEntry => ({ name, flag: '2', linkname: target, mode: '0000777\0' });
  const h = (name: string, target: string): RawEntry => ({ name, flag: '1', linkname: target });
  const climb = '../'.repeat(12);

  interface Hostile {
    name: string;
    tar: () => Buffer;
    /** what ADD of it must say (when it must fail) */
    addFails?: RegExp;
    /** what a build on it as a base layer must say (default: as ADD) */
    layerFails?: RegExp;
    /** not a well-formed archive at all: `hoist import` must refuse it too */
    malformed?: boolean;
  }

  const archives: Hostile[] = [
    { name: 'a whiteout of ..', tar: () => rawTar([f('.wh...', '')]), layerFails: /invalid whiteout "\.wh\.\.\."/ },
    { name: 'a whiteout of .', tar: () => rawTar([f('.wh..', '')]), layerFails: /invalid whiteout/ },
    { name: 'a whiteout of nothing', tar: () => rawTar([f('.wh.', '')]), layerFails: /invalid whiteout/ },
    {
      name: 'a whiteout of .. in a directory',
      tar: () => rawTar([d('a/'), f('a/.wh...', '')]),
      layerFails: /invalid whiteout/,
    },
    { name: 'an opaque whiteout at the top', tar: () => rawTar([f('.wh..wh..opq', ''), f('new.txt', 'n')]) },
    { name: 'names that climb', tar: () => rawTar([f(`${climb}escaped.txt`), f('a/../../b.txt')]) },
    { name: 'an absolute name at the host directory', tar: () => rawTar([f(`${host}/victim.txt`, 'overwritten')]) },
    {
      name: 'writes through an absolute symlink',
      tar: () =>
        rawTar([
          s('link', host),
          f('link/victim.txt', 'overwritten'),
          f('link/new.txt', 'new'),
          d('link/dir/'),
          f('link/dir/inner.txt', 'overwritten'),
        ]),
    },
    {
      name: 'a write through a relative symlink that climbs',
      tar: () => rawTar([s('up', climb), f(`up${host}/victim.txt`, 'overwritten')]),
    },
    {
      name: 'a whiteout through an absolute symlink',
      tar: () => rawTar([s('link', host), f('link/.wh.victim.txt', ''), f('link/dir/.wh.inner.txt', '')]),
    },
    {
      name: 'an opaque whiteout through an absolute symlink',
      tar: () => rawTar([s('link', host), f('link/.wh..wh..opq', ''), f('link/dir/.wh..wh..opq', '')]),
    },
    {
      name: 'a directory made a symlink after its children',
      tar: () => rawTar([d('d/'), d('d/dir/'), f('d/dir/x'), s('d', host)]),
    },
    {
      name: 'a hard link to a host path',
      tar: () => rawTar([h('hl', `${host}/secret.txt`)]),
      addFails: /hard link/,
      layerFails: /hard link/,
    },
    {
      name: 'a hard link that climbs',
      tar: () => rawTar([h('hl', `${climb}${host}/secret.txt`)]),
      addFails: /hard link/,
      layerFails: /hard link/,
    },
    {
      name: 'a hard link through an absolute symlink',
      tar: () => rawTar([s('link', host), h('hl', 'link/secret.txt')]),
      addFails: /hard link/,
      layerFails: /hard link/,
    },
    {
      name: 'a hard link to a directory',
      tar: () => rawTar([d('dir/'), h('hl', 'dir')]),
      addFails: /hard link to "dir", a directory/,
    },
    { name: 'a hard link to itself', tar: () => rawTar([h('hl', 'hl')]), addFails: /entry "hl": hard link/ },
    {
      name: 'a hard link to a missing file',
      tar: () => rawTar([h('hl', 'nothing')]),
      addFails: /entry "hl": hard link to "nothing", which is not in the archive/,
    },
    { name: 'a file, then a directory of that name', tar: () => rawTar([f('a'), d('a/'), f('a/b')]) },
    {
      name: 'a file under a file',
      tar: () => rawTar([f('a'), f('a/b')]),
      addFails: /entry "a\/b": .*\/a is not a directory/,
    },
    {
      name: 'a symlink loop in a path',
      tar: () => rawTar([s('a', 'b'), s('b', 'a'), f('a/x')]),
      addFails: /too many levels of symbolic links/,
    },
    { name: 'device nodes', tar: () => rawTar([{ name: 'null2', flag: '3', mode: '0000666\0' }, f('after')]) },
    {
      name: 'PAX size=abc',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { pax: { size: 'abc' } })]),
      addFails: /invalid PAX size="abc" for "f"/,
      layerFails: /invalid PAX size/,
    },
    {
      name: 'PAX size=-1',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { pax: { size: '-1' } }), f('next')]),
      addFails: /invalid PAX size="-1"/,
    },
    {
      name: 'PAX mtime=abc',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { pax: { mtime: 'abc' } })]),
      addFails: /invalid PAX mtime/,
    },
    {
      name: 'PAX uid=xyz',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { pax: { uid: 'xyz' } })]),
      addFails: /invalid PAX uid/,
    },
    {
      name: 'a PAX path with a NUL byte',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { pax: { path: 'a\0b' } })]),
      addFails: /NUL byte/,
    },
    {
      name: 'a malformed PAX record',
      malformed: true,
      tar: () => rawTar([{ name: 'p', flag: 'x', body: '99999 path=x\n' }, f('f')]),
      addFails: /malformed PAX/,
    },
    {
      name: 'a 2 MiB PAX record',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { pax: { comment: 'x'.repeat(2 << 20) } })]),
      addFails: /PAX headers of \d+ bytes, more than the 1024 KiB limit/,
    },
    {
      name: 'PAX headers piling up',
      malformed: true,
      tar: () =>
        rawTar([
          ...Array.from(
            { length: 8 },
            (_, i): RawEntry => ({ name: `p${i}`, flag: 'x', body: paxOf(`k${i}`, 200_000) }),
          ),
          f('f'),
        ]),
      addFails: /more than the 1024 KiB limit/,
    },
    {
      name: 'a 2 MiB GNU long name',
      malformed: true,
      tar: () => rawTar([{ name: '././@LongLink', flag: 'L', body: 'a'.repeat(2 << 20) }, f('x')]),
      addFails: /GNU long name of \d+ bytes/,
    },
    {
      name: 'a size field that is not octal',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { size: '0000000abc9\0' })]),
      addFails: /invalid size "0000000abc9"/,
    },
    {
      name: 'a negative base-256 size',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { size: '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe' })]),
      addFails: /negative size/,
    },
    {
      name: 'a huge base-256 size',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { size: '\x80\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff' })]),
      addFails: /size too large/,
    },
    {
      name: 'an unknown entry type',
      malformed: true,
      tar: () => rawTar([f('f', 'x', { flag: 'Z' })]),
      addFails: /unsupported tar entry type "Z"/,
    },
    {
      name: 'a second entry with a bad checksum',
      malformed: true,
      tar: () => rawTar([f('ok'), f('bad', 'x', { checksum: '0001234\0 ' })]),
      addFails: /checksum/,
    },
    {
      name: 'truncated inside an entry',
      malformed: true,
      tar: () => rawTar([f('big', 'x'.repeat(5000))]).subarray(0, 2048),
      addFails: /unexpected end of tar archive inside "big"/,
    },
    { name: 'truncated after an entry', malformed: true, tar: () => rawTar([f('a')], { end: false }) },
    {
      name: 'a truncated gzip',
      malformed: true,
      tar: () => gzipSync(rawTar([f('big', randomBytes(100_000))])).subarray(0, 30_000),
      addFails: /cannot unpack x\.tar: the gzip data is truncated/,
      layerFails: /gzip data is truncated/,
    },
  ];

  function paxOf(key: string, size: number): Buffer {
    const rec = (len: number) =>
      `${len} ${key}=${'v'.repeat(Math.max(0, len - String(len).length - key.length - 3))}\n`;
    return Buffer.from(rec(size));
  }

  let hostileN = 0;
  /** A base image of one layer holding exactly these bytes (a gzip stream is stored as it is). */
  async function hostileImage(bytes: Buffer): Promise<string> {
    const ref = `${reg.host}/hostile/a${hostileN++}:1`;
    const gz = bytes[0] === 0x1f && bytes[1] === 0x8b;
    const layer = blob(MediaType.dockerLayerGzip, gz ? bytes : gzipSync(bytes));
    const img: TestImage = makeImage({ tars: [bytes] });
    if (gz) {
      img.layers = [layer];
      const manifest = JSON.parse(img.manifest.bytes.toString());
      manifest.layers = [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }];
      img.manifest = blob(MediaType.dockerManifest, Buffer.from(JSON.stringify(manifest)));
    }
    await seed(client, ref, img);
    return ref;
  }

  test.each(archives.map((a) => [a.name, a] as const))(
    'archive: %s',
    async (_name, a) => {
      tally.archives++;
      const bytes = a.tar();
      // ADD of the archive from the context, the result exported with type=local
      const ctx = context('FROM scratch\nCOPY marker.txt /m.txt\nADD x.tar /\n', { 'x.tar': bytes });
      const added = await build(`ADD ${a.name}`, ctx);
      if (a.addFails) {
        expect(added.code).toBe(1);
        expect(added.err).toMatch(a.addFails);
        expect(added.err).toMatch(/Dockerfile:3/);
      }
      // The same bytes as a base image's layer: indexed (COPY), applied (type=local) ...
      const image = await hostileImage(bytes);
      const based = await build(`FROM ${a.name}`, context(`FROM ${image}\nCOPY marker.txt /m.txt\n`));
      if (a.layerFails ?? a.addFails) {
        expect(based.code).toBe(1);
        expect(based.err).toMatch(a.layerFails ?? (a.addFails as RegExp));
      }
      // ... and a lower under a RUN mount: an EROFS index of its tar where the kernel mounts one, and unpacked into a
      // snapshot directory (HOIST_LOWERS=directories, as where it cannot).
      if (canRun) {
        for (const lowers of [undefined, 'directories']) {
          const ran = await build(
            `RUN over ${a.name}${lowers ? ` (${lowers})` : ''}`,
            context(
              `FROM {{BUSYBOX}}\nRUN --mount=type=bind,from=${image},target=/h sh -c 'ls -laR /h; cat /h/* /h/*/* 2>/dev/null; true'\n`,
            ),
            [],
            lowers ? { HOIST_LOWERS: lowers } : undefined,
          );
          if (a.layerFails ?? a.addFails) expect(ran.code).toBe(1);
        }
      }
      // `hoist import` takes it as a root filesystem; `hoist load` reads it as an archive of images.
      const file = path.join(work, `archive${hostileN}.tar`);
      writeFileSync(file, bytes);
      const imported = await safely(`import ${a.name}`, withStore(['import', file, `imported/a${hostileN}:1`]));
      if (a.malformed) {
        expect(imported.code).toBe(1);
        expect(imported.err).toContain(file);
      }
      const loaded = await safely(`load ${a.name}`, withStore(['load', '-i', file]));
      expect(loaded.code).toBe(1);
      if (a.malformed) expect(loaded.err).toContain(file);
    },
    300_000,
  );

  // ---- archives for `hoist load` whose documents are wrong ----
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const configName = `blobs/sha256/${createHash('sha256').update(config).digest('hex')}`;
  const loads: { name: string; files: Record<string, string | Buffer>; says: RegExp }[] = [
    {
      name: 'manifest.json an object',
      files: { 'manifest.json': '{"Config":"c.json"}' },
      says: /manifest\.json is not a list of images/,
    },
    {
      name: 'a manifest.json entry without Layers',
      files: { 'manifest.json': '[{"Config":"c.json","RepoTags":["x:1"]}]' },
      says: /manifest\.json entry 0 has no Layers list/,
    },
    {
      name: 'a manifest.json entry that is no object',
      files: { 'manifest.json': '[7]' },
      says: /entry 0 is not an object/,
    },
    {
      name: 'RepoTags that are not names',
      files: { 'manifest.json': '[{"Config":"c.json","Layers":[],"RepoTags":"x"}]' },
      says: /RepoTags that are not a list/,
    },
    {
      name: 'a Config the archive lacks',
      files: { 'manifest.json': '[{"Config":"missing.json","Layers":[]}]' },
      says: /names missing\.json, which is not in the archive/,
    },
    {
      name: 'a layer the archive lacks',
      files: { 'manifest.json': `[{"Config":"${configName}","Layers":["nope/layer.tar"]}]`, [configName]: config },
      says: /lists 0 diff_ids but manifest\.json 1 layers|names nope\/layer\.tar/,
    },
    {
      name: 'manifest.json that is no JSON',
      files: { 'manifest.json': '[{' },
      says: /manifest\.json is not valid JSON/,
    },
    {
      name: 'index.json whose manifests is not a list',
      files: { 'index.json': '{"schemaVersion":2,"manifests":{}}' },
      says: /index\.json's manifests is not a list/,
    },
    { name: 'index.json an array', files: { 'index.json': '[]' }, says: /index\.json is not an OCI image index/ },
    {
      name: 'an index.json manifest without a digest',
      files: { 'index.json': '{"manifests":[{"mediaType":"x"}]}' },
      says: /manifests\[0\] is not a descriptor with a digest/,
    },
    {
      name: 'an index.json manifest with a bad digest',
      files: { 'index.json': '{"manifests":[{"digest":"sha256:xyz"}]}' },
      says: /digest/,
    },
    {
      name: 'a blob whose content is not its name',
      files: { 'blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000': 'not that' },
      says: /digest/,
    },
  ];

  test.each(loads.map((l) => [l.name, l] as const))('load: %s', async (_name, l) => {
    const file = path.join(work, `load${n++}.tar`);
    writeFileSync(file, rawTar(Object.entries(l.files).map(([name, body]) => f(name, body))));
    const r = await safely(`load ${l.name}`, withStore(['load', '-i', file]));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(l.says);
    tally.loads++;
  });

  test('escape 1: a whiteout of .. in an ADDed archive cannot empty the parent of the output (the probe, step by step)', async () => {
    const ctx = context('FROM scratch\nADD x.tar /\n', { 'x.tar': rawTar([f('.wh...', '')]) });
    const out = outputDir();
    const r = await safely(
      '.wh... through type=local',
      withStore(['build', '--progress', 'plain', '-o', `type=local,dest=${out.dest}`, ctx]),
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/invalid whiteout "\.wh\.\.\.": it names no file/);
    out.check();
    // dest=. too: the working directory's parent stays.
    const cwdParent = path.join(work, 'cwd-parent');
    mkdirSync(path.join(cwdParent, 'cwd'), { recursive: true });
    writeFileSync(path.join(cwdParent, 'stays.txt'), 'stays');
    const here = await new Promise<Run>((resolve) => {
      const child = spawn(
        process.execPath,
        [cli, 'build', '--store', store, '--progress', 'quiet', '-o', 'type=local,dest=.', ctx],
        { cwd: path.join(cwdParent, 'cwd') },
      );
      let err = '';
      child.stderr.on('data', (c: Buffer) => void (err += c.toString()));
      child.on('close', (code) => resolve({ code, out: '', err, hung: false, ms: 0 }));
    });
    expect(here.code).toBe(1);
    expect(readFileSync(path.join(cwdParent, 'stays.txt'), 'utf8')).toBe('stays');
  });

  test('an opaque whiteout in the image removes what lower layers had, never what the output held before', async () => {
    const lower = rawTar([f('from-lower.txt', 'lower'), d('keep/'), f('keep/lower.txt', 'lower')]);
    const upper = rawTar([f('.wh..wh..opq', ''), f('keep/.wh..wh..opq', ''), f('from-upper.txt', 'upper')]);
    const ref = `${reg.host}/hostile/opaque:1`;
    await seed(client, ref, makeImage({ tars: [lower, upper] }));
    const out = outputDir();
    const r = await safely(
      'opaque into type=local',
      withStore([
        'build',
        '--progress',
        'quiet',
        '-o',
        `type=local,dest=${out.dest}`,
        context(`FROM ${ref}\nCOPY marker.txt /m.txt\n`),
      ]),
    );
    expect(r.code).toBe(0);
    out.check();
    expect(existsSync(path.join(out.dest, 'from-lower.txt'))).toBe(false);
    expect(existsSync(path.join(out.dest, 'keep', 'lower.txt'))).toBe(false);
    expect(readFileSync(path.join(out.dest, 'from-upper.txt'), 'utf8')).toBe('upper');
  });

  // ---- contexts whose paths lead through symlinks ----
  /** `fails`: what the build must say; `either`: only that it is safe (a wildcard that matches nothing) */
  const contexts: {
    name: string;
    dockerfile: string;
    files: Record<string, string | { symlink: string }>;
    fails?: RegExp;
    either?: boolean;
    needsRun?: boolean;
  }[] = [
    {
      name: 'escape 2: COPY through an absolute symlink to a host directory',
      dockerfile: 'FROM scratch\nCOPY etcdir/secret.txt /x\n',
      files: { etcdir: { symlink: host } },
      fails: /etcdir\/secret\.txt: not found in the build context/,
    },
    {
      name: 'COPY through the same link with a wildcard',
      dockerfile: 'FROM scratch\nCOPY marker.txt etcdir/secr* /x/\n',
      files: { etcdir: { symlink: host } },
      either: true,
    },
    {
      name: 'COPY of a whole directory through the link',
      dockerfile: 'FROM scratch\nCOPY etcdir /x/\n',
      files: { etcdir: { symlink: host } },
      fails: /not found in the build context/,
    },
    {
      name: 'COPY through a relative symlink that climbs',
      dockerfile: `FROM scratch\nCOPY up${host}/secret.txt /x\n`,
      files: { up: { symlink: climb } },
      fails: /not found in the build context/,
    },
    {
      name: 'COPY through a link to a link to the host',
      dockerfile: 'FROM scratch\nCOPY a/secret.txt /x\n',
      files: { a: { symlink: 'b' }, b: { symlink: host } },
      fails: /not found/,
    },
    {
      name: 'ADD through an absolute symlink',
      dockerfile: 'FROM scratch\nADD etcdir/secret.txt /x\n',
      files: { etcdir: { symlink: host } },
      fails: /not found/,
    },
    {
      name: 'COPY of a symlink to a host file',
      dockerfile: 'FROM scratch\nCOPY s /x\n',
      files: { s: { symlink: `${host}/secret.txt` } },
      fails: /not found/,
    },
    {
      name: 'COPY of a directory holding a link out (kept as a link)',
      dockerfile: 'FROM scratch\nCOPY tree /t\n',
      files: { 'tree/out': { symlink: host }, 'tree/file': 'f' },
    },
    {
      name: 'a .dockerignore that is a symlink to a host file',
      dockerfile: 'FROM scratch\nCOPY marker.txt /m\n',
      files: { '.dockerignore': { symlink: `${host}/ignore-all` } },
    },
    {
      name: 'a Dockerfile that is a symlink to a host file',
      dockerfile: '',
      files: { Dockerfile: { symlink: `${host}/Dockerfile.evil` } },
      fails: /cannot read the Dockerfile .*: no such file in the build context/,
    },
    {
      name: 'escape 3: a bind mount of a symlink to a host directory',
      dockerfile: 'FROM {{BUSYBOX}}\nRUN --mount=type=bind,source=etcdir,target=/m cat /m/secret.txt\n',
      files: { etcdir: { symlink: host } },
      fails: /--mount source "etcdir" not found in the build context/,
      needsRun: true,
    },
    {
      name: 'a bind mount of a host file through a link',
      dockerfile: 'FROM {{BUSYBOX}}\nRUN --mount=type=bind,source=etcdir/secret.txt,target=/m cat /m\n',
      files: { etcdir: { symlink: host } },
      fails: /not found/,
      needsRun: true,
    },
    {
      name: 'a rw bind mount of a symlink to a host directory',
      dockerfile:
        'FROM {{BUSYBOX}}\nRUN --mount=type=bind,source=etcdir,target=/m,rw sh -c "cat /m/secret.txt; rm -rf /m/*"\n',
      files: { etcdir: { symlink: host } },
      fails: /not found/,
      needsRun: true,
    },
    {
      name: 'a rw bind mount of a link to a context directory',
      dockerfile:
        'FROM {{BUSYBOX}}\nRUN --mount=type=bind,source=l,target=/m,rw sh -c "cat /m/f; echo changed > /m/f; rm -rf /m/sub"\n',
      files: { 'real/f': 'ok', 'real/sub/g': 'g', l: { symlink: 'real' } },
      needsRun: true,
    },
  ];

  test.each(withIsolations(contexts).map((c) => [c.name, c] as const))('context: %s', async (_name, c) => {
    if (c.needsRun && !canRun) return;
    tally.contexts++;
    const ctx = context(c.dockerfile, c.files);
    const before = fingerprint(ctx);
    const r = await build(c.name, ctx, c.isolation ? ['--isolation', c.isolation] : []);
    if (c.fails) {
      expect(r.code).toBe(1);
      expect(r.err).toMatch(c.fails);
    } else if (!c.either) {
      expect(r.code).toBe(0);
    }
    // The context is the user's checkout: a build never changes it (rw mounts write to a throwaway view).
    expect(fingerprint(ctx)).toEqual(before);
  });

  test('ADD of a URL whose name climbs (..%2f…) writes the download inside the build, named by its last component', async () => {
    const server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('overwritten by a download\n'),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const climbing = `${'..%2f'.repeat(12)}${encodeURIComponent(host.slice(1))}%2fvictim.txt`;
      const out = outputDir();
      const r = await safely(
        'ADD climbing URL',
        withStore([
          'build',
          '--progress',
          'plain',
          '-o',
          `type=local,dest=${out.dest}`,
          context(`FROM scratch\nADD http://127.0.0.1:${port}/x/${climbing} /downloaded/\n`),
        ]),
      );
      expect(r.code).toBe(0);
      out.check();
      expect(readFileSync(path.join(out.dest, 'downloaded', 'victim.txt'), 'utf8')).toBe('overwritten by a download\n');
    } finally {
      server.close();
    }
  });

  // ---- stages and images with absolute links ----
  const linkImage = async () => {
    const ref = `${reg.host}/hostile/link:1`;
    await seed(client, ref, makeImage({ tars: [rawTar([s('data', host), s('up', climb), f('marker.txt')])] }));
    return ref;
  };
  const stages: { name: string; dockerfile: string; fails?: RegExp; either?: boolean; needsRun?: boolean }[] = [
    {
      name: 'escape 4: COPY --from a stage that linked /data to the host',
      dockerfile:
        'FROM {{BUSYBOX}} AS evil\nRUN ln -s {{HOST}} /data\nFROM scratch\nCOPY --from=evil /data/secret.txt /x\n',
      fails: /"\/data\/secret\.txt": not found/,
      needsRun: true,
    },
    {
      name: 'the same through a wildcard',
      dockerfile:
        'FROM {{BUSYBOX}} AS evil\nRUN ln -s {{HOST}} /data\nFROM scratch\nCOPY --from=evil /bin/busybox /data/secr* /x/\n',
      either: true,
      needsRun: true,
    },
    {
      name: 'a bind mount from a stage through its link',
      dockerfile:
        'FROM {{BUSYBOX}} AS evil\nRUN ln -s {{HOST}} /data\nFROM {{BUSYBOX}}\nRUN --mount=type=bind,from=evil,source=/data/secret.txt,target=/s cat /s\n',
      fails: /not found in evil/,
      needsRun: true,
    },
    {
      name: 'a cache mount from= a stage through its link',
      dockerfile:
        'FROM {{BUSYBOX}} AS evil\nRUN ln -s {{HOST}} /data\nFROM {{BUSYBOX}}\nRUN --mount=type=cache,id=evil,from=evil,source=/data,target=/c cat /c/secret.txt\n',
      fails: /not found in evil/,
      needsRun: true,
    },
    {
      name: 'escape 4: COPY --from a registry image whose layer links to the host',
      dockerfile: 'FROM scratch\nCOPY --from={{LINKIMAGE}} /data/secret.txt /x\n',
      fails: /not found/,
    },
    {
      name: 'COPY --from the image through a link that climbs',
      dockerfile: `FROM scratch\nCOPY --from={{LINKIMAGE}} /up${host}/secret.txt /x\n`,
      fails: /not found/,
    },
    {
      name: 'COPY --from a scratch stage made by ADD of a linking tar',
      dockerfile: 'FROM scratch AS evil\nADD link.tar /\nFROM scratch\nCOPY --from=evil /data/dir/inner.txt /x\n',
      fails: /not found/,
    },
    {
      name: 'WORKDIR and COPY through an image link',
      dockerfile: 'FROM {{LINKIMAGE}}\nWORKDIR /data/new\nCOPY marker.txt /data/m.txt\n',
    },
    {
      name: 'RUN in a WORKDIR under a stage link',
      dockerfile: 'FROM {{BUSYBOX}}\nRUN ln -s {{HOST}} /w\nWORKDIR /w/new/deeper\nRUN touch made-here\n',
      needsRun: true,
    },
  ];

  test.each(withIsolations(stages).map((c) => [c.name, c] as const))('stage or image: %s', async (_name, c) => {
    if (c.needsRun && !canRun) return;
    tally.stages++;
    const dockerfile = c.dockerfile.replaceAll(
      '{{LINKIMAGE}}',
      c.dockerfile.includes('{{LINKIMAGE}}') ? await linkImage() : '',
    );
    const r = await build(
      c.name,
      context(dockerfile, { 'link.tar': rawTar([s('data', host)]) }),
      c.isolation ? ['--isolation', c.isolation] : [],
    );
    if (c.fails) {
      expect(r.code).toBe(1);
      expect(r.err).toMatch(c.fails);
    } else if (!c.either) {
      expect(r.code).toBe(0);
    }
  });

  test('the counts', () => {
    const summary = `hostile input: ${tally.runs} runs (${tally.archives} archives, ${tally.loads} load archives, ${tally.contexts} contexts, ${tally.stages} stages/images): ${tally.built} built, ${tally.failedClearly} failed with a clear error, 0 hung, 0 stack traces, host and outputs unchanged; slowest run ${tally.slowestMs} ms`;
    process.stderr.write(`${summary}\n`);
    expect(tally.archives).toBe(archives.length);
    expect(tally.runs).toBeGreaterThanOrEqual(archives.length * (canRun ? 5 : 4) + 3);
    expect(tally.built + tally.failedClearly).toBe(tally.runs);
  });
});
