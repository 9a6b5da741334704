// The warden (src/exec/warden.ts) on its own, with python3: what it says on fd 3 and how it exits when hoist's word
// (SIGTERM, sent when the step's shell reports) comes before the step's first process has ended. Under proot that
// process is proot: one killed by the step dies by a signal the warden did not send, and on a loaded machine its
// death can be seen only after the shell reported (CI ran two test files at once and a step that killed its tracer
// passed). Here a plain shell stands for proot, and the test kills it from outside, after the word.
import { spawn } from 'node:child_process';
import { underWarden } from '../../src/exec/warden.js';
import { haveTool } from '../helpers/tools.js';

interface Ended {
  code: number | null;
  fd3: string;
  ms: number;
}

/** Runs `script` under the warden (proot's mode), sends its SIGTERM after `termMs`, then calls `then(firstPid)`. */
function warden(script: string, termMs: number, then?: (pid: number) => void): Promise<Ended> {
  const w = underWarden('python3', ['/bin/sh', '-c', script], { PATH: process.env.PATH }, { seccomp: true, uid: 0 });
  const started = Date.now();
  const child = spawn(w.argv[0], w.argv.slice(1), { env: w.env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  let fd3 = '';
  let out = '';
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (fd3 += d.toString()));
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    const first = /^(\d+)\n/.exec(out);
    if (first && !out.includes('\u0000')) {
      out += '\u0000';
      const pid = Number(first[1]);
      setTimeout(() => {
        child.kill('SIGTERM');
        if (then) setTimeout(() => then(pid), 250);
      }, termMs);
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, fd3, ms: Date.now() - started })));
}

(haveTool('python3') ? describe : describe.skip)('the warden, after hoist’s word', () => {
  test('a first process killed by someone else after the word is said on fd 3 (T9): the step fails with 137', async () => {
    const r = await warden("echo $$; trap '' TERM; while :; do sleep 0.05; done", 100, (pid) =>
      process.kill(pid, 'SIGKILL'),
    );
    expect(r).toMatchObject({ code: 137, fd3: 'T9\n' });
  }, 20_000);

  test('a first process killed by someone else at the moment of the word, 30 times: said every time', async () => {
    // (a handler's exception right after waitpid reaped it lost it: the word and the death together, on a loaded
    // machine, and the step passed)
    const codes: string[] = [];
    for (let i = 0; i < 30; i++) {
      const w = underWarden(
        'python3',
        ['/bin/sh', '-c', 'echo $$; sleep 30'],
        { PATH: process.env.PATH },
        { seccomp: true, uid: 0 },
      );
      const child = spawn(w.argv[0], w.argv.slice(1), { env: w.env, stdio: ['ignore', 'pipe', 'ignore', 'pipe'] });
      let fd3 = '';
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (fd3 += d.toString()));
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\n/.exec(out);
        if (m && !out.endsWith('!')) {
          out += '!';
          process.kill(Number(m[1]), 'SIGKILL');
          child.kill('SIGTERM');
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      codes.push(`${code} ${fd3.trim()}`);
    }
    expect(new Set(codes)).toEqual(new Set(['137 T9']));
  }, 60_000);

  test('a first process that ends by itself once the rest is killed: its own status, no word', async () => {
    const r = await warden('echo $$; sleep 30 & wait; exit 3', 100);
    expect(r).toMatchObject({ code: 3, fd3: '' });
    expect(r.ms).toBeLessThan(1500);
  }, 20_000);

  test('a first process that outlives the rest is killed after two seconds, by the warden: no word', async () => {
    const r = await warden("echo $$; trap '' TERM; while :; do sleep 0.05; done", 100);
    expect(r).toMatchObject({ code: 137, fd3: '' });
    expect(r.ms).toBeGreaterThanOrEqual(2000);
  }, 20_000);
});
