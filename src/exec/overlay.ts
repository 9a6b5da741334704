// The copy-on-write root of a RUN step: the image's layers as read-only lower dirs (each an unpacked snapshot in
// the store, top first), a fresh upper dir that receives every change, mounted with redirect_dir=off and
// index=off so that the upper dir is a plain diff (shared/research/builders.md §2, §6).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { onInterrupt, removeSync, unmountDir, unmountSync } from './cleanup.js';
import { helperMountOverlay, helperUnmount } from './erofs-mount.js';
import { runProcess } from './process.js';

export class ExecError extends Error {
  override readonly name = 'ExecError';
}

function uptime(): number {
  try {
    return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/** What overlayfs told the kernel log since `since` (seconds of uptime): why a mount was refused. */
function kernelSays(since: number): string | undefined {
  const r = spawnSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }); // only when a mount failed
  const lines = (r.stdout ?? '')
    .split('\n')
    .filter((l) => /overlayfs:/.test(l) && Number(/^\[\s*([\d.]+)\]/.exec(l)?.[1] ?? 0) >= since - 1);
  const last = lines
    .at(-1)
    ?.replace(/^\[[^\]]*\]\s*/, '')
    .trim();
  return last ? `the kernel says: ${last}` : undefined;
}

export interface OverlayMount {
  merged: string;
  upper: string;
  /** unmounts, leaving the upper dir for the caller to keep */
  unmount(): Promise<void>;
  /** unmounts and removes everything this mount made */
  release(): Promise<void>;
}

/**
 * Mounts the layers (top first) at a new `merged` dir in `scratch`: read-write over a fresh upper dir, or with
 * `readOnly` only the lower stack (for a stage's filesystem as the source of COPY --from and bind mounts).
 */
/** the kernel refused overlayfs's volatile option once: not asked for again */
let volatileRefused = false;

export async function mountOverlay(
  lowerDirs: readonly string[],
  scratch: string,
  options: { readOnly?: boolean } = {},
): Promise<OverlayMount> {
  // overlayfs stacks at most 500 lower dirs (OVL_MAX_STACK); the empty bottom one may be one more.
  if (lowerDirs.length > 499)
    throw new ExecError(
      `the image has ${lowerDirs.length} layers; overlayfs stacks at most 500, so RUN cannot run on it (squash the base image)`,
    );
  const dir = await mkdtemp(path.join(scratch, 'run-'));
  const [upper, work, merged, empty] = ['upper', 'work', 'merged', 'empty'].map((d) => path.join(dir, d));
  for (const d of [upper, work, merged, empty]) await mkdir(d);
  // overlayfs needs at least one lower dir (two without an upper dir); the empty one is the bottom of the stack.
  const lower = [...lowerDirs].reverse();
  if (lower.length === 0 || options.readOnly) lower.push(empty);
  // The mount options must fit in a page: the lower dirs are named by short links in a directory that mount runs
  // in (resolved when mounting, as containerd does with relative paths), so that images of a hundred layers fit.
  const links = path.join(dir, 'l');
  await mkdir(links);
  for (const [i, d] of lower.entries()) await symlink(d, path.join(links, i.toString(36)));
  const names = lower.map((_, i) => i.toString(36)).join(':');
  // volatile (Linux 5.10): no sync of the upper dir's file system when the step's mount goes. Unmounting otherwise
  // syncs the whole file system the store is on — every file a base's unpacking has just written — which cost
  // 0.5–0.9 s a RUN step here; the upper dir is never mounted again (it becomes the layer's snapshot, or goes), and
  // nothing else the store writes is synced either. A kernel without the option mounts without it.
  const base = options.readOnly
    ? `lowerdir=${names}`
    : `lowerdir=${names},upperdir=${upper},workdir=${work},redirect_dir=off,index=off`;
  const options_ = options.readOnly || volatileRefused ? base : `${base},volatile`;
  if (options_.length > 4000) throw new ExecError(`too many layers to mount at once (${lowerDirs.length})`);
  const before = uptime();
  // By the build's mount helper (erofs-mount.ts: one python3 process, no process a mount), else by mount(8).
  const mount = async (opts: string): Promise<string> => {
    const said = await helperMountOverlay(links, opts, merged, options.readOnly === true);
    if (said !== undefined) return said;
    const r = await runProcess(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', opts, ...(options.readOnly ? ['-r'] : []), merged],
      { cwd: links },
    );
    return r.status === 0 ? '' : r.stderr.trim() || r.error?.message || `mount exited ${r.status}`;
  };
  let failed = await mount(options_);
  if (failed && options_ !== base) {
    volatileRefused = true;
    failed = await mount(base);
  }
  if (failed) {
    await rm(dir, { recursive: true, force: true });
    const why = process.getuid?.() === 0 ? kernelSays(before) : 'RUN needs root (or passwordless sudo) and overlayfs';
    throw new ExecError(`cannot mount the overlay for RUN: ${failed}${why ? `; ${why}` : ''}`);
  }
  const forget = onInterrupt(() => {
    unmountSync(merged);
    removeSync(dir);
  });
  let mounted = true;
  let released = false;
  const unmount = async () => {
    if (!mounted) return;
    mounted = false;
    if (!(await helperUnmount(merged))) await unmountDir(merged);
  };
  return {
    merged,
    upper,
    unmount,
    async release() {
      if (released) return;
      released = true;
      await unmount();
      await rm(dir, { recursive: true, force: true });
      forget();
    },
  };
}
