// Extended attributes, which Node cannot read or write: overlayfs keeps an opaque directory in
// trusted.overlay.opaque, setcap writes security.capability, and layers carry xattrs of their own. Two ways are
// used, whichever the machine has: python3's os.getxattr/os.setxattr (GitHub's ubuntu-22.04 and ubuntu-24.04
// images ship python3 but not the attr package — runner-images toolset-2404.json lists `acl`, not `attr`), or
// getfattr/setfattr from the attr package (Debian and Ubuntu: apt-get install attr). Python is asked first: it
// takes every name as bytes (base64 both ways), where getfattr's dump format escapes names in its own way.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { runProcess } from '../exec/process.js';
import { nameFromBytes, nameToBytes } from './names.js';

export type XattrTool = 'python3' | 'attr';

export interface XattrSet {
  path: string;
  name: string;
  value: Buffer;
}

let found: XattrTool | null | undefined;

/** The tool this machine has, or undefined; looked up once per process. */
export function xattrTool(): XattrTool | undefined {
  if (found === undefined) {
    const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
    found = has('python3') ? 'python3' : has('getfattr') && has('setfattr') ? 'attr' : null;
  }
  return found ?? undefined;
}

export const xattrToolMissing = 'RUN needs python3, or getfattr and setfattr (apt-get install attr), to read and write overlayfs whiteouts';

// One line a file and attribute: base64(path) base64(name) base64(value). Only the names asked for are read.
const readScript = String.raw`
import os, sys, base64
b = lambda v: base64.b64encode(v).decode()
root = os.fsencode(sys.argv[1])
names = [n.encode() for n in sys.argv[2:]]
def look(p):
    for n in names:
        try:
            v = os.getxattr(p, n, follow_symlinks=False)
        except OSError:
            continue
        sys.stdout.write(b(p) + ' ' + b(n) + ' ' + b(v) + '\n')
look(root)
for d, dirs, files in os.walk(root):
    for f in dirs + files:
        look(os.path.join(d, f))
`;

// The same for the paths given on stdin (one base64 path a line), none of them walked into.
const readListScript = String.raw`
import os, sys, base64
b = lambda v: base64.b64encode(v).decode()
names = [n.encode() for n in sys.argv[1:]]
for line in sys.stdin:
    p = base64.b64decode(line.strip())
    for n in names:
        try:
            v = os.getxattr(p, n, follow_symlinks=False)
        except OSError:
            continue
        sys.stdout.write(b(p) + ' ' + b(n) + ' ' + b(v) + '\n')
`;

// Reads base64(path) base64(name) base64(value) lines from stdin; prints the index of each that failed.
const writeScript = String.raw`
import os, sys, base64
for i, line in enumerate(sys.stdin):
    p, n, v = (base64.b64decode(x) for x in line.split())
    try:
        os.setxattr(p, n, v, follow_symlinks=False)
    except OSError:
        print(i)
`;

const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64');

const namePattern = (names: readonly string[]) => names.map((n) => n.replace(/[.^$]/g, (c) => `\\${c}`));

/** getfattr -d -e base64's dump: `# file: PATH` then NAME=0sBASE64 lines. */
function readGetfattr(dump: string, add: (file: string, name: string, value: Buffer) => void): void {
  let current: string | undefined;
  for (const line of dump.split('\n')) {
    if (line.startsWith('# file: ')) current = line.slice(8);
    else if (current !== undefined && line.includes('=0s')) add(current, line.slice(0, line.indexOf('=')), Buffer.from(line.slice(line.indexOf('=0s') + 3).trim(), 'base64'));
  }
}

/** The attributes `names` of everything under `root` (the root included), by path relative to it. */
export async function readXattrTree(root: string, names: readonly string[], tool: XattrTool | null = xattrTool() ?? null): Promise<Map<string, Map<string, Buffer>>> {
  const found = new Map<string, Map<string, Buffer>>();
  const add = (abs: string, name: string, value: Buffer) => {
    const rel = path.relative(root, abs);
    if (!found.has(rel)) found.set(rel, new Map());
    found.get(rel)!.set(name, value);
  };
  if (tool === 'python3') {
    const r = await runProcess('python3', ['-c', readScript, root, ...names]);
    if (r.status !== 0) throw new Error(`reading xattrs under ${root}: ${r.error?.message ?? r.stderr.trim()}`);
    for (const line of r.stdout.split('\n')) {
      if (!line) continue;
      const [p, n, v] = line.split(' ').map((x) => Buffer.from(x, 'base64'));
      add(nameFromBytes(p), n.toString(), v);
    }
  } else if (tool === 'attr') {
    const escaped = namePattern(names);
    const r = await runProcess('getfattr', ['-R', '-P', '-h', '--absolute-names', '-e', 'base64', '-m', `^(${escaped.join('|')})$`, '-d', root]);
    readGetfattr(r.stdout, add);
  } else {
    throw new Error(xattrToolMissing);
  }
  return found;
}

/** The attributes `names` of each of `paths` (absolute; none followed if a symlink), by path. */
export async function readXattrsOf(paths: readonly string[], names: readonly string[], tool: XattrTool | null = xattrTool() ?? null): Promise<Map<string, Map<string, Buffer>>> {
  const found = new Map<string, Map<string, Buffer>>();
  if (paths.length === 0) return found;
  const add = (p: string, name: string, value: Buffer) => {
    if (!found.has(p)) found.set(p, new Map());
    found.get(p)!.set(name, value);
  };
  if (tool === 'python3') {
    const input = paths.map((p) => `${b64(nameToBytes(p))}\n`).join('');
    const r = spawnSync('python3', ['-c', readListScript, ...names], { input, maxBuffer: 256 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`reading xattrs: ${r.error?.message ?? r.stderr.toString().trim()}`);
    for (const line of r.stdout.toString().split('\n')) {
      if (!line) continue;
      const [p, n, v] = line.split(' ').map((x) => Buffer.from(x, 'base64'));
      add(nameFromBytes(p), n.toString(), v);
    }
    return found;
  }
  if (tool !== 'attr') throw new Error(xattrToolMissing);
  const escaped = namePattern(names);
  for (let i = 0; i < paths.length; ) {
    const batch: string[] = [];
    for (let bytes = 0; i < paths.length && (batch.length === 0 || bytes + paths[i].length < 64 * 1024); bytes += paths[i++].length + 1) batch.push(paths[i]);
    const r = await runProcess('getfattr', ['-P', '-h', '--absolute-names', '-e', 'base64', '-m', `^(${escaped.join('|')})$`, '-d', '--', ...batch]);
    readGetfattr(r.stdout, add);
  }
  return found;
}

/** Sets each attribute without following a last symlink; answers the ones that could not be set. */
export function writeXattrs(items: readonly XattrSet[], tool: XattrTool | null = xattrTool() ?? null): XattrSet[] {
  if (items.length === 0) return [];
  if (tool === 'python3') {
    const input = items.map((x) => `${b64(nameToBytes(x.path))} ${b64(x.name)} ${b64(x.value)}\n`).join('');
    const r = spawnSync('python3', ['-c', writeScript], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) return [...items];
    return r.stdout.split('\n').filter(Boolean).map((i) => items[Number(i)]);
  }
  if (tool !== 'attr') return [...items];
  // setfattr takes one name and value and many paths: one run for a batch of paths (thousands of opaque
  // directories in a layer), each path again alone only when a batch fails.
  const setfattr = (batch: readonly XattrSet[]) => spawnSync('setfattr', ['-h', '-n', batch[0].name, '-v', `0s${b64(batch[0].value)}`, '--', ...batch.map((x) => x.path)], { stdio: 'ignore' }).status === 0;
  const groups = new Map<string, XattrSet[]>();
  for (const x of items) {
    const key = `${x.name}\0${b64(x.value)}`;
    groups.set(key, [...(groups.get(key) ?? []), x]);
  }
  const failed: XattrSet[] = [];
  for (const group of groups.values()) {
    for (let i = 0; i < group.length;) {
      const batch: XattrSet[] = [];
      for (let bytes = 0; i < group.length && (batch.length === 0 || bytes + group[i].path.length < 64 * 1024); bytes += group[i++].path.length + 1) batch.push(group[i]);
      if (!setfattr(batch)) failed.push(...batch.filter((x) => !setfattr([x])));
    }
  }
  return failed;
}
