// EROFS tar indexes judged by the kernel: each tar's index is mounted with the tar (file-backed, and on loop devices)
// and the tree the kernel shows must be the tree extractLayer makes of the same tar for an overlay lower (paths,
// types, modes, owners, times, xattrs, hard links, devices, link targets, content), over hand-made layers, GNU tar's,
// the hostile suite's kind of archives and a Debian base.
import { spawnSync } from 'node:child_process';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  linkSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ErofsIndexBuilder, ErofsIndexError } from '../../src/layer/erofs.js';
import { extractLayer } from '../../src/layer/extract.js';
import { readTar, TarError } from '../../src/layer/tar.js';
import { cleanEntryName } from '../../src/layer/rooted.js';
import { ErofsMounts, type ErofsMode, ErofsUnavailableError } from '../../src/exec/erofs-mount.js';
import { debianTar } from '../helpers/debian.js';
import { type RawEntry, rawTar } from '../helpers/raw-tar.js';
import { haveTool, pathWithout, run } from '../helpers/tools.js';

const asRoot = process.getuid?.() === 0;
const erofsHere =
  asRoot &&
  haveTool('python3') &&
  spawnSync('sh', ['-c', 'grep -qw erofs /proc/filesystems || modprobe erofs']).status === 0;

/** Every entry below `root` (and root itself as ''): what lstat, readlink, the xattrs and the content say. */
function tree(root: string): Record<string, Record<string, unknown>> {
  const py = `
import os, sys, json, hashlib, stat
root = sys.argv[1].encode()
out = {}
def look(p):
    st = os.lstat(p)
    e = {'mode': st.st_mode, 'uid': st.st_uid, 'gid': st.st_gid, 'mtime': st.st_mtime_ns, 'ino': st.st_ino, 'nlink': st.st_nlink}
    if stat.S_ISLNK(st.st_mode): e['target'] = os.readlink(p).decode('utf-8', 'surrogateescape')
    elif stat.S_ISREG(st.st_mode):
        with open(p, 'rb') as f: e['sha'] = hashlib.sha256(f.read()).hexdigest()
        e['size'] = st.st_size
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode): e['rdev'] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
    x = {}
    for k in os.listxattr(p, follow_symlinks=False):
        x[k] = os.getxattr(p, k, follow_symlinks=False).hex()
    e['xattrs'] = x
    return e
out[''] = look(root)
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n)
        out[os.path.relpath(p, root).decode('utf-8', 'surrogateescape')] = look(p)
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', py, root], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/**
 * A tree in a form two unpackings can be compared by: hard links as groups (the first name of each inode), times
 * only for what the tar names (a directory made for a parent gets the time it was made), and the directory mark the
 * index adds for overlayfs (trusted.overlay.origin) left out.
 */
function comparable(
  t: Record<string, Record<string, unknown>>,
  named: Set<string>,
): Record<string, Record<string, unknown>> {
  const firstOf = new Map<number, string>();
  for (const p of Object.keys(t).sort())
    if (!(((t[p].mode as number) & 0o170000) === 0o040000) && !firstOf.has(t[p].ino as number))
      firstOf.set(t[p].ino as number, p);
  const out: Record<string, Record<string, unknown>> = {};
  for (const [p, e] of Object.entries(t)) {
    const isDir = ((e.mode as number) & 0o170000) === 0o040000;
    const { ino, nlink, mtime, xattrs, ...rest } = e;
    const x = { ...(xattrs as Record<string, string>) };
    delete x['trusted.overlay.origin'];
    out[p] = {
      ...rest,
      xattrs: x,
      ...(isDir ? {} : { link: firstOf.get(ino as number), nlink }),
      ...(named.has(p) ? { mtime: Math.round((mtime as number) / 1000) } : {}),
    };
  }
  return out;
}

async function buildIndex(tar: string): Promise<{ index: Buffer; named: Set<string> }> {
  const b = new ErofsIndexBuilder();
  const named = new Set<string>();
  for await (const { header, body, offset } of readTar(createReadStream(tar))) {
    body.resume();
    b.add(header, offset);
    // (the root itself is never an entry extractLayer makes: "./" names the directory it unpacks into)
    if (header.type !== 'hardlink' && cleanEntryName(header.name) !== '') named.add(cleanEntryName(header.name));
  }
  return { index: b.finish(statSync(tar).size), named };
}

(erofsHere ? describe : describe.skip)('EROFS tar index', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-erofs-'));
  const mounts: ErofsMounts[] = [];
  let n = 0;
  afterAll(async () => {
    for (const m of mounts) await m.close();
    rmSync(work, { recursive: true, force: true });
  });

  /** The tar unpacked by extractLayer and mounted as an index (each way): the trees must be the same. */
  /** 'loop (losetup)': loop devices set up by losetup and mount(8), as where python3 is missing */
  async function same(
    tarBytes: Buffer | string,
    modes: (ErofsMode | 'loop (losetup)')[] = ['file', 'loop'],
  ): Promise<Record<string, Record<string, unknown>>> {
    const dir = path.join(work, String(n++));
    mkdirSync(dir);
    const tar = typeof tarBytes === 'string' ? tarBytes : path.join(dir, 'layer.tar');
    if (typeof tarBytes !== 'string') writeFileSync(tar, tarBytes);
    const unpacked = path.join(dir, 'unpacked');
    await extractLayer(createReadStream(tar), unpacked, { whiteouts: 'overlay' });
    const { index, named } = await buildIndex(tar);
    writeFileSync(path.join(dir, 'index.erofs'), index);
    const expected = comparable(tree(unpacked), named);
    for (const mode of modes) {
      const savedPath = process.env.PATH;
      if (mode === 'loop (losetup)') process.env.PATH = pathWithout(['python3']);
      const m = new ErofsMounts(mode === 'file' ? 'file' : 'loop', path.join(dir, `mnt-${mode.replace(/\W+/g, '-')}`));
      process.env.PATH = savedPath;
      mounts.push(m);
      const [mounted] = await m.mount([{ tar, index: path.join(dir, 'index.erofs') }]);
      const got = comparable(tree(mounted), named);
      // A PAX time with a fraction goes through a double on both roads: a microsecond apart at most.
      for (const [p, e] of Object.entries(got))
        if (Math.abs((e.mtime as number) - (expected[p]?.mtime as number)) <= 1) e.mtime = expected[p].mtime;
      expect(got).toEqual(expected);
      await m.close();
    }
    return expected;
  }

  const f = (name: string, body: string | Buffer = 'x', extra: Partial<RawEntry> = {}): RawEntry => ({
    name,
    body,
    ...extra,
  });
  const d = (name: string, mode = '0000755\0'): RawEntry => ({ name, flag: '5', mode });
  const s = (name: string, target: string): RawEntry => ({ name, flag: '2', linkname: target, mode: '0000777\0' });
  const h = (name: string, target: string): RawEntry => ({ name, flag: '1', linkname: target });

  test('a directory GNU tar wrote: every kind of entry, xattrs, modes, owners, long and non-UTF-8 names, big and empty files', async () => {
    const src = path.join(work, 'src');
    mkdirSync(path.join(src, 'a/b/c'), { recursive: true });
    writeFileSync(path.join(src, 'a/b/c/deep.txt'), 'deep\n');
    writeFileSync(path.join(src, 'empty'), '');
    writeFileSync(path.join(src, 'block-sized'), Buffer.alloc(512, 7));
    writeFileSync(path.join(src, 'big.bin'), Buffer.alloc(5 << 20, 3).fill(9, 1000, 2000));
    writeFileSync(path.join(src, 'odd.bin'), Buffer.alloc(4097, 1));
    writeFileSync(path.join(src, 'setuid'), '#!/bin/sh\n', { mode: 0o4755 });
    run('chmod', ['4755', path.join(src, 'setuid')]);
    symlinkSync('a/b/c/deep.txt', path.join(src, 'rel-link'));
    symlinkSync('/etc/passwd', path.join(src, 'abs-link'));
    symlinkSync('x'.repeat(1000), path.join(src, 'long-target'));
    linkSync(path.join(src, 'a/b/c/deep.txt'), path.join(src, 'hard'));
    linkSync(path.join(src, 'a/b/c/deep.txt'), path.join(src, 'a/hard2'));
    run('mkfifo', [path.join(src, 'fifo')]);
    run('mknod', [path.join(src, 'null2'), 'c', '1', '3']);
    run('mknod', [path.join(src, 'blk'), 'b', '7', '300']);
    writeFileSync(path.join(src, 'n'.repeat(255)), 'longest name');
    mkdirSync(path.join(src, `${'d'.repeat(120)}/${'e'.repeat(120)}`), { recursive: true });
    writeFileSync(path.join(src, `${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(100)}`), 'long path');
    writeFileSync(Buffer.from(path.join(src, 'caf\xe9.txt'), 'latin1'), 'latin-1 name');
    run('chown', ['1234:5678', path.join(src, 'a/b')]);
    run('chown', ['-h', '4000000:4000001', path.join(src, 'abs-link')]);
    run('setfattr', ['-n', 'user.note', '-v', 'hello', path.join(src, 'big.bin')]);
    run('setfattr', ['-n', 'security.capability', '-v', '0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=', path.join(src, 'setuid')]);
    run('setfattr', ['-n', 'trusted.mark', '-v', 'x', path.join(src, 'a')]);
    run('touch', ['-d', '2001-02-03 04:05:06.123456789', path.join(src, 'odd.bin')]);
    for (let i = 0; i < 300; i++) writeFileSync(path.join(src, 'a', `many-${i}-${'y'.repeat(i % 40)}`), String(i));
    const tar = path.join(work, 'gnu.tar');
    run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--format=posix', '-C', src, '-cf', tar, '.']);
    const t = await same(tar, ['file', 'loop', 'loop (losetup)']);
    expect(t['a/b'].uid).toBe(1234);
    expect(t['abs-link'].uid).toBe(4000000);
    expect(t.blk.rdev).toEqual([7, 300]);
    expect((t['big.bin'].xattrs as Record<string, string>)['user.note']).toBe(Buffer.from('hello').toString('hex'));
    expect(t['caf\udce9.txt']).toBeDefined();
    expect(t.hard.link).toBe('a/b/c/deep.txt');
    expect(Object.keys(t).filter((p) => p.startsWith('a/many-'))).toHaveLength(300);
  });

  test('whiteouts and opaque directories in overlayfs form; an entry of the whited-out name in the layer stands', async () => {
    const t = await same(
      rawTar([
        d('etc/'),
        f('etc/.wh.gone', ''),
        f('etc/.wh.kept', ''),
        f('etc/kept', 'k'),
        d('var/'),
        f('var/.wh..wh..opq', ''),
        f('var/new', 'n'),
        f('.wh.top', ''),
        f('deep/er/.wh.x', ''),
        f('.wh..wh.plnk', ''),
      ]),
    );
    expect(t['etc/gone']).toMatchObject({ mode: 0o020000, rdev: [0, 0] });
    expect(t['etc/kept']).toMatchObject({ mode: 0o100644 });
    expect(t.top).toMatchObject({ mode: 0o020000 });
    expect(t['deep/er/x']).toMatchObject({ mode: 0o020000 });
    expect((t.var.xattrs as Record<string, string>)['trusted.overlay.opaque']).toBe(Buffer.from('y').toString('hex'));
    expect(t['.wh..wh.plnk']).toBeUndefined();
  });

  test("later entries replace earlier ones; parents are resolved through the layer's own symlinks, never out of it", async () => {
    const t = await same(
      rawTar([
        f('a', 'file first'),
        d('a/'),
        f('a/inner', 'i'), // a file, then a directory of that name
        d('b/'),
        f('b/x', 'x'),
        f('b', 'then a file'), // a directory replaced by a file
        d('real/'),
        s('via', 'real'),
        f('via/through.txt', 't'), // written through a relative symlink
        s('abs', '/real'),
        f('abs/absolute.txt', 'a'), // through an absolute one: inside the layer
        s('up', '../../../..'),
        f('up/climbed.txt', 'c'), // one that climbs: stops at the root
        f('dup', 'one'),
        f('dup', 'two'), // the same name twice
        f('orig', 'o'),
        h('hl', 'orig'),
        s('sl', 'orig'),
        h('hl-to-symlink', 'sl'),
        d('m/', '0000700\0'),
        d('m/', '0000750\0'), // a directory twice: the last one's mode
        f('./dot/./name', 'cleaned'),
        f('/abs/name', 'rooted'),
        f('x/../y', 'lexical'),
      ]),
    );
    expect(t['a/inner']).toBeDefined();
    expect(t.b.size).toBe('then a file'.length);
    expect(t['real/through.txt']).toBeDefined();
    expect(t['real/absolute.txt']).toBeDefined();
    expect(t['climbed.txt']).toBeDefined();
    expect(t.m.mode).toBe(0o040750);
    expect(t['hl-to-symlink'].target).toBe('orig');
  });

  test('PAX names, link targets, owners and times; GNU long names; a name that is not UTF-8', async () => {
    await same(
      rawTar([
        f('p', 'pax', {
          pax: { path: `${'l'.repeat(150)}/${'m'.repeat(200)}`, uid: '70000', gid: '80000', mtime: '1234567890.5' },
        }),
        { ...s('pl', 'x'), pax: { linkpath: 'y'.repeat(300) } },
        f('n', 'non-utf8', { pax: { path: Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x74]) } }),
        f('old', 'old', { mtime: '00000000000\0' }),
      ]),
    );
  });

  test('a Debian base layer: the same tree as unpacked (6,000+ entries)', async () => {
    const t = await same(debianTar(), ['file']);
    expect(Object.keys(t).length).toBeGreaterThan(5000);
  }, 120_000);

  test('what extractLayer refuses, the index refuses too, naming the entry', async () => {
    const cases: RawEntry[][] = [
      [f('.wh...', '')],
      [h('hl', '../../etc/passwd')],
      [d('dir/'), h('hl', 'dir')],
      [h('hl', 'hl')],
      [f('a'), f('a/b')],
      [s('a', 'b'), s('b', 'a'), f('a/x')],
      [f('long', 'x', { pax: { path: 'n'.repeat(256) } })],
    ];
    for (const entries of cases) {
      const bytes = rawTar(entries);
      const unpacked = mkdtempSync(path.join(work, 'refused-'));
      const extracted = await extractLayer(Readable.from([bytes]), unpacked, { whiteouts: 'overlay' }).then(
        () => undefined,
        (e: Error) => e,
      );
      const b = new ErofsIndexBuilder();
      const built = await (async () => {
        for await (const { header, body, offset } of readTar(Readable.from([bytes]))) {
          body.resume();
          b.add(header, offset);
        }
        b.finish(bytes.length);
      })().then(
        () => undefined,
        (e: Error) => e,
      );
      expect([entries.map((e) => e.name).join(' '), extracted]).toEqual([
        entries.map((e) => e.name).join(' '),
        expect.any(TarError),
      ]);
      expect(built).toBeInstanceOf(ErofsIndexError);
      expect(built?.message).toMatch(/^entry "/);
    }
  });

  test('an index the kernel refuses file-backed is tried on loop devices, and refused there too, is ErofsUnavailableError naming both', async () => {
    const dir = path.join(work, 'refused');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'bad.erofs'), Buffer.alloc(4096, 0x5a));
    writeFileSync(path.join(dir, 'x.tar'), Buffer.alloc(1024));
    const m = new ErofsMounts('file', path.join(dir, 'mnt'));
    mounts.push(m);
    const e = await m.mount([{ tar: path.join(dir, 'x.tar'), index: path.join(dir, 'bad.erofs') }]).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(e).toBeInstanceOf(ErofsUnavailableError);
    expect(e?.message).toMatch(/EROFS indexes cannot be mounted here \(file-backed: .+; on loop devices: .+\)/);
    expect(m.mode).toBe('loop');
    expect(
      spawnSync('sh', ['-c', `grep -c ' ${dir}' /proc/mounts; losetup -j ${path.join(dir, 'x.tar')} | wc -l`], {
        encoding: 'utf8',
      })
        .stdout.split('\n')
        .slice(0, 2),
    ).toEqual(['0', '0']);
  });

  test("a file's bytes must lie inside the tar: an index is never made that points the kernel past it", () => {
    const b = new ErofsIndexBuilder();
    b.add({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4096, mtime: 0 }, 512);
    expect(() => b.finish(2048)).toThrow(/outside the tar of 2048 bytes/);
    const c = new ErofsIndexBuilder();
    expect(() => c.add({ name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtime: 0 }, 700)).toThrow(
      /not on a tar block/,
    );
  });
});
