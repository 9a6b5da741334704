// proot (Debian's package): enters a root directory without privileges by tracing the step's processes with
// ptrace and rewriting the paths of their system calls, so /proc, /dev, /sys and a step's mounts are "bound" in
// where mount(2) is refused. Two things of proot need handling:
// - it runs every program through a loader it writes to /tmp readable by its own user only (u+rx): a process of the
//   step that changes user (apt-get's _apt sandbox, su, setpriv) could then exec nothing ("Permission denied"). A
//   copy of the loader readable by all, named by PROOT_LOADER, serves every user.
// - it waits for every process it traces and exits with the status of the last one: a daemon left behind would
//   hold the build, and the step's own status would be lost. The step is started by a shell line that reports its
//   status on a pipe of its own (fd 3, closed for the command); then what is left is killed, as runc kills a
//   container when its first process ends (by the warden, warden.ts, which also sets the seccomp filter proot needs:
//   Debian's proot, from 2015, lets statx, faccessat2 and openat2 through untranslated).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onInterrupt, removeSync } from './cleanup.js';
import { ExecError } from './overlay.js';
import { onPath, runProcess } from './process.js';

let loader: { path?: string } | undefined;

/**
 * proot's loader, copied once per process into a directory of its own that every user may read (removed when the
 * process ends). Undefined when it cannot be had: then steps that change user cannot exec (said by the caller).
 */
export function prootLoader(proot: string): string | undefined {
  if (loader) return loader.path;
  loader = {};
  // The loader is what proot maps first into every program it starts: the shell's own map names it.
  const script =
    'while read -r a b c d e f; do case "$f" in */prooted-*) exec cat "$f";; esac; done < /proc/self/maps; exit 1';
  const r = spawnSync(proot, ['-v', '-1', '-r', '/', '/bin/sh', '-c', script], {
    maxBuffer: 16 * 1024 * 1024,
    env: { PATH: process.env.PATH },
  });
  if (r.status !== 0 || !r.stdout || r.stdout.length < 64 || r.stdout.subarray(0, 4).toString('latin1') !== '\x7fELF')
    return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-proot-'));
  chmodSync(dir, 0o755);
  const file = path.join(dir, 'loader');
  writeFileSync(file, r.stdout, { mode: 0o755 });
  chmodSync(file, 0o755);
  onInterrupt(() => removeSync(dir));
  process.once('exit', () => removeSync(dir));
  loader.path = file;
  return file;
}

/**
 * The shell line that enters the step's directory ($1, followed physically, as runc's chdir), then runs the step's
 * command ("$@") and reports its status on fd 3. What this shell itself set (PWD, OLDPWD, SHLVL) and proot's
 * variable are gone from what the command gets, unless the step's environment has them (`keep`).
 */
export function reportingShell(keep: ReadonlySet<string>): string {
  const reset = ['PWD', 'OLDPWD', 'SHLVL', 'PROOT_LOADER'].filter((v) => !keep.has(v));
  const shlvl = keep.has('SHLVL') ? 'export SHLVL="$HOIST_SHLVL"; unset HOIST_SHLVL; ' : '';
  return `cd -P "$1" 2>/dev/null; shift; ${shlvl}unset ${reset.join(' ')}; "$@" 3>&-; echo $? >&3`;
}

/**
 * Whether this process may trace processes of other users (CAP_SYS_PTRACE, bit 19 of CapEff). A container's root
 * usually may not (docker's and Kubernetes' default capabilities leave it out): then proot cannot follow a step's
 * process that switches user itself (apt-get's _apt sandbox, su), whose memory it must rewrite at each exec.
 */
export function mayTraceOthers(): boolean {
  try {
    const m = /\nCapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 19n)) !== 0n;
  } catch {
    return false;
  }
}

/** Pids of every process below `ancestor` (by their parents' pids in /proc). */
export function descendantsOf(ancestor: number): number[] {
  const kids = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const siblings = kids.get(ppid);
      if (siblings) siblings.push(Number(name));
      else kids.set(ppid, [Number(name)]);
    } catch {}
  }
  const out: number[] = [];
  for (const todo = [ancestor]; todo.length > 0; )
    for (const k of kids.get(todo.pop() as number) ?? []) {
      out.push(k);
      todo.push(k);
    }
  return out;
}

/** Pids of the processes whose root directory is `root` (a chroot's). */
export function chrooted(root: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${name}/root`) === root) out.push(Number(name));
    } catch {}
  }
  return out;
}

export function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
}

/**
 * Ends what `find` finds of a step (without the warden, warden.ts): a step run as another user than hoist's and
 * root is first stopped whole — kill(-1, SIGSTOP) sent as that user by node under setpriv, which no fork slips
 * past — so that one look finds all of it; then, and otherwise, looks and kills until a look finds nothing.
 */
export async function endStep(find: () => number[], user: { uid: number; gid: number }): Promise<void> {
  const setpriv = user.uid > 0 && user.uid !== process.getuid?.() ? onPath('setpriv') : undefined;
  if (setpriv) {
    const all = (sig: string) =>
      runProcess(setpriv, [
        '--reuid',
        String(user.uid),
        '--regid',
        String(user.gid),
        '--clear-groups',
        '--',
        process.execPath,
        '-e',
        `process.kill(-1, '${sig}')`,
      ]);
    if ((await all('SIGSTOP')).status === 0) {
      killAll([...find(), ...unattributable(user.uid)]);
      await all('SIGCONT');
    }
  }
  await endAll(find);
}

/**
 * Processes of `uid` whose root directory this process may not read (a container's root lacks CAP_SYS_PTRACE, which
 * reading another user's /proc/PID/root takes): they cannot be told apart from the step's, so while that user is
 * stopped they are taken for the step's.
 */
function unattributable(uid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!new RegExp(`\\nUid:\\s+${uid}\\s`).test(readFileSync(`/proc/${name}/status`, 'utf8'))) continue;
      readlinkSync(`/proc/${name}/root`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES' || (e as NodeJS.ErrnoException).code === 'EPERM')
        out.push(Number(name));
    }
  }
  return out;
}

/**
 * Kills what `find` finds until a look finds nothing: a process forked between a look and the kills is found by the
 * next look (its parent, killed, forks no more). A process that would not end in 10 s is an error: what the step
 * touched is not taken out while something of it may still run.
 */
export async function endAll(find: () => number[]): Promise<void> {
  for (const until = Date.now() + 10_000; ; ) {
    const pids = find();
    if (pids.length === 0) return;
    if (Date.now() > until)
      throw new ExecError(
        `processes of the step would not end (pids ${pids.slice(0, 8).join(' ')}): what it left in the stage is not touched`,
      );
    killAll(pids);
    await new Promise((r) => setTimeout(r, 2));
  }
}
