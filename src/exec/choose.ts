// The executor of a build, chosen once (executor.ts): runc over overlayfs where this machine may mount, else proot
// (or chroot) in a plain directory; or the one --isolation names.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Store } from '../store/store.js';
import { directoryExecutor } from './directory-executor.js';
import { type Executor, type Isolation, overlayRefused } from './executor.js';
import { ExecError } from './overlay.js';
import { OverlayExecutor } from './overlay-executor.js';
import { findRuntime } from './runc.js';
import { xattrTool, xattrToolMissing } from '../layer/xattr.js';

const noRuntime = 'RUN needs an OCI runtime: install runc (apt-get install runc) or crun';

export async function chooseExecutor(store: Store, isolation: Isolation): Promise<Executor> {
  if (isolation === 'proot' || isolation === 'chroot') return directoryExecutor(store, isolation, `--isolation ${isolation}`);
  const runtime = findRuntime();
  if (isolation === 'runc') {
    if (!runtime) throw new ExecError(noRuntime);
    return overlayExecutor(store, runtime);
  }
  const probes = path.join(store.root, 'tmp');
  await mkdir(probes, { recursive: true });
  const refused = await overlayRefused(probes);
  if (!refused) {
    if (!runtime) throw new ExecError(`${noRuntime} (or pass --isolation proot)`);
    return overlayExecutor(store, runtime);
  }
  return directoryExecutor(store, 'auto', `this machine may not mount: ${refused.split('\n')[0].replace(/\.$/, '')}`);
}

/** runc over overlayfs, once what it needs beside the runtime is known to be there. */
function overlayExecutor(store: Store, runtime: string): OverlayExecutor {
  // Opaque directories live in an xattr that only python3 or the attr tools read and write here.
  if (!xattrTool()) throw new ExecError(xattrToolMissing);
  return new OverlayExecutor(store, runtime);
}
