// A full disk under the store (issue 37): the build's error says so, names the store and what to do, whichever
// write met it — a blob, an unpacked layer, a RUN step's own files in its upper directory (the step only sees EIO
// or ENOSPC and says what it says: the store's free space, measured while the step's files are still there, tells).
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { formatBytes } from '../cli/format.js';

export class StoreFullError extends Error {
  override readonly name = 'StoreFullError';
}

/** Bytes this process may still write on the disk holding `dir` (root may write into ext4's reserved blocks). */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return (process.getuid?.() === 0 ? s.bfree : s.bavail) * s.bsize;
  } catch {
    return undefined;
  }
}

/** The free space on the store's disk when it is all but gone (under 1% of the disk, at least 1 MiB, at most 64 MiB). */
export async function storeDiskFull(root: string): Promise<number | undefined> {
  try {
    const s = await statfs(root);
    const free = (process.getuid?.() === 0 ? s.bfree : s.bavail) * s.bsize;
    const floor = Math.max(2 ** 20, Math.min(64 * 2 ** 20, (s.blocks * s.bsize) / 100));
    return free < floor ? free : undefined;
  } catch {
    return undefined;
  }
}

/** What to do about it, after the error itself. `now`: the free space measured after the build's own temp files went. */
export function storeFullAdvice(root: string, free: number | undefined, now = false): string {
  return `the disk holding hoist's store ${root} ${now ? 'ran out of space' : 'is full'}${free === undefined ? '' : ` (${formatBytes(free)} free${now ? " now that the build's temporary files are gone" : ''})`}: free space with \`hoist prune\` (the build cache) or \`hoist prune --all\` (everything), keep the store smaller with --store-max SIZE / HOIST_STORE_MAX (it is trimmed after every build), or move it to a larger disk with --store DIR / HOIST_STORE`;
}

const noSpace = (e: unknown) => ['ENOSPC', 'EDQUOT'].includes((e as NodeJS.ErrnoException | undefined)?.code ?? '');

/**
 * A write that met a full disk becomes a StoreFullError that says what to do; a write outside the store (an output
 * file) is named as such. Anything else is left as it is.
 */
export async function explainNoSpace(e: unknown, root: string): Promise<unknown> {
  if (!noSpace(e) || e instanceof StoreFullError) return e;
  const where = (e as NodeJS.ErrnoException).path;
  const message = (e as Error).message;
  if (where !== undefined && path.relative(root, path.resolve(where)).startsWith('..'))
    return new StoreFullError(`${message}: no space left on the disk holding ${where}`);
  return new StoreFullError(`${message}\n${storeFullAdvice(root, await freeBytes(root), true)}`);
}
