// What a RUN step's mounts show, fixed before the runtime sees them. A mount's source may be in a place that another
// step writes while this one starts (a cache mount shared by concurrent steps and builds): handed to the runtime as
// a path, a name resolved a moment before could be a symlink to the host's `/` by the time the runtime mounts it
// (BuildKit's CVE-2024-23651). So every source is opened inside its root by descriptors (layer/pinned.ts), that
// descriptor is bind-mounted onto a staging point in the step's scratch directory (which no step can reach), the
// staging point is checked to be the very inode that was resolved, and the runtime is given the staging point.
import { closeSync, fstatSync, lstatSync, type Stats } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeWhiteouts } from '../layer/extract.js';
import { fdPath, openInside, type Pinned, type PinOptions } from '../layer/pinned.js';
import { onInterrupt, removeSync, unmountDir, unmountSync } from './cleanup.js';
import { throwawayCopy } from './mounts.js';
import { ExecError, mountOverlay } from './overlay.js';
import { runProcess } from './process.js';

export type Cleanup = (() => Promise<void>)[];

export interface Staged {
  /** the staging point: a bind mount of what was resolved, in the step's scratch directory */
  path: string;
  stats: Stats;
}

/**
 * Resolves `rel` inside `root` by descriptors and binds what it reached onto a fresh staging point under `scratch`
 * (unmounted by `cleanup`). Throws ENOENT/ENOTDIR as openInside does.
 */
export async function stageInside(
  root: string,
  rel: string,
  scratch: string,
  cleanup: Cleanup,
  options: PinOptions = {},
): Promise<Staged> {
  // What was resolved may be removed before it is mounted (the kernel then refuses to bind it): resolved again.
  for (let attempt = 1; ; attempt++) {
    const pinned = openInside(root, rel, options);
    try {
      const staged = await bindPinned(pinned, scratch, cleanup);
      if (staged) return staged;
      if (attempt >= 20)
        throw new ExecError(`the mount source /${pinned.rel} kept being removed while it was being mounted`);
    } finally {
      closeSync(pinned.fd);
    }
  }
}

/** staging points in use → what they show, relative to its root */
const staged = new Map<string, string>();

/**
 * Of the sources a step's runtime was given, one that is no longer linked where it was (another step removed it
 * after it was staged, so the runtime could not bind it): its path relative to its root. For the step's error.
 */
export function removedSource(sources: readonly string[]): string | undefined {
  for (const s of sources) {
    const rel = staged.get(s);
    if (rel !== undefined && lstatSync(s, { throwIfNoEntry: false })?.nlink === 0) return rel;
  }
  return undefined;
}

/** The bind of a pinned source onto a staging point; undefined when the source was removed before it was bound. */
async function bindPinned(pinned: Pinned, scratch: string, cleanup: Cleanup): Promise<Staged | undefined> {
  const dir = await mkdtemp(path.join(scratch, 'stage-'));
  const point = path.join(dir, 'point');
  if (pinned.stats.isDirectory()) await mkdir(point);
  else await writeFile(point, '');
  // --no-canonicalize: mount(8) would otherwise resolve /proc/self/fd/3 to a path string, the race again.
  const r = await runProcess('mount', ['--no-canonicalize', '--bind', fdPath(3), point], { fds: [pinned.fd] });
  if (r.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    if (fstatSync(pinned.fd).nlink === 0) return undefined;
    throw new ExecError(
      `cannot stage the mount source /${pinned.rel}: ${(r.stderr || r.error?.message || '').split(point).join('its staging point').trim()}`,
    );
  }
  const forget = onInterrupt(() => {
    unmountSync(point);
    removeSync(dir);
  });
  staged.set(point, pinned.rel);
  cleanup.push(async () => {
    staged.delete(point);
    await unmountDir(point);
    await rm(dir, { recursive: true, force: true });
    forget();
  });
  const st = lstatSync(point);
  if (st.dev !== pinned.stats.dev || st.ino !== pinned.stats.ino)
    throw new ExecError(`the mount source /${pinned.rel} changed while it was being mounted`);
  return { path: point, stats: pinned.stats };
}

/**
 * A directory (bottom first: `lowers`) as a step sees it, read-only or with its writes thrown away, with the entries
 * named in `hidden` (relative paths, topmost ones) not there: whited out in an overlay, or, where overlayfs cannot
 * stack here, left out of a throwaway copy. The answer is a path to bind into the container.
 */
export async function viewOf(
  source: Staged,
  hidden: readonly string[],
  writable: boolean,
  scratch: string,
  cleanup: Cleanup,
): Promise<string> {
  if (!source.stats.isDirectory()) return writable ? throwawayCopy(source.path, scratch) : source.path;
  if (hidden.length === 0 && !writable) return source.path;
  const lowers = [source.path];
  if (hidden.length > 0) {
    const w = await mkdtemp(path.join(scratch, 'hidden-'));
    cleanup.push(() => rm(w, { recursive: true, force: true }));
    const devices = hidden.map((h) => path.join(w, h));
    for (const d of devices) await mkdir(path.dirname(d), { recursive: true });
    if (await makeWhiteouts(w, devices)) lowers.push(w);
  }
  if (lowers.length === 1 + (hidden.length > 0 ? 1 : 0)) {
    try {
      const m = await mountOverlay(lowers, scratch, { readOnly: !writable });
      cleanup.push(() => m.release());
      return m.merged;
    } catch (e) {
      if (!(e instanceof ExecError)) throw e;
    }
  }
  // No overlay here (a context on an overlay already stacked too deep, no whiteouts without mknod): a copy.
  const copy = await throwawayCopy(source.path, scratch);
  for (const h of hidden) await rm(path.join(copy, h), { recursive: true, force: true });
  return copy;
}
