import {
  mkdtempSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  existsSync,
  lstatSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { extractLayer } from '../../src/layer/extract.js';
import { cleanEntryName } from '../../src/layer/rooted.js';
import { readTar, scanTar, TarError, type TarHeader } from '../../src/layer/tar.js';
import { haveTool, run } from '../helpers/tools.js';
import { rawTar, writeTar } from '../helpers/raw-tar.js';

const file = (name: string, content: string, extra: Partial<TarHeader> = {}): [TarHeader, Buffer] => [
  { name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: Buffer.byteLength(content), mtime: 1700000000, ...extra },
  Buffer.from(content),
];
const entry = (name: string, type: TarHeader['type'], extra: Partial<TarHeader> = {}): [TarHeader] => [
  { name, type, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1700000000, ...extra },
];

async function listTar(bytes: Buffer): Promise<{ header: TarHeader; content: string }[]> {
  const out = [];
  for await (const { header, body } of readTar(Readable.from([bytes]))) {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    out.push({ header, content: Buffer.concat(chunks).toString() });
  }
  return out;
}

const tmp = () => mkdtempSync(path.join(tmpdir(), 'hoist-tar-'));

describe('tar writer and reader', () => {
  test('round trip with long and non-ASCII names, links, big ids and xattrs', async () => {
    const long = `${'deep/'.repeat(40)}file-with-a-long-name.txt`;
    const bytes = await writeTar([
      entry('dir/', 'directory'),
      file('dir/a.txt', 'alpha\n', { uid: 1000, gid: 3000000 }),
      file(long, 'long'),
      file('ünïcode/名前.txt', 'utf8'),
      entry('dir/link', 'symlink', { linkname: `../${'x'.repeat(120)}` }),
      entry('dir/hard', 'hardlink', { linkname: 'dir/a.txt' }),
      file('cap', '', { xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2]) } }),
    ]);
    const got = await listTar(bytes);
    expect(got.map((e) => e.header.name)).toEqual([
      'dir/',
      'dir/a.txt',
      long,
      'ünïcode/名前.txt',
      'dir/link',
      'dir/hard',
      'cap',
    ]);
    expect(got[1]).toMatchObject({
      content: 'alpha\n',
      header: { uid: 1000, gid: 3000000, mode: 0o644, mtime: 1700000000 },
    });
    expect(got[4].header.linkname).toBe(`../${'x'.repeat(120)}`);
    expect(got[5].header).toMatchObject({ type: 'hardlink', linkname: 'dir/a.txt' });
    expect(got[6].header.xattrs?.['security.capability']).toEqual(Buffer.from([1, 0, 0, 2]));
  });

  test('GNU tar reads what we write, and we read what GNU tar writes', async () => {
    const dir = tmp();
    const long = 'n'.repeat(150);
    const bytes = await writeTar([file('a.txt', 'A'), file(long, 'L'), entry('s', 'symlink', { linkname: 'a.txt' })]);
    writeFileSync(path.join(dir, 'ours.tar'), bytes);
    expect(
      run('tar', ['-tf', path.join(dir, 'ours.tar')])
        .trim()
        .split('\n'),
    ).toEqual(['a.txt', long, 's']);
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src', long), 'gnu');
    run('tar', ['--format=gnu', '-C', path.join(dir, 'src'), '-cf', path.join(dir, 'gnu.tar'), long]);
    const got = await listTar(readFileSync(path.join(dir, 'gnu.tar')));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ header: { name: long }, content: 'gnu' });
  });

  test('a corrupt header or a cut archive is an error', async () => {
    const bytes = await writeTar([file('a.txt', 'hello')]);
    const bad = Buffer.from(bytes);
    bad[10] ^= 0xff;
    await expect(listTar(bad)).rejects.toThrow(/checksum/);
    await expect(listTar(bytes.subarray(0, 600))).rejects.toThrow(TarError);
  });

  test('scanTar reads what readTar reads — the same headers at the same offsets, the same error — however the bytes are cut', async () => {
    // What readTar makes of an archive (its bodies skipped), and what scanTar does, fed in `pieces`.
    type Seen = { entries: [TarHeader, number][]; error?: string };
    const pieces = (bytes: Buffer, sizes: number[]) => {
      const out: Buffer[] = [];
      for (let i = 0, k = 0; i < bytes.length; k++) out.push(bytes.subarray(i, (i += sizes[k % sizes.length])));
      return out;
    };
    const byReadTar = async (chunks: Buffer[], requireEnd: boolean): Promise<Seen> => {
      const seen: Seen = { entries: [] };
      try {
        for await (const { header, body, offset } of readTar(Readable.from(chunks), { requireEnd })) {
          body.resume();
          seen.entries.push([header, offset]);
        }
      } catch (e) {
        seen.error = (e as Error).message;
      }
      return seen;
    };
    const byScan = async (chunks: Buffer[], requireEnd: boolean): Promise<Seen> => {
      const seen: Seen = { entries: [] };
      await scanTar(Readable.from(chunks), (h, o) => void seen.entries.push([h, o]), { requireEnd }).catch(
        (e: Error) => {
          expect(e).toBeInstanceOf(TarError);
          seen.error = e.message;
        },
      );
      return seen;
    };
    const ours = await writeTar([
      entry('dir/', 'directory'),
      file('dir/a.txt', 'a'.repeat(1500), { uid: 3000000 }),
      file(`${'deep/'.repeat(40)}long.txt`, 'long'),
      entry('dir/link', 'symlink', { linkname: `../${'x'.repeat(120)}` }),
      file('cap', '', { xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2]) } }),
      file('z', 'z'.repeat(512)),
    ]);
    const dir = tmp();
    mkdirSync(path.join(dir, 'src'));
    writeFileSync(path.join(dir, 'src', 'n'.repeat(150)), 'gnu');
    run('tar', ['--format=gnu', '-C', path.join(dir, 'src'), '-cf', path.join(dir, 'gnu.tar'), '.']);
    const crafted = rawTar([
      { name: 'g', flag: 'g', body: Buffer.from('19 comment=global\n') },
      { name: 'p', pax: { path: 'from-pax', mtime: '1700000000.5' }, body: 'x' },
      { name: 'empty-pax', pax: {} },
      { name: 'bad-size', size: 'abc\0' },
    ]);
    for (const archive of [ours, readFileSync(path.join(dir, 'gnu.tar')), crafted]) {
      // every cut (the whole archive among them), fed whole, in 1-byte pieces near the cut and in uneven pieces
      const cuts = [
        ...new Set([
          archive.length,
          ...Array.from({ length: Math.ceil(archive.length / 97) }, (_, i) => i * 97),
          511,
          512,
          513,
          1023,
          1024,
          1025,
        ]),
      ].filter((n) => n <= archive.length);
      for (const cut of cuts) {
        const bytes = archive.subarray(0, cut);
        for (const sizes of [[bytes.length || 1], [1], [7, 500, 513], [1024, 3]]) {
          if (sizes[0] === 1 && bytes.length > 3000) continue;
          for (const requireEnd of [false, true]) {
            const chunks = pieces(bytes, sizes);
            const [want, got] = [await byReadTar(chunks, requireEnd), await byScan(chunks, requireEnd)];
            expect({ cut, sizes, requireEnd, ...got }).toEqual({ cut, sizes, requireEnd, ...want });
          }
        }
      }
    }
  });

  test('unread bodies are skipped', async () => {
    const bytes = await writeTar([file('a', 'x'.repeat(5000)), file('b', 'y')]);
    const names = [];
    for await (const { header } of readTar(Readable.from([bytes]))) names.push(header.name);
    expect(names).toEqual(['a', 'b']);
  });
});

describe('extractLayer never writes outside its root', () => {
  test('names are cleaned', () => {
    expect(cleanEntryName('../../etc/passwd')).toBe('etc/passwd');
    expect(cleanEntryName('/a/./b/../c')).toBe('a/c');
  });

  test('"..", absolute names, symlinked parents and hard links stay inside', async () => {
    const outer = tmp();
    const root = path.join(outer, 'root');
    const bytes = await writeTar([
      file('../escape.txt', 'no'),
      file('/abs.txt', 'abs'),
      entry('up', 'symlink', { linkname: '../..' }),
      file('up/through-link.txt', 'inside'),
      entry('etc', 'symlink', { linkname: `/${path.basename(outer)}` }),
      file('etc/via-absolute.txt', 'inside too'),
      entry('hl', 'hardlink', { linkname: '../../../../escape.txt' }),
    ]);
    writeFileSync(path.join(outer, 'escape.txt'), 'outside, untouched');
    await extractLayer(Readable.from([bytes]), root, { whiteouts: 'apply' });
    // The hard link's "../../../.." is clamped at the root: it links the layer's own escape.txt.
    expect(lstatSync(path.join(root, 'hl')).ino).toBe(lstatSync(path.join(root, 'escape.txt')).ino);
    expect(readFileSync(path.join(outer, 'escape.txt'), 'utf8')).toBe('outside, untouched');
    expect(readFileSync(path.join(root, 'escape.txt'), 'utf8')).toBe('no');
    expect(readFileSync(path.join(root, 'abs.txt'), 'utf8')).toBe('abs');
    expect(readFileSync(path.join(root, 'through-link.txt'), 'utf8')).toBe('inside');
    expect(readFileSync(path.join(root, path.basename(outer), 'via-absolute.txt'), 'utf8')).toBe('inside too');
    expect(readlinkSync(path.join(root, 'up'))).toBe('../..');
    expect(existsSync(path.join(outer, 'through-link.txt'))).toBe(false);
  });

  test('whiteouts in apply mode delete, opaque directories are emptied', async () => {
    const root = path.join(tmp(), 'r');
    const lower = await writeTar([
      entry('d/', 'directory'),
      file('d/old', 'o'),
      file('gone', 'g'),
      entry('o/', 'directory'),
      file('o/x', 'x'),
    ]);
    const upper = await writeTar([
      file('.wh.gone', ''),
      file('o/.wh..wh..opq', ''),
      file('o/new', 'n'),
      file('d/added', 'a'),
    ]);
    await extractLayer(Readable.from([lower]), root, { whiteouts: 'apply' });
    await extractLayer(Readable.from([upper]), root, { whiteouts: 'apply' });
    expect(existsSync(path.join(root, 'gone'))).toBe(false);
    expect(existsSync(path.join(root, 'o/x'))).toBe(false);
    expect(readFileSync(path.join(root, 'o/new'), 'utf8')).toBe('n');
    expect(existsSync(path.join(root, 'd/old'))).toBe(true);
  });

  test('modes, times and symlinks are kept; a file replaces a symlink instead of writing through it', async () => {
    const outer = tmp();
    const root = path.join(outer, 'r');
    writeFileSync(path.join(outer, 'victim'), 'safe');
    mkdirSync(root);
    symlinkSync(path.join(outer, 'victim'), path.join(root, 'f'));
    await extractLayer(Readable.from([await writeTar([file('f', 'new', { mode: 0o4755, mtime: 1000 })])]), root, {
      whiteouts: 'apply',
    });
    expect(readFileSync(path.join(outer, 'victim'), 'utf8')).toBe('safe');
    const st = lstatSync(path.join(root, 'f'));
    expect(st.isFile()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o4755);
    expect(st.mtimeMs).toBe(1000_000);
  });

  test('a later entry replaces whatever is at its name; a directory entry over a directory keeps what it holds', async () => {
    const root = path.join(tmp(), 'r');
    const layer = await writeTar([
      file('a', 'file first'),
      entry('a/', 'directory', { mode: 0o700 }),
      file('a/in', 'kept'),
      entry('b/', 'directory'),
      file('b/x', 'x'),
      file('b', 'a file now', { mode: 0o600, mtime: 2000, uid: 7, gid: 8 }),
      file('c', 'c'),
      entry('c', 'symlink', { linkname: 'b' }),
      entry('d/', 'directory'),
      file('d/y', 'y'),
      entry('d/', 'directory', { mode: 0o711 }),
    ]);
    await extractLayer(Readable.from([layer]), root, { whiteouts: 'overlay' });
    expect(lstatSync(path.join(root, 'a')).mode & 0o777).toBe(0o700);
    expect(readFileSync(path.join(root, 'a/in'), 'utf8')).toBe('kept');
    const b = lstatSync(path.join(root, 'b'));
    expect([b.isFile(), b.mode & 0o777, b.mtimeMs, readFileSync(path.join(root, 'b'), 'utf8')]).toEqual([
      true,
      0o600,
      2000_000,
      'a file now',
    ]);
    if (process.getuid?.() === 0) expect([b.uid, b.gid]).toEqual([7, 8]);
    expect(readlinkSync(path.join(root, 'c'))).toBe('b');
    expect(readdirSync(path.join(root, 'd'))).toEqual(['y']);
    expect(lstatSync(path.join(root, 'd')).mode & 0o777).toBe(0o711);
  });
});

const asRoot = process.getuid?.() === 0 && haveTool('setfattr') && haveTool('getfattr');
(asRoot ? describe : describe.skip)('overlay whiteouts (root, setfattr)', () => {
  test('a whiteout becomes a 0/0 character device, an opaque marker the trusted.overlay.opaque xattr', async () => {
    const root = path.join(tmp(), 'snap');
    const upper = await writeTar([
      file('.wh.gone', ''),
      entry('o/', 'directory'),
      file('o/.wh..wh..opq', ''),
      file('o/new', 'n'),
    ]);
    await extractLayer(Readable.from([upper]), root, { whiteouts: 'overlay' });
    const st = lstatSync(path.join(root, 'gone'));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    expect(run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', path.join(root, 'o')])).toBe('y');
    expect(existsSync(path.join(root, 'o/.wh..wh..opq'))).toBe(false);
  });

  test('a parent turned into a symlink later in the layer does not lead whiteouts out of the root', async () => {
    const outside = tmp();
    const root = path.join(tmp(), 'snap');
    const layer = await writeTar([
      entry('a/', 'directory'),
      file('a/.wh.x', ''),
      [{ name: 'a', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: outside }],
      entry('b/', 'directory'),
      file('b/.wh..wh..opq', ''),
      [{ name: 'b', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 0, linkname: outside }],
    ]);
    await extractLayer(Readable.from([layer]), root, { whiteouts: 'overlay' });
    expect(readdirSync(outside)).toEqual([]);
    expect(
      run('sh', ['-c', `getfattr --absolute-names -n trusted.overlay.opaque ${outside} 2>&1 || true`]),
    ).not.toMatch(/opaque="y"/);
    expect(lstatSync(path.join(root, outside, 'x')).isCharacterDevice()).toBe(true);
  });

  test('thousands of whiteouts all become devices; an entry of the same layer with a whited-out name stands', async () => {
    const root = path.join(tmp(), 'snap');
    const many = Array.from({ length: 3000 }, (_, i) => file(`d/.wh.name-with-some-length-${i}`, ''));
    const layer = await writeTar([
      entry('d/', 'directory'),
      ...many,
      file('kept', 'mine'),
      file('.wh.kept', ''),
      file('.wh.first', ''),
      file('first', 'also mine'),
    ]);
    const report = await extractLayer(Readable.from([layer]), root, { whiteouts: 'overlay' });
    expect(report.skipped).toEqual([]);
    const devices = readdirSync(path.join(root, 'd')).filter((n) =>
      lstatSync(path.join(root, 'd', n)).isCharacterDevice(),
    );
    expect(devices).toHaveLength(3000);
    expect(readFileSync(path.join(root, 'kept'), 'utf8')).toBe('mine');
    expect(readFileSync(path.join(root, 'first'), 'utf8')).toBe('also mine');
  });
});
