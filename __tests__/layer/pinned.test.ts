// Removing and changing things inside a root by descriptors (pinned.ts): what was reached stays what is acted on,
// whatever its path leads to afterwards — a directory swapped for a symlink to one of the machine's, after hoist
// looked and before it acts, sends nothing there (issue 34). Deterministic: the swap is made between the two.
import {
  chmodSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { emptyAt, fdPath, pinExact, pinParent, removeAt, removeTree } from '../../src/layer/pinned.js';

describe('acting inside a root by descriptors', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-pinned-'));
  let n = 0;
  /** a root with /home/u/p/c/{f, d/g} and, beside it, the machine's directory with a c/keep of its own */
  const setup = () => {
    const dir = path.join(work, `case-${++n}`);
    const root = path.join(dir, 'root');
    mkdirSync(path.join(root, 'home/u/p/c/d'), { recursive: true });
    writeFileSync(path.join(root, 'home/u/p/c/f'), 'f');
    writeFileSync(path.join(root, 'home/u/p/c/d/g'), 'g');
    const machine = path.join(dir, 'machine');
    mkdirSync(path.join(machine, 'c'), { recursive: true });
    writeFileSync(path.join(machine, 'c', 'keep'), 'keep');
    chmodSync(machine, 0o700);
    return { root, machine };
  };
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('a directory on the way swapped for a link after it was pinned: the removal stays in the root', () => {
    const { root, machine } = setup();
    const at = pinParent(root, 'home/u/p/c') as { fd: number; name: string };
    try {
      // the step's move: p goes aside, a link to the machine's directory takes its name
      renameSync(path.join(root, 'home/u/p'), path.join(root, 'home/u/q'));
      symlinkSync(machine, path.join(root, 'home/u/p'));
      removeAt(at.fd, at.name);
    } finally {
      closeSync(at.fd);
    }
    expect(readdirSync(path.join(machine, 'c'))).toEqual(['keep']);
    expect(readdirSync(path.join(root, 'home/u/q'))).toEqual([]); // the pinned directory's `c` went
  });

  test('a link on the way is no way at all: pinParent and pinExact answer nothing', () => {
    const { root, machine } = setup();
    renameSync(path.join(root, 'home/u/p'), path.join(root, 'home/u/q'));
    symlinkSync(machine, path.join(root, 'home/u/p'));
    expect(pinParent(root, 'home/u/p/c')).toBeUndefined();
    expect(pinExact(root, 'home/u/p')).toBeUndefined();
    expect(pinExact(root, 'home/u/p/c')).toBeUndefined();
    expect(pinParent(root, 'home/u/missing/c')).toBeUndefined();
    expect(() => pinParent(root, '../x')).toThrow(/names no entry inside its root/);
  });

  test('emptying, chmod and times through a pinned descriptor reach the pinned directory only', () => {
    const { root, machine } = setup();
    const pinned = pinExact(root, 'home/u/p/c');
    if (!pinned) throw new Error('not pinned');
    try {
      renameSync(path.join(root, 'home/u/p'), path.join(root, 'home/u/q'));
      symlinkSync(machine, path.join(root, 'home/u/p'));
      chmodSync(fdPath(pinned.fd), 0o777);
      emptyAt(pinned.fd);
    } finally {
      closeSync(pinned.fd);
    }
    expect(statSync(machine).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(machine, 'c')).mode & 0o777).not.toBe(0o777);
    expect(readdirSync(path.join(machine, 'c'))).toEqual(['keep']);
    expect(statSync(path.join(root, 'home/u/q/c')).mode & 0o777).toBe(0o777);
    expect(readdirSync(path.join(root, 'home/u/q/c'))).toEqual([]);
  });

  test('a link inside what is removed is removed, never followed; removeTree takes a whole tree', () => {
    const { root, machine } = setup();
    symlinkSync(machine, path.join(root, 'home/u/p/c/d/out'));
    symlinkSync(path.join(machine, 'c'), path.join(root, 'home/u/p/c/out2'));
    removeTree(path.join(root, 'home'));
    expect(existsSync(path.join(root, 'home'))).toBe(false);
    expect(lstatSync(root).isDirectory()).toBe(true);
    expect(readdirSync(path.join(machine, 'c'))).toEqual(['keep']);
    removeTree(path.join(root, 'nothing-here')); // nothing there is no error
  });
});
