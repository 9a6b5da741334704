// proot (Debian's package): enters a root directory without privileges by tracing the step's processes with
// ptrace and rewriting the paths of their system calls, so /proc, /dev, /sys and a step's mounts are "bound" in
// where mount(2) is refused. Two things of proot need handling:
// - it runs every program through a loader it writes to /tmp readable by its own user only (u+rx): a process of the
//   step that changes user (apt-get's _apt sandbox, su, setpriv) could then exec nothing ("Permission denied"). A
//   copy of the loader readable by all, named by PROOT_LOADER, serves every user.
// - it waits for every process it traces and exits with the status of the last one: a daemon left behind would
//   hold the build, and the step's own status would be lost. The step is started by a shell line that reports its
//   status on a pipe of its own (fd 3, closed for the command); then what is left is killed, as runc kills a
//   container when its first process ends.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onInterrupt, removeSync } from './cleanup.js';

let loader: { path?: string } | undefined;

/**
 * proot's loader, copied once per process into a directory of its own that every user may read (removed when the
 * process ends). Undefined when it cannot be had: then steps that change user cannot exec (said by the caller).
 */
export function prootLoader(proot: string): string | undefined {
  if (loader) return loader.path;
  loader = {};
  // The loader is what proot maps first into every program it starts: the shell's own map names it.
  const script = 'while read -r a b c d e f; do case "$f" in */prooted-*) exec cat "$f";; esac; done < /proc/self/maps; exit 1';
  const r = spawnSync(proot, ['-v', '-1', '-r', '/', '/bin/sh', '-c', script], { maxBuffer: 16 * 1024 * 1024, env: { PATH: process.env.PATH } });
  if (r.status !== 0 || !r.stdout || r.stdout.length < 64 || r.stdout.subarray(0, 4).toString('latin1') !== '\x7fELF') return undefined;
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
 * Debian's proot (5.1, built in 2015, in bookworm and trixie alike) does not know the system calls newer than it:
 * statx (what coreutils' stat, ls and cp use), faccessat2 (test -x in bash), openat2. It lets them through with the
 * step's path untranslated, so they would look at this machine's files instead of the image's. This python3 line
 * installs a seccomp filter (no new privileges, which ptrace denies a traced process anyway) that answers ENOSYS
 * for them, so the C library falls back to the calls proot translates (fstatat, faccessat), then runs its
 * arguments: proot under it, and the step under proot, inherit the filter (and not python's ignored SIGPIPE).
 */
export const seccompShim = String.raw`
import ctypes, os, platform, signal, struct, sys
# python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec: the step gets them back.
for name in ('SIGPIPE', 'SIGXFSZ'):
    signal.signal(getattr(signal, name), signal.SIG_DFL)
arch = platform.machine()
known = {'x86_64': (0xC000003E, [332, 439, 437]), 'aarch64': (0xC00000B7, [291, 439, 437])}
if arch in known:
    audit, calls = known[arch]
    ins = [(0x20, 0, 0, 4), (0x15, 1, 0, audit), (0x06, 0, 0, 0x7fff0000), (0x20, 0, 0, 0)]
    ins += [(0x15, len(calls) - i, 0, c) for i, c in enumerate(calls)]
    ins += [(0x06, 0, 0, 0x7fff0000), (0x06, 0, 0, 0x00050000 | 38)]
    prog = ctypes.create_string_buffer(b''.join(struct.pack('HBBI', *x) for x in ins))
    class Fprog(ctypes.Structure):
        _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
    fprog = Fprog(len(ins), ctypes.addressof(prog))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
        sys.stderr.write('hoist: cannot install the seccomp filter proot needs: %s\n' % os.strerror(ctypes.get_errno()))
        sys.exit(125)
# The step's environment exactly (python3 may be a wrapper that adds to its own, as pyenv's shims do).
import base64, json
env = json.loads(base64.b64decode(os.environ.get('HOIST_STEP_ENV', 'e30=')))
os.execve(sys.argv[1], sys.argv[1:], env)
`;

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

/** Pids of the processes proot `tracer` traces (TracerPid in their status). */
export function tracees(tracer: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /\nTracerPid:\s*(\d+)/.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      if (m && Number(m[1]) === tracer) out.push(Number(name));
    } catch {}
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
