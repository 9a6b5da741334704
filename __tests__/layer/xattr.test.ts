// Both ways of reading and writing xattrs (layer/xattr.ts) give the same answers, with names no shell or dump
// format would carry as they are.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { helperXattrTree } from '../../src/exec/erofs-mount.js';
import { readXattrTree, treeOf, writeXattrs, type XattrTool } from '../../src/layer/xattr.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const tools: XattrTool[] = [
  ...(have('python3') ? ['python3' as const] : []),
  ...(have('setfattr') ? ['attr' as const] : []),
];

describe.each(tools)('xattrs through %s', (tool) => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hoist-xattr-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  /** files with names no shell or dump format carries as they are, a directory, a symlink; their xattrs */
  const populate = () => {
    const names = ['plain', 'with space', 'ünï', 'a=b'];
    for (const n of names) writeFileSync(path.join(dir, n), '');
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'sub', 'deep'), '');
    symlinkSync('plain', path.join(dir, 'link'));
    const sets = [
      ...names.map((n, i) => ({ path: path.join(dir, n), name: 'user.hoist', value: Buffer.from([0, 255, i]) })),
      { path: path.join(dir, 'sub'), name: 'user.hoist', value: Buffer.from('dir') },
      { path: path.join(dir, 'sub', 'deep'), name: 'user.other', value: Buffer.from('x') },
      { path: path.join(dir, 'sub', 'deep'), name: 'user.hoist', value: Buffer.from('deep') },
    ];
    expect(writeXattrs(sets, tool)).toEqual([]);
  };

  test('written values are read back by relative path; a symlink is not followed; a missing path is reported', async () => {
    populate();
    // user.* xattrs cannot be put on a symlink itself: refused, and its target is left alone.
    const onLink = { path: path.join(dir, 'link'), name: 'user.hoist', value: Buffer.from('via link') };
    const missing = { path: path.join(dir, 'gone'), name: 'user.hoist', value: Buffer.from('y') };
    expect(writeXattrs([onLink, missing], tool)).toEqual([onLink, missing]);
    const found = await readXattrTree(dir, ['user.hoist'], tool);
    expect(Object.fromEntries([...found].map(([rel, a]) => [rel, a.get('user.hoist')?.toString('hex')]))).toEqual({
      plain: '00ff00',
      'with space': '00ff01',
      ünï: '00ff02',
      'a=b': '00ff03',
      sub: Buffer.from('dir').toString('hex'),
      'sub/deep': Buffer.from('deep').toString('hex'),
    });
    expect(found.get('sub/deep')?.has('user.other')).toBe(false);
  });

  test("the build's mount helper (one python3 for the build) reads what the tool reads", async () => {
    populate();
    expect(writeXattrs([{ path: dir, name: 'user.other', value: Buffer.from('root') }], tool)).toEqual([]);
    const asked = ['user.hoist', 'user.other'];
    const flat = (m: Map<string, Map<string, Buffer>>) =>
      Object.fromEntries(
        [...m].map(([rel, a]) => [rel, Object.fromEntries([...a].map(([k, v]) => [k, v.toString('hex')]))]),
      );
    const byHelper = await helperXattrTree(dir, asked);
    if (!have('python3')) return expect(byHelper).toBeUndefined();
    expect(flat(treeOf(dir, byHelper!))).toEqual(flat(await readXattrTree(dir, asked, tool)));
    expect(flat(treeOf(dir, byHelper!))['']).toEqual({ 'user.other': Buffer.from('root').toString('hex') });
    // a root that is not there: nothing found (as the tools say), and the helper still serves
    expect(await helperXattrTree(path.join(dir, 'gone'), asked)).toEqual([]);
    expect((await helperXattrTree(path.join(dir, 'sub'), asked))?.length).toBe(3);
  });

  test('an empty directory answers nothing; no tool is an error naming what to install', async () => {
    expect((await readXattrTree(dir, ['user.hoist'], tool)).size).toBe(0);
    await expect(readXattrTree(dir, ['user.hoist'], null)).rejects.toThrow(
      /python3, or getfattr and setfattr \(apt-get install attr\)/,
    );
    expect(writeXattrs([{ path: dir, name: 'user.hoist', value: Buffer.from('y') }], null)).toHaveLength(1);
  });
});
