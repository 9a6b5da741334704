// A helper program run without blocking the event loop (mount, umount, runc delete, getfattr, cp): while one step
// waits for it, the layers being unpacked and compressed for other steps go on. spawnSync stays only where
// nothing else may run (an interrupt's clean-up).
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

export interface ProcessResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

/** `fds`: descriptors the child gets as 3, 4, … (a descriptor a mount is made from: /proc/self/fd/3 there). */
export function runProcess(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; fds?: readonly number[] } = {},
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe', ...(options.fds ?? [])],
    });
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let error: Error | undefined;
    child.on('error', (e) => {
      error = e;
    });
    child.on('close', (status) =>
      resolve({
        status: error ? null : status,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        error,
      }),
    );
  });
}

/**
 * A child's stdout and stderr, line by line, to `onOutput`; the last 20 lines kept for an error message. `done()`
 * hands on what is left after the last newline (call it once the child has closed its streams).
 */
export function streamLines(
  child: { stdout: NodeJS.ReadableStream | null; stderr: NodeJS.ReadableStream | null },
  onOutput: (line: string) => void,
): { tail: string[]; done(): void } {
  const tail: string[] = [];
  const emit = (l: string) => {
    onOutput(l);
    tail.push(l);
    if (tail.length > 20) tail.shift();
  };
  const carries = [child.stdout, child.stderr].map((s) => {
    const carry = { rest: '' };
    s?.on('data', (chunk: Buffer) => {
      const parts = (carry.rest + chunk.toString()).split('\n');
      carry.rest = parts.pop() ?? '';
      for (const l of parts) emit(l);
    });
    return carry;
  });
  return {
    tail,
    done() {
      for (const c of carries)
        if (c.rest) {
          emit(c.rest);
          c.rest = '';
        }
    },
  };
}

/** A program on PATH (an executable file), or undefined: a lookup, not a shell. */
export function onPath(name: string): string | undefined {
  return allOnPath(name)[0];
}

/** Every executable file of that name on PATH, in PATH's order. */
function allOnPath(name: string): string[] {
  const dirs = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .filter(Boolean);
  return dirs.flatMap((d) => {
    const p = path.join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile() ? [p] : [];
    } catch {
      return [];
    }
  });
}

const pythons = new Map<string, string | undefined>();

/**
 * The python3 that hoist's helpers run (mounts, xattrs, the warden), or undefined where PATH has none: the first
 * python3 on PATH that is a program itself, else the program the first one runs. A shim in front of the real one
 * (pyenv's or asdf's: a shell script of a dozen processes) costs ~0.4 s a start on this machine, and every build
 * starts a helper; which python3 runs them does not matter to hoist (ctypes and os.getxattr are in all of them).
 * Looked up once per PATH.
 */
export function python3(): string | undefined {
  const key = process.env.PATH ?? '';
  if (pythons.has(key)) return pythons.get(key);
  const all = allOnPath('python3').map((p) => path.resolve(p));
  let found = all.find(isProgram);
  if (found === undefined && all.length > 0) {
    // Only scripts on PATH: the program the first one runs (one start of the shim, for the whole process).
    const r = spawnSync(all[0], ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 30_000 });
    const exe = r.status === 0 ? r.stdout.trim() : '';
    found = exe.startsWith('/') ? exe : all[0];
  }
  pythons.set(key, found);
  return found;
}

function isProgram(p: string): boolean {
  try {
    const fd = openSync(p, 'r');
    try {
      const head = Buffer.alloc(4);
      readSync(fd, head, 0, 4, 0);
      return head.toString('latin1') === '\x7fELF';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}
