// The executor of a build, chosen once (executor.ts): runc over overlayfs where this machine may mount, else proot
// (or chroot) in a plain directory; or the one --isolation names.
import { readlinkSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Store } from '../store/store.js';
import { directoryExecutor } from './directory-executor.js';
import { type Executor, type Isolation, overlayRefused } from './executor.js';
import { prestartHelper } from './erofs-mount.js';
import { ExecError } from './overlay.js';
import { OverlayExecutor } from './overlay-executor.js';
import { findRuntime } from './runc.js';

const noRuntime = 'RUN needs an OCI runtime: install runc (apt-get install runc) or crun';

/** `log`: where a later word about the executor goes (that RUN's lowers are unpacked directories here). */
export async function chooseExecutor(
  store: Store,
  isolation: Isolation,
  log?: (line: string) => void,
): Promise<Executor> {
  const probes = path.join(store.root, 'tmp');
  await mkdir(probes, { recursive: true });
  if (isolation === 'proot' || isolation === 'chroot') {
    // Where the overlay could be mounted, this is a machine (not a container without privileges): proot and chroot
    // are no boundary, and a root step reaches what the machine's root reaches (its /proc, its files by path).
    const onMachine = process.getuid?.() === 0 && !(await overlayRefused(probes));
    return directoryExecutor(
      store,
      isolation,
      `--isolation ${isolation}${onMachine ? '; WARNING: this machine may mount, so it is no container: a step runs as its root beside it, with its /proc — build untrusted Dockerfiles with --isolation runc here' : ''}`,
    );
  }
  // The overlay executor's mounts go through the mount helper: started while the overlay is probed.
  prestartHelper();
  const runtime = findRuntime();
  if (isolation === 'runc') {
    if (!runtime) throw new ExecError(noRuntime);
    return new OverlayExecutor(store, runtime).prepare(probes, log);
  }
  const known = await overlayKnownHere(store);
  const refused = known ? undefined : await overlayRefused(probes);
  if (!refused && !known) await noteOverlayHere(store);
  if (!refused) {
    if (!runtime) throw new ExecError(`${noRuntime} (or pass --isolation proot)`);
    return new OverlayExecutor(store, runtime).prepare(probes, log);
  }
  return directoryExecutor(store, 'auto', `this machine may not mount: ${refused.split('\n')[0].replace(/\.$/, '')}`);
}

/**
 * This machine, this boot, this user and these namespaces: where an overlay was mounted once, it can be again (a
 * container without privileges has namespaces of its own, a store shared with it is told apart). The probe costs
 * two mounts and a namespace, 20–30 ms, on every build with a RUN; a developer's rebuild pays it once a boot.
 */
function overlayKey(): string | undefined {
  try {
    return [
      readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      process.getuid?.(),
      readlinkSync('/proc/self/ns/mnt'),
      readlinkSync('/proc/self/ns/user'),
    ].join(' ');
  } catch {
    return undefined;
  }
}

async function overlayKnownHere(store: Store): Promise<boolean> {
  const key = overlayKey();
  return key !== undefined && (await readFile(path.join(store.root, 'overlay-here'), 'utf8').catch(() => '')) === key;
}

async function noteOverlayHere(store: Store): Promise<void> {
  const key = overlayKey();
  if (key === undefined) return;
  await store.writeWhole(path.join(store.root, 'overlay-here'), key).catch(() => undefined);
}
