// A helper program run without blocking the event loop (mount, umount, runc delete, getfattr, cp): while one step
// waits for it, the layers being unpacked and compressed for other steps go on. spawnSync stays only where
// nothing else may run (an interrupt's clean-up).
import { spawn } from 'node:child_process';

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
