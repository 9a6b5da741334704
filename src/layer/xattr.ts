// Extended attributes, which Node cannot read or write: overlayfs keeps an opaque directory in
// trusted.overlay.opaque, setcap writes security.capability, and layers carry xattrs of their own. Two ways are
// used, whichever the machine has: python3's os.getxattr/os.setxattr (GitHub's ubuntu-22.04 and ubuntu-24.04
// images ship python3 but not the attr package — runner-images toolset-2404.json lists `acl`, not `attr`), or
// getfattr/setfattr from the attr package (Debian and Ubuntu: apt-get install attr). Python is asked first: it
// takes every name as bytes (base64 both ways), where getfattr's dump format escapes names in its own way.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { onPath, python3, runProcess } from '../exec/process.js';
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
    const has = (cmd: string) => onPath(cmd) !== undefined;
    // The attr tools first where both are there: a getfattr run costs 4 ms, a python3 start 100–200 ms (every RUN
    // step reads its upper dir's whiteouts and capabilities once).
    found = has('getfattr') && has('setfattr') ? 'attr' : python3() !== undefined ? 'python3' : null;
  }
  return found ?? undefined;
}

export const xattrToolMissing =
  'RUN needs python3, or getfattr and setfattr (apt-get install attr), to read and write overlayfs whiteouts';

/** A tool the machine lacks: what to install, said in one line (a user's error, not hoist's). */
export class ToolMissingError extends Error {
  override readonly name = 'ToolMissingError';
}

/**
 * Python: xattr_look(path, names, emit) and xattr_walk(root, names, emit) call emit(path, name, value) for each of
 * `names` (bytes) that a path (no last symlink followed), or the root and everything under it, has. Shared by the
 * read script below and the build's mount helper (exec/erofs-mount.ts).
 */
export const pythonXattrs = `
def xattr_look(p, names, emit):
    for n in names:
        try:
            v = os.getxattr(p, n, follow_symlinks=False)
        except OSError:
            continue
        emit(p, n, v)
def xattr_walk(root, names, emit):
    xattr_look(root, names, emit)
    for d, dirs, files in os.walk(root):
        for f in dirs + files:
            xattr_look(os.path.join(d, f), names, emit)
`;

// One line a file and attribute: base64(path) base64(name) base64(value). Only the names asked for are read: of
// everything under the root (`tree ROOT NAME…`), or of the paths on stdin, one base64 path a line (`list NAME…`).
const readScript = String.raw`
import os, sys, base64
${pythonXattrs}
b = lambda v: base64.b64encode(v).decode()
mode = sys.argv[1]
names = [n.encode() for n in sys.argv[(3 if mode == 'tree' else 2):]]
emit = lambda p, n, v: sys.stdout.write(b(p) + ' ' + b(n) + ' ' + b(v) + '\n')
if mode == 'tree':
    xattr_walk(os.fsencode(sys.argv[2]), names, emit)
else:
    # A batch of paths, then an empty line: the batch's answers, then an empty line (the reader stays for the next).
    for line in sys.stdin:
        line = line.strip()
        if line:
            xattr_look(base64.b64decode(line), names, emit)
        else:
            sys.stdout.write('\n')
            sys.stdout.flush()
`;

// Reads base64(path) base64(name) base64(value) lines from stdin; prints the index of each that failed.
const writeScript = `
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
    else if (current !== undefined && line.includes('=0s'))
      add(current, line.slice(0, line.indexOf('=')), Buffer.from(line.slice(line.indexOf('=0s') + 3).trim(), 'base64'));
  }
}

/** [absolute path, name, value] triples (as python3 reads them: bytes) by path relative to `root`. */
export function treeOf(root: string, triples: readonly Buffer[][]): Map<string, Map<string, Buffer>> {
  const found = new Map<string, Map<string, Buffer>>();
  for (const [p, n, v] of triples) {
    const rel = path.relative(root, nameFromBytes(p));
    if (!found.has(rel)) found.set(rel, new Map());
    found.get(rel)!.set(n.toString(), v);
  }
  return found;
}

/** The attributes `names` of everything under `root` (the root included), by path relative to it. */
export async function readXattrTree(
  root: string,
  names: readonly string[],
  tool: XattrTool | null = xattrTool() ?? null,
): Promise<Map<string, Map<string, Buffer>>> {
  if (tool === 'python3') {
    const r = await runProcess(python3() ?? 'python3', ['-c', readScript, 'tree', root, ...names]);
    if (r.status !== 0) throw new Error(`reading xattrs under ${root}: ${r.error?.message ?? r.stderr.trim()}`);
    return treeOf(
      root,
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(' ').map((x) => Buffer.from(x, 'base64'))),
    );
  }
  const found = new Map<string, Map<string, Buffer>>();
  const add = (abs: string, name: string, value: Buffer) => {
    const rel = path.relative(root, abs);
    if (!found.has(rel)) found.set(rel, new Map());
    found.get(rel)!.set(name, value);
  };
  if (tool === 'attr') {
    const escaped = namePattern(names);
    const r = await runProcess('getfattr', [
      '-R',
      '-P',
      '-h',
      '--absolute-names',
      '-e',
      'base64',
      '-m',
      `^(${escaped.join('|')})$`,
      '-d',
      root,
    ]);
    readGetfattr(r.stdout, add);
  } else {
    throw new ToolMissingError(xattrToolMissing);
  }
  return found;
}

/**
 * The attributes `names` of each of `paths` (absolute; none followed if a symlink), by path. With python3, one
 * process per set of names serves every call (a step of the no-mount executor asks once; a python3 start is
 * 100 ms here), ended when this process ends.
 */
export async function readXattrsOf(
  paths: readonly string[],
  names: readonly string[],
  tool: XattrTool | null = xattrTool() ?? null,
): Promise<Map<string, Map<string, Buffer>>> {
  const found = new Map<string, Map<string, Buffer>>();
  if (paths.length === 0) return found;
  const add = (p: string, name: string, value: Buffer) => {
    if (!found.has(p)) found.set(p, new Map());
    found.get(p)!.set(name, value);
  };
  if (tool === 'python3') {
    for (const line of await listReader(names).ask(paths)) {
      const [p, n, v] = line.split(' ').map((x) => Buffer.from(x, 'base64'));
      add(nameFromBytes(p), n.toString(), v);
    }
    return found;
  }
  if (tool !== 'attr') throw new ToolMissingError(xattrToolMissing);
  const escaped = namePattern(names);
  for (let i = 0; i < paths.length; ) {
    const batch: string[] = [];
    for (
      let bytes = 0;
      i < paths.length && (batch.length === 0 || bytes + paths[i].length < 64 * 1024);
      bytes += paths[i++].length + 1
    )
      batch.push(paths[i]);
    const r = await runProcess('getfattr', [
      '-P',
      '-h',
      '--absolute-names',
      '-e',
      'base64',
      '-m',
      `^(${escaped.join('|')})$`,
      '-d',
      '--',
      ...batch,
    ]);
    readGetfattr(r.stdout, add);
  }
  return found;
}

/** A python3 process answering batches of paths (readScript's list mode), one batch at a time. */
class ListReader {
  private readonly child: ChildProcess;
  private queue: Promise<unknown> = Promise.resolve();
  private buffered = '';
  private waiting: ((lines: string[] | Error) => void) | undefined;

  constructor(names: readonly string[]) {
    this.child = spawn(python3() ?? 'python3', ['-c', readScript, 'list', ...names], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    // Idle, it does not keep this process alive; asked, it does (until it answers).
    this.hold(false);
    this.child.stdout?.on('data', (c: Buffer) => {
      this.buffered += c.toString();
      const end =
        this.buffered.indexOf('\n\n') >= 0 ? this.buffered.indexOf('\n\n') + 1 : this.buffered === '\n' ? 0 : -1;
      if (end < 0 || !this.waiting) return;
      const lines = this.buffered.slice(0, end).split('\n').filter(Boolean);
      this.buffered = this.buffered.slice(end + 1);
      const w = this.waiting;
      this.waiting = undefined;
      this.hold(false);
      w(lines);
    });
    const fail = (e: Error) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.(e);
    };
    this.child.on('error', fail);
    this.child.on('exit', () => fail(new Error('reading xattrs: python3 ended')));
  }

  private hold(on: boolean): void {
    for (const h of [this.child, this.child.stdin, this.child.stdout] as unknown as {
      ref?: () => void;
      unref?: () => void;
    }[])
      (on ? h?.ref : h?.unref)?.call(h);
  }

  ask(paths: readonly string[]): Promise<string[]> {
    const run = this.queue.then(
      () =>
        new Promise<string[]>((resolve, reject) => {
          this.waiting = (r) => (r instanceof Error ? reject(r) : resolve(r));
          this.hold(true);
          this.child.stdin?.write(`${paths.map((p) => `${b64(nameToBytes(p))}\n`).join('')}\n`);
        }),
    );
    this.queue = run.catch(() => undefined);
    return run;
  }
}

const readers = new Map<string, ListReader>();
function listReader(names: readonly string[]): ListReader {
  const key = names.join('\0');
  let r = readers.get(key);
  if (!r) {
    r = new ListReader(names);
    readers.set(key, r);
  }
  return r;
}

/** Sets each attribute without following a last symlink; answers the ones that could not be set. */
export function writeXattrs(items: readonly XattrSet[], tool: XattrTool | null = xattrTool() ?? null): XattrSet[] {
  if (items.length === 0) return [];
  if (tool === 'python3') {
    const input = items.map((x) => `${b64(nameToBytes(x.path))} ${b64(x.name)} ${b64(x.value)}\n`).join('');
    const r = spawnSync(python3() ?? 'python3', ['-c', writeScript], {
      input,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) return [...items];
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((i) => items[Number(i)]);
  }
  if (tool !== 'attr') return [...items];
  // setfattr takes one name and value and many paths: one run for a batch of paths (thousands of opaque
  // directories in a layer), each path again alone only when a batch fails.
  const setfattr = (batch: readonly XattrSet[]) =>
    spawnSync(
      'setfattr',
      ['-h', '-n', batch[0].name, '-v', `0s${b64(batch[0].value)}`, '--', ...batch.map((x) => x.path)],
      { stdio: 'ignore' },
    ).status === 0;
  const groups = new Map<string, XattrSet[]>();
  for (const x of items) {
    const key = `${x.name}\0${b64(x.value)}`;
    groups.set(key, [...(groups.get(key) ?? []), x]);
  }
  const failed: XattrSet[] = [];
  for (const group of groups.values()) {
    for (let i = 0; i < group.length; ) {
      const batch: XattrSet[] = [];
      for (
        let bytes = 0;
        i < group.length && (batch.length === 0 || bytes + group[i].path.length < 64 * 1024);
        bytes += group[i++].path.length + 1
      )
        batch.push(group[i]);
      if (!setfattr(batch)) failed.push(...batch.filter((x) => !setfattr([x])));
    }
  }
  return failed;
}
