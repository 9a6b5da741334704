// Which python3 runs hoist's helpers (exec/process.ts python3()): a program on PATH before a script in front of one
// (pyenv's and asdf's shims cost ~0.4 s a start), the script's own program where PATH has only scripts, none where
// PATH has none.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { python3 } from '../../src/exec/process.js';

const real = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout?.trim();
const maybe = real ? test : test.skip;

describe('python3()', () => {
  let dir: string;
  const path0 = process.env.PATH;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hoist-python3-'));
    for (const d of ['shim', 'bin', 'empty']) mkdirSync(path.join(dir, d));
    // a shim as pyenv's is: a script that runs the program (and counts its starts)
    writeFileSync(path.join(dir, 'shim', 'python3'), `#!/bin/sh\necho x >> ${dir}/starts\nexec ${real} "$@"\n`);
    chmodSync(path.join(dir, 'shim', 'python3'), 0o755);
    symlinkSync(real!, path.join(dir, 'bin', 'python3'));
  });
  afterEach(() => {
    process.env.PATH = path0;
    rmSync(dir, { recursive: true, force: true });
  });
  const starts = () =>
    spawnSync('sh', ['-c', `cat ${dir}/starts 2>/dev/null | wc -l`], { encoding: 'utf8' }).stdout.trim();

  maybe('a program later on PATH is taken over a script before it, without starting the script', () => {
    process.env.PATH = `${dir}/shim:${dir}/bin:/usr/bin:/bin`;
    expect(python3()).toBe(path.join(dir, 'bin', 'python3'));
    expect(starts()).toBe('0');
  });

  maybe('only a script on PATH: the program it runs, asked once', () => {
    process.env.PATH = `${dir}/shim:/nonexistent`;
    expect(python3()).toBe(real);
    expect(python3()).toBe(real);
    expect(starts()).toBe('1');
  });

  test('no python3 on PATH: none', () => {
    process.env.PATH = `${dir}/empty`;
    expect(python3()).toBeUndefined();
  });
});
