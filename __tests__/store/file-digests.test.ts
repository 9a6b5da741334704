// The context files' digests remembered by their stat (src/store/file-digests.ts): a rebuild over an unchanged
// context reads none of its files, and no change of content goes unseen — not one that keeps the size and puts the
// modification time back, not one made within the kernel clock's tick of the last (the racy window).
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildContext } from '../../src/solver/context.js';
import { digestSelection } from '../../src/solver/ops/copy.js';
import { FileDigests, racyMs } from '../../src/store/file-digests.js';
import { makeContext as context } from '../helpers/context.js';
import { hoistOk } from '../helpers/hoist.js';
import { run } from '../helpers/tools.js';

async function contentOf(dir: string, digests?: FileDigests): Promise<string> {
  const c = BuildContext.open(dir);
  const top = c.find('.');
  if (!top) throw new Error('no context');
  return digestSelection({ sources: [{ path: top, children: await c.walk(top) }], newest: 0 }, digests);
}

/** After the racy window: files changed now are remembered once it has passed. */
const later = () => Date.now() + racyMs + 1000;

describe('FileDigests', () => {
  test('a file hashed is remembered by its stat; a write that keeps size and mtime is still seen (its ctime moved)', async () => {
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-fd-store-'));
    const dir = context({ a: 'aaaa', 'sub/b': 'bbbb' });
    const fresh = await contentOf(dir);
    const d = await FileDigests.load(store);
    expect(await contentOf(dir, d)).toBe(fresh); // the same key with or without the cache
    // the files were changed (touched) just now: within the racy window, nothing is remembered
    await d.save();
    expect(() => readFileSync(FileDigests.fileIn(store))).toThrow();
    const st = statSync(path.join(dir, 'a'));
    d.set(st, 'f'.repeat(64), later());
    expect(d.get(st)).toBe('f'.repeat(64));
    await d.save();
    // read back: the remembered digest is what the key is made of (a wrong one, planted here, shows it was used)
    const planted = await FileDigests.load(store);
    expect(planted.get(st)).toBe('f'.repeat(64));
    expect(await contentOf(dir, planted)).not.toBe(fresh);
    // the same size, the same mtime put back: the ctime tells
    await sleep(20);
    writeFileSync(path.join(dir, 'a'), 'AAAA');
    run('touch', ['-d', '@1700000000', path.join(dir, 'a')]);
    const now = statSync(path.join(dir, 'a'));
    expect([now.size, now.mtimeMs]).toEqual([st.size, st.mtimeMs]);
    const reread = await FileDigests.load(store);
    expect(reread.get(now)).toBeUndefined();
    const changed = await contentOf(dir, reread);
    expect(changed).not.toBe(fresh);
    expect(changed).toBe(await contentOf(dir));
  });

  test('a damaged or foreign file is ignored whole; saving leaves no temporary file', async () => {
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-fd-store-'));
    const dir = context({ a: 'x' });
    const st = statSync(path.join(dir, 'a'));
    const id = `${st.dev}:${st.ino}`;
    const good = [st.size, st.mtimeMs, st.ctimeMs, 'e'.repeat(64)];
    for (const text of [
      '{',
      '[]',
      JSON.stringify({ version: 2, entries: { [id]: good } }),
      JSON.stringify({ version: 1, entries: { [id]: good, 'x:1': good } }),
      JSON.stringify({ version: 1, entries: { [id]: [1, 2, 3, 'zz'] } }),
    ]) {
      writeFileSync(FileDigests.fileIn(store), text);
      expect((await FileDigests.load(store)).get(st)).toBeUndefined();
    }
    writeFileSync(FileDigests.fileIn(store), JSON.stringify({ version: 1, entries: { [id]: good } }));
    expect((await FileDigests.load(store)).get(st)).toBe('e'.repeat(64));
    const d = await FileDigests.load(store);
    d.set(st, 'd'.repeat(64), later());
    await d.save();
    expect(run('ls', ['-A', store]).trim()).toBe('file-digests.json');
  });

  test('a file swapped for a FIFO or a link after the walk is refused when read, never waited on or followed', async () => {
    const dir = context({
      a: 'aaaa',
      b: 'bbbb',
      mid: 'm'.repeat(200_000),
      big: 'g'.repeat(3 << 20),
      fifo: 'f'.repeat(200_000),
    });
    const c = BuildContext.open(dir);
    const top = c.find('.');
    if (!top) throw new Error('no context');
    const children = await c.walk(top);
    run(
      'sh',
      [
        '-c',
        'rm a b mid big fifo && mkfifo a fifo && ln -s /etc/passwd b && ln -s /etc/passwd mid && ln -s /etc/passwd big',
      ],
      { cwd: dir },
    );
    // files read ahead (up to 1 MiB) and streamed (bigger) are opened the same way
    for (const name of ['mid', 'big'])
      await expect(
        digestSelection({ sources: [{ path: top, children: children.filter((p) => p.rel === name) }], newest: 0 }),
      ).rejects.toThrow(/is now a symbolic link: it changed while the build read the context/);
    await expect(
      digestSelection({ sources: [{ path: top, children: children.filter((p) => p.rel === 'fifo') }], newest: 0 }),
    ).rejects.toThrow(/no longer a regular file/);
    await expect(
      digestSelection({ sources: [{ path: top, children: children.filter((p) => p.rel === 'a') }], newest: 0 }),
    ).rejects.toThrow(/no longer a regular file/);
    await expect(
      digestSelection({ sources: [{ path: top, children: children.filter((p) => p.rel === 'b') }], newest: 0 }),
    ).rejects.toThrow(/ELOOP|symbolic link/);
  });

  test('builds: a rebuild takes the remembered digests (a planted one misses the cache); a changed file is copied', async () => {
    const dir = context({ Dockerfile: 'FROM scratch\nCOPY src/ /src/\n', 'src/one': 'one\n', 'src/two': 'two\n' });
    const store = mkdtempSync(path.join(tmpdir(), 'hoist-fd-store-'));
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-fd-work-'));
    await sleep(racyMs + 100); // past the racy window of the files just made
    const build = async (name: string) => {
      const meta = path.join(work, `${name}.json`);
      const r = await hoistOk(['build', '--progress', 'quiet', '--store', store, '--metadata-file', meta, dir]);
      return { digest: r.out.trim(), cache: JSON.parse(readFileSync(meta, 'utf8'))['hoist.cache'] };
    };
    const first = await build('first');
    expect(first.cache).toMatchObject({ hits: 0, misses: 1 });
    const saved = JSON.parse(readFileSync(FileDigests.fileIn(store), 'utf8'));
    expect(Object.keys(saved.entries)).toHaveLength(2);
    const kept = readFileSync(FileDigests.fileIn(store), 'utf8');
    expect(await build('second')).toEqual({
      digest: first.digest,
      cache: expect.objectContaining({ hits: 1, misses: 0 }),
    });
    // A remembered digest planted wrong for src/one: the key changes, so the step runs again (the files themselves
    // are copied, so the image is the same) — the rebuild did not read the file to hash it.
    const one = statSync(path.join(dir, 'src/one'));
    saved.entries[`${one.dev}:${one.ino}`][3] = '0'.repeat(64);
    writeFileSync(FileDigests.fileIn(store), JSON.stringify(saved));
    expect(await build('planted')).toEqual({
      digest: first.digest,
      cache: expect.objectContaining({ hits: 0, misses: 1 }),
    });
    // --no-cache trusts no remembered digest (a context written through a shared memory map may keep its times,
    // docs/cache.md "What a rebuild trusts"): the file is read again, and its true digest remembered in place of the plant.
    const meta = path.join(work, 'reread.json');
    await hoistOk(['build', '--progress', 'quiet', '--no-cache', '--store', store, '--metadata-file', meta, dir]);
    expect(JSON.parse(readFileSync(FileDigests.fileIn(store), 'utf8')).entries[`${one.dev}:${one.ino}`][3]).toBe(
      JSON.parse(kept).entries[`${one.dev}:${one.ino}`][3],
    );
    writeFileSync(FileDigests.fileIn(store), kept);
    expect((await build('restored')).cache).toMatchObject({ hits: 1, misses: 0 });
    // src/two changed, same size, mtime put back: a miss, and the new content is in the image
    writeFileSync(path.join(dir, 'src/two'), 'TWO\n');
    run('touch', ['-d', '@1700000000', path.join(dir, 'src/two')]);
    const changed = await build('changed');
    expect(changed.cache).toMatchObject({ hits: 0, misses: 1 });
    expect(changed.digest).not.toBe(first.digest);
    const other = await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      mkdtempSync(path.join(tmpdir(), 'hoist-fd-store-')),
      dir,
    ]);
    expect(changed.digest).toBe(other.out.trim());
    // prune --all forgets them too
    expect(readFileSync(FileDigests.fileIn(store), 'utf8')).toContain('"version":1');
    await hoistOk(['prune', '--all', '--store', store]);
    expect(() => readFileSync(FileDigests.fileIn(store))).toThrow();
  });
});
