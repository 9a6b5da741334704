// The directories of RUN --mount=type=cache in the store (cache-mounts/), kept between builds, and who holds them:
// a lock file for a step that holds one alone (sharing=locked or private), marker files for shared users. Prune
// --all removes the ones nobody holds.
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { acquireFileLock, ownerAlive } from './lock.js';

export interface CacheMountOptions {
  id: string;
  sharing: 'shared' | 'private' | 'locked';
  mode: number;
  uid: number;
  gid: number;
  source: string;
  from?: string;
  readonly: boolean;
  /** uid, gid or mode given on the mount (then the cache starts as a directory made with them) */
  ownerGiven: boolean;
}

/**
 * The directory of a cache mount under `root`, one per id, kept between builds, held for the step as `sharing`
 * says (BuildKit's cache mounts): shared — every step uses it at once; locked — a step waits for the one using it;
 * private — a step that finds it in use gets another instance of the cache. A new cache directory gets the
 * mount's mode and owner. What to undo when the step ends is pushed onto `cleanup`.
 */
export async function cacheMountDir(
  root: string,
  m: CacheMountOptions,
  cleanup: (() => Promise<void>)[],
): Promise<{ dir: string; name: string; created: boolean; dropped?: string }> {
  await mkdir(root, { recursive: true });
  // BuildKit keys a cache by its id and the directory it starts from: a new directory made with the mount's
  // uid/gid/mode when one is given, or the from= source (solver/llbsolver/mounts: "cache-dir:" + id + ":" + ref).
  let key = m.id;
  if (m.from) key += `\0from=${m.from}:${m.source}`;
  else if (m.ownerGiven && !m.readonly) key += `\0owner=${m.uid}:${m.gid}:${m.mode.toString(8)}`;
  const name = createHash('sha256').update(key).digest('hex').slice(0, 32);
  let dir = path.join(root, name);
  if (m.sharing === 'locked') {
    cleanup.push((await acquireFileLock(`${dir}.lock`)) as () => Promise<void>);
  } else if (m.sharing === 'private') {
    for (let i = 0; ; i++) {
      const candidate = i === 0 ? dir : `${dir}-${i}`;
      const release = await acquireFileLock(`${candidate}.lock`, { wait: false });
      if (!release) continue;
      if (await inSharedUse(candidate)) {
        await release();
        continue;
      }
      cleanup.push(release);
      dir = candidate;
      break;
    }
  } else {
    // Shared users take no lock but say they are there, so that a private step looks elsewhere; one that finds
    // a step holding an instance alone (private or locked) looks elsewhere too, as BuildKit makes a new cache
    // when the one it wants is locked. Each side says it is there before it looks, so that two
    // arriving at once cannot both miss the other.
    for (let i = 0; ; i++) {
      const candidate = i === 0 ? dir : `${dir}-${i}`;
      const marks = `${candidate}.users`;
      await mkdir(marks, { recursive: true });
      const name = `${process.pid}-${Date.now()}-${sharedUses++}`;
      const mark = path.join(marks, name);
      await writeFile(path.join(marks, `.${name}`), String(process.pid));
      await rename(path.join(marks, `.${name}`), mark);
      if (await heldAlone(candidate)) {
        await rm(mark, { force: true });
        continue;
      }
      cleanup.push(() => rm(mark, { force: true }));
      dir = candidate;
      break;
    }
  }
  let created = false;
  // What a step left where the cache directory was — a symlink (a proot step that renamed its bound cache away
  // leaves one), a file — is no cache: removed (never followed) and the cache starts empty, with a warning.
  const found = await lstat(dir).catch(() => undefined);
  let dropped: string | undefined;
  if (found && !found.isDirectory()) {
    dropped = found.isSymbolicLink() ? 'a symbolic link' : found.isFile() ? 'a file' : 'not a directory';
    await rm(dir, { force: true });
  }
  if (dropped || !found) {
    await mkdir(dir, { recursive: true });
    await chmod(dir, m.mode);
    await chown(dir, m.uid, m.gid).catch(() => undefined);
    created = true;
  }
  return {
    dir,
    name,
    created,
    ...(dropped
      ? {
          dropped: `the cache mount ${JSON.stringify(m.id)} was ${dropped} in the store (a step moved it away): dropped, it starts empty`,
        }
      : {}),
  };
}

let sharedUses = 0;

/** Whether a live step holds this cache directory alone (sharing=private or locked: its lock file). */
async function heldAlone(dir: string): Promise<boolean> {
  return (await stat(`${dir}.lock`).catch(() => undefined)) !== undefined && (await ownerAlive(`${dir}.lock`));
}

/** Whether a live step holds this cache directory with sharing=shared. */
async function inSharedUse(dir: string): Promise<boolean> {
  const marks = `${dir}.users`;
  for (const f of await readdir(marks).catch(() => [] as string[])) {
    if (f.startsWith('.')) continue; // still being written
    if (await ownerAlive(path.join(marks, f))) return true;
    await rm(path.join(marks, f), { force: true }); // left by a process that is gone
  }
  return false;
}

/** Removes the cache directories no live step holds; answers how many and their bytes. */
export async function removeIdleCacheMounts(
  root: string,
  sizeOf: (p: string) => Promise<number>,
): Promise<{ removed: number; bytes: number; denied: number }> {
  const out = { removed: 0, bytes: 0, denied: 0 };
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (name.endsWith('.lock') || name.endsWith('.users')) continue;
    const dir = path.join(root, name);
    const st = await lstat(dir).catch(() => undefined);
    if (!st) continue;
    if (!st.isDirectory()) {
      // no cache: what a step left in its place (a symlink, never followed)
      await rm(dir, { force: true });
      out.removed++;
      continue;
    }
    // Made by a build that ran RUN through sudo: only root may take its lock and remove it.
    if (process.getuid?.() !== 0 && st.uid === 0) {
      out.denied++;
      continue;
    }
    const release = await acquireFileLock(`${dir}.lock`, { wait: false });
    if (!release) continue;
    try {
      if (await inSharedUse(dir)) continue;
      out.bytes += await sizeOf(dir);
      await rm(dir, { recursive: true, force: true });
      await rm(`${dir}.users`, { recursive: true, force: true });
      out.removed++;
    } finally {
      await release();
    }
  }
  return out;
}
