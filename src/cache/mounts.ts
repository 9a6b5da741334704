// RUN --mount=type=cache directories kept across CI runs: the ones a build used, what they held when the build
// first mounted them, and a digest of a directory's content (names, types, modes, owners, link targets and file
// bytes; never times, so that a rebuild that changed nothing in a cache does not save it again).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';

export interface UsedCacheMount {
  /** the cache's name in the store (its id, with from= or the owner it starts with, hashed) */
  name: string;
  /** the mount's id, for the log */
  id: string;
  dir: string;
  /** the digest of its content when the build first mounted it */
  before: string;
}

/** Where persisted cache mounts come from: restores `name` into the empty directory `dir`; false when none. */
export interface MountRestorer {
  restoreMount(name: string, dir: string): Promise<boolean>;
}

/** The digest of everything under `dir` (itself excluded), and its bytes. */
export async function treeDigest(dir: string): Promise<{ digest: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(dir, rel))).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = await lstat(p);
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      h.update(`${JSON.stringify(r)} ${type} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${type === 'f' ? st.size : 0}`);
      if (type === 'l') h.update(` -> ${await readlink(p)}`);
      if (type === 'f') {
        bytes += st.size;
        for await (const c of createReadStream(p, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
      }
      h.update('\n');
      if (type === 'd') await walk(r);
    }
  };
  await walk('');
  return { digest: `sha256:${h.digest('hex')}`, bytes };
}
