// What must not outlive an interrupted build: runtime containers, overlay mounts, secret files, temp dirs. A
// cancelled workflow sends SIGINT or SIGTERM and may follow with SIGKILL; the handler here undoes everything
// registered, synchronously and newest first (a container before the mount under it, a mount before the
// directory that holds it), then exits with 128 + the signal's number as a shell would report.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { runProcess } from './process.js';

type Task = () => void;
const tasks = new Set<Task>();
let installed = false;

function onSignal(signal: NodeJS.Signals): void {
  for (const t of [...tasks].reverse()) {
    try {
      t();
    } catch {
      // keep undoing the rest
    }
  }
  tasks.clear();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/** Handles SIGINT and SIGTERM from now on: the hoist command does so from its start, so every interrupt exits 130/143. */
export function installInterruptHandler(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * Runs `f` with the interrupt handler set aside: for a process that hands the signals on itself and waits for
 * what it handed them to (the build run again under sudo), instead of exiting at once.
 */
export async function withoutInterruptHandler<T>(f: () => Promise<T>): Promise<T> {
  const was = installed;
  if (was) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    installed = false;
  }
  try {
    return await f();
  } finally {
    if (was) installInterruptHandler();
  }
}

/** Registers `task` to run if the process is interrupted; the answer unregisters it (call it once done). */
export function onInterrupt(task: Task): () => void {
  installInterruptHandler();
  tasks.add(task);
  return () => void tasks.delete(task);
}

/** Unmounts `dir` (lazily if it is busy). */
export function unmountSync(dir: string): void {
  if (spawnSync('umount', [dir], { stdio: 'ignore' }).status !== 0)
    spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/** Unmounts `dir` (lazily if it is busy) without blocking the event loop. */
export async function unmountDir(dir: string): Promise<void> {
  if ((await runProcess('umount', [dir])).status !== 0) await runProcess('umount', ['-l', dir]);
}

export function removeSync(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
