// The layer of a RUN step: the overlay upper dir, walked (never the whole root), in walk order. Overlay whiteouts
// become OCI whiteouts (a 0/0 character device → `.wh.NAME`, only for paths that exist below; an opaque
// directory → `.wh..wh..opq`); hard links within the layer stay hard links; the files the runtime made as mount
// points for /etc/hosts and /etc/resolv.conf are left out when the image did not have them.
import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { FsIndex } from '../layer/fs-index.js';
import { fsPath, readdirNames, readlinkName } from '../layer/names.js';
import type { TarHeader } from '../layer/tar.js';
import type { LayerEntry } from '../layer/writer.js';
import { readXattrTree, treeOf } from '../layer/xattr.js';
import { helperXattrTree } from './erofs-mount.js';

// BuildKit keeps the /proc, /dev and /sys directories the runtime made; the bind-mounted files go.
const mountPoints = ['etc/hosts', 'etc/resolv.conf'];

/**
 * The two xattrs the layer needs from the upper dir, in one walk: trusted.overlay.opaque=y (directories a step
 * deleted and made again) and security.capability (what setcap wrote), by relative path.
 */
async function upperXattrs(upper: string): Promise<{ opaque: Set<string>; caps: Map<string, Buffer> }> {
  const opaque = new Set<string>();
  const caps = new Map<string, Buffer>();
  const names = ['trusted.overlay.opaque', 'security.capability'];
  const byHelper = await helperXattrTree(upper, names);
  const tree = byHelper ? treeOf(upper, byHelper) : await readXattrTree(upper, names);
  for (const [rel, attrs] of tree) {
    if (attrs.get('trusted.overlay.opaque')?.toString() === 'y') opaque.add(rel);
    const cap = attrs.get('security.capability');
    if (cap) caps.set(rel, cap);
  }
  return { opaque, caps };
}

/**
 * The upper dir as layer entries. `mountTargets` (RUN --mount targets, absolute) and the directories made only to
 * hold them are left out when the image did not have them: a mount's content never reaches the layer. `dropped`
 * names what of the upper dir the layer leaves out (remove it before the upper dir stands in for the layer).
 */
export async function upperDirEntries(
  upper: string,
  lower: FsIndex,
  mountTargets: readonly string[] = [],
): Promise<{ entries: LayerEntry[]; dropped: string[] }> {
  const dropped: string[] = [];
  const entries = await walkUpper(upper, lower, dropped);
  const kept = withoutMountStubs(entries, lower, mountTargets);
  return { entries: kept.entries, dropped: [...dropped, ...kept.dropped] };
}

/**
 * A step's layer entries less what its mounts needed made: `targets` (RUN --mount targets, absolute; /etc/hosts and
 * /etc/resolv.conf are always ones) and the directories made only to hold them, when the image did not have them.
 */
export function withoutMountStubs(
  entries: LayerEntry[],
  lower: FsIndex,
  mountTargets: readonly string[],
): { entries: LayerEntry[]; dropped: string[] } {
  const dropped: string[] = [];
  // What the step's mounts needed made (BuildKit ≥ 0.11 removes them, moby/buildkit#3307): the mount points the
  // image lacked, /etc/hosts and /etc/resolv.conf among them, and the directories made only to hold them.
  const targets = [...mountTargets, ...mountPoints.map((m) => `/${m}`)];
  const stubs = new Set<string>();
  for (const t of targets) {
    const parts = t.split('/').filter(Boolean);
    for (let i = parts.length; i >= 1; i--) {
      const p = parts.slice(0, i).join('/');
      if (lower.lookup(p)) break;
      stubs.add(p);
    }
  }
  if (stubs.size === 0) return { entries, dropped };
  const below = (name: string, dir: string) => name.startsWith(`${dir}/`);
  const made = targets.map((t) => t.split('/').filter(Boolean).join('/')).filter((t) => stubs.has(t));
  // A mount target and what is under it go (the mount's content never reaches the layer); a directory made for a
  // target stays only if the step wrote something else below it.
  const kept = entries.filter(
    (e) =>
      !(stubs.has(e.header.name) && e.header.type !== 'directory') &&
      !made.some((t) => e.header.name === t || below(e.header.name, t)),
  );
  const result = kept.filter(
    (e) =>
      !(e.header.type === 'directory' && stubs.has(e.header.name)) ||
      kept.some(
        (o) => below(o.header.name, e.header.name) && !(o.header.type === 'directory' && stubs.has(o.header.name)),
      ),
  );
  const keptNames = new Set(result.map((e) => e.header.name));
  for (const e of entries) if (!keptNames.has(e.header.name)) dropped.push(e.header.name);
  return { entries: result, dropped };
}

async function walkUpper(upper: string, lower: FsIndex, dropped: string[]): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [];
  const { opaque, caps } = await upperXattrs(upper);
  const links = new Map<string, string>();
  const visit = async (rel: string) => {
    const abs = path.join(upper, rel);
    for (const name of readdirNames(abs).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(upper, r);
      // (synchronous: an lstat through the thread pool costs ~60 µs of round trip, 0.1 s for 2000 files)
      const st = lstatSync(fsPath(p));
      if (
        mountPoints.includes(r) &&
        !lower.lookup(r) &&
        (st.isDirectory() ? readdirSync(p).length === 0 : st.size === 0)
      ) {
        dropped.push(r);
        continue;
      }
      const base: Omit<TarHeader, 'type'> = {
        name: r,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        size: 0,
        mtime: Math.floor(st.mtimeMs / 1000),
      };
      if (st.isCharacterDevice() && st.rdev === 0) {
        if (lower.lookup(r))
          entries.push({
            header: {
              ...base,
              name: path.posix.join(rel, `.wh.${name}`),
              type: 'file',
              mode: 0,
              uid: 0,
              gid: 0,
              mtime: 0,
            },
          });
        continue;
      }
      if (st.isDirectory()) {
        entries.push({ header: { ...base, type: 'directory' } });
        if (opaque.has(r) && lower.lookup(r))
          entries.push({
            header: { ...base, name: `${r}/.wh..wh..opq`, type: 'file', mode: 0, uid: 0, gid: 0, mtime: 0 },
          });
        await visit(r);
      } else if (st.isSymbolicLink()) {
        entries.push({ header: { ...base, type: 'symlink', linkname: readlinkName(p) } });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first) entries.push({ header: { ...base, type: 'hardlink', linkname: first } });
        else {
          if (st.nlink > 1) links.set(key, r);
          const cap = caps.get(r);
          entries.push({
            header: {
              ...base,
              type: 'file',
              size: st.size,
              ...(cap ? { xattrs: { 'security.capability': cap } } : {}),
            },
            content: { path: p },
          });
        }
      } else if (st.isFIFO()) {
        entries.push({ header: { ...base, type: 'fifo' } });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        entries.push({
          header: {
            ...base,
            type: st.isCharacterDevice() ? 'char' : 'block',
            devmajor: Math.floor(st.rdev / 256) & 0xfff,
            devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
          },
        });
      }
      // sockets are not part of layers
    }
  };
  await visit('');
  return entries;
}
