// The copy-on-write root of a RUN step: the image's layers as read-only lower dirs (each an unpacked snapshot in
// the store, top first), a fresh upper dir that receives every change, mounted with redirect_dir=off and
// index=off so that the upper dir is a plain diff (shared/research/builders.md §2, §6).
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';

export class ExecError extends Error {
  override readonly name = 'ExecError';
}

export interface OverlayMount {
  merged: string;
  upper: string;
  /** unmounts and removes everything this mount made */
  release(): Promise<void>;
}

export async function mountOverlay(lowerDirs: readonly string[], scratch: string): Promise<OverlayMount> {
  const dir = await mkdtemp(path.join(scratch, 'run-'));
  const [upper, work, merged, empty] = ['upper', 'work', 'merged', 'empty'].map((d) => path.join(dir, d));
  for (const d of [upper, work, merged, empty]) await mkdir(d);
  // overlayfs needs at least one lower dir; a scratch image has none.
  const lower = lowerDirs.length > 0 ? [...lowerDirs].reverse().join(':') : empty;
  const options = `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=off,index=off`;
  if (options.length > 3500) throw new ExecError(`too many layers to mount at once (${lowerDirs.length})`);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', options, merged], { encoding: 'utf8' });
  if (r.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new ExecError(`cannot mount the overlay for RUN: ${r.stderr.trim() || r.error?.message}; RUN needs root (or passwordless sudo) and overlayfs`);
  }
  let released = false;
  return {
    merged,
    upper,
    async release() {
      if (released) return;
      released = true;
      spawnSync('umount', [merged]);
      if (spawnSync('mountpoint', ['-q', merged]).status === 0) spawnSync('umount', ['-l', merged]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
