// A helper program run without blocking the event loop (mount, umount, runc delete, getfattr, cp): while one step
// waits for it, the layers being unpacked and compressed for other steps go on. spawnSync stays only where
// nothing else may run (an interrupt's clean-up).
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export interface ProcessResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

/** `fds`: descriptors the child gets as 3, 4, … (a descriptor a mount is made from: /proc/self/fd/3 there). */
export function runProcess(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; fds?: readonly number[] } = {}): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe', ...(options.fds ?? [])] });
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let error: Error | undefined;
    child.on('error', (e) => {
      error = e;
    });
    child.on('close', (status) => resolve({ status: error ? null : status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), error }));
  });
}

/**
 * A child's stdout and stderr, line by line, to `onOutput`; the last 20 lines kept for an error message. `done()`
 * hands on what is left after the last newline (call it once the child has closed its streams).
 */
export function streamLines(child: { stdout: NodeJS.ReadableStream | null; stderr: NodeJS.ReadableStream | null }, onOutput: (line: string) => void): { tail: string[]; done(): void } {
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
      for (const c of carries) if (c.rest) {
        emit(c.rest);
        c.rest = '';
      }
    },
  };
}

/** A program on PATH (an executable file), or undefined: a lookup, not a shell. */
export function onPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean);
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {}
  }
  return undefined;
}
