// Locks between hoist processes sharing one store, on lock files (Node has no flock): a lock file holds its
// owner's pid; a lock whose owner is gone is stale and taken over.
import { open, readFile, rm, stat } from 'node:fs/promises';

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process that wrote this pid file still runs. */
export async function ownerAlive(file: string): Promise<boolean> {
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 && (pid === process.pid || processAlive(pid));
}

/**
 * Takes `file` as an exclusive lock: waits (polling) while another holder is alive, unless `wait` is false, and
 * then answers undefined at once. The answer releases the lock.
 */
export async function acquireFileLock(
  file: string,
  options: { timeoutMs?: number; wait?: boolean } = {},
): Promise<(() => Promise<void>) | undefined> {
  const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
  for (;;) {
    try {
      const fh = await open(file, 'wx', 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A file still empty was just made and its pid is on the way: not stale unless it stays empty.
      const st = await stat(file).catch(() => undefined);
      const fresh = st !== undefined && st.size === 0 && Date.now() - st.mtimeMs < 5000;
      if (st && !fresh && !(await ownerAlive(file))) {
        await rm(file, { force: true });
        continue;
      }
      if (options.wait === false) return undefined;
      if (Date.now() > deadline)
        throw new Error(`${file} is held by another hoist process; remove it if no hoist runs`);
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
}

/** Holds `file` exclusively while `task` runs; waits (polling) while another live process holds it. */
export async function withFileLock<T>(
  file: string,
  task: () => Promise<T>,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const release = (await acquireFileLock(file, options)) as () => Promise<void>;
  try {
    return await task();
  } finally {
    await release();
  }
}
