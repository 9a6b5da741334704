// Every process of a step ends before hoist touches what the step could have touched (issue 34). Where RUN cannot
// mount there is no PID namespace to end with the step (runc's), and one look at /proc for what is left misses the
// newest child of a process that forks in a loop; that child then raced hoist's cleanup of the stage's directory.
//
// The warden is a python3 process between hoist and the step (proot, or chroot): a child subreaper
// (PR_SET_CHILD_SUBREAPER), so whatever the step leaves — an orphan, a daemon that forked twice, a tracee proot let go
// when the step killed it — is its descendant until it ends. It starts the step (with proot's seccomp filter when
// asked, proot.ts), and when the step's first process has ended (hoist sends SIGTERM on its report, or the child it
// started exits) it kills its descendants and waits, again and again, until it has no child at all: only then does
// it exit, so its exit means that nothing of the step runs any more. Looks and kills alone can be outrun by a chain of
// processes each forking the next (a look takes longer than a fork): a step run as another user than hoist's is
// first stopped whole, by kill(-1, SIGSTOP) sent as that user (atomic against fork), so that one look finds all of it
// (that user's other processes, on a machine that has some, are stopped for that moment too, then continued). It
// runs as hoist's user (root for a step run as another user, which may then not signal it), and ends with hoist
// (PR_SET_PDEATHSIG).
//
// Without python3 (chroot only): a PID namespace where one may be made (unshare --pid --kill-child: the step's shell
// is its init, and the kernel ends the rest with it), else the same stop of the step's user through setpriv, then
// looks at /proc until one finds nothing (proot.ts endStep).
import { spawnSync } from 'node:child_process';
import { onPath } from './process.js';

/** The warden's program (python3 -c): argv is `1|0` (seccomp filter or not), then the step's argv. */
export const wardenProgram = String.raw`
import base64, ctypes, json, os, platform, signal, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.stderr.write('hoist: cannot keep the step\'s processes (PR_SET_CHILD_SUBREAPER): %s\n' % os.strerror(ctypes.get_errno()))
    sys.exit(125)
libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: hoist gone, the step goes
if str(os.getppid()) != os.environ.get('HOIST_PARENT'):
    sys.exit(125)
seccomp = sys.argv[1] == '1'
argv = sys.argv[2:]
env = json.loads(base64.b64decode(os.environ.get('HOIST_STEP_ENV', 'e30=')))

# hoist's word (SIGTERM) and the children's ends (SIGCHLD) stay blocked and are taken by sigtimedwait, never by a
# handler: a handler's exception could come just after waitpid has reaped the step's first process, and lose it (a
# loaded machine showed it: proot, killed by the step, reaped and forgotten, and the step passed).
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGCHLD})
child = os.fork()
if child == 0:
    try:
        # python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec: the step gets them back.
        for name in ('SIGPIPE', 'SIGXFSZ', 'SIGTERM'):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGCHLD})
        if seccomp:
            # Calls Debian's proot (2015) lets through untranslated (statx, faccessat2, openat2) answer ENOSYS:
            # the C library then falls back to the ones it translates.
            known = {'x86_64': (0xC000003E, [332, 439, 437]), 'aarch64': (0xC00000B7, [291, 439, 437])}
            arch = platform.machine()
            if arch in known:
                audit, calls = known[arch]
                ins = [(0x20, 0, 0, 4), (0x15, 1, 0, audit), (0x06, 0, 0, 0x7fff0000), (0x20, 0, 0, 0)]
                ins += [(0x15, len(calls) - i, 0, c) for i, c in enumerate(calls)]
                ins += [(0x06, 0, 0, 0x7fff0000), (0x06, 0, 0, 0x00050000 | 38)]
                prog = ctypes.create_string_buffer(b''.join(struct.pack('HBBI', *x) for x in ins))
                class Fprog(ctypes.Structure):
                    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
                fprog = Fprog(len(ins), ctypes.addressof(prog))
                if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
                    sys.stderr.write('hoist: cannot install the seccomp filter proot needs: %s\n' % os.strerror(ctypes.get_errno()))
                    os._exit(125)
        os.execve(argv[0], argv, env)
    except BaseException as e:
        sys.stderr.write('hoist: cannot start %s: %s\n' % (argv[0], e))
        os._exit(127)

def descendants():
    kids = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as f:
                ppid = int(f.read().rsplit(b')', 1)[1].split()[1])
        except Exception:
            continue
        kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [os.getpid()]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out

def as_user(uid, sig):
    """kill(-1, sig) as the step's user: every process of that user at once (the kernel lets no fork slip past it)"""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresuid(uid, uid, uid)
            os.kill(-1, sig)
        except BaseException:
            os._exit(1)
        os._exit(0)
    return os.waitpid(pid, 0)[1] == 0

status = None
def ended_itself(st):
    # The step's first process (proot) was ended by a signal this process did not send: under proot, the step killed
    # its tracer (and what it runs goes on untranslated until killed below). Said on fd 3, where the step's shell
    # reports its status, so that the step fails whatever that shell reports after (as runc's does when its init is
    # killed).
    global status
    status = st
    if seccomp and os.WIFSIGNALED(st):
        try:
            os.write(3, b'T%d\n' % os.WTERMSIG(st))
        except OSError:
            pass
def reap():
    # the children that have ended, the step's first process among them maybe; False when none is left at all
    while status is None:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        if pid == child:
            ended_itself(st)
    return True
while reap() and status is None:
    got = signal.sigtimedwait({signal.SIGTERM, signal.SIGCHLD}, 1.0)
    if got is not None and got.si_signo == signal.SIGTERM:
        # (hoist's word, sent on the shell's report, can come before the step's first process is seen to end)
        reap()
        break
# Everything below this process is killed, and what it leaves (reparented here) too, until nothing is left.
# A step run as another user than this one's: all that user's processes are stopped at once (none can fork while
# they are looked at), the step's among them killed, the others let go on. Otherwise, and for what remains: the step's
# processes killed as found, found again, until none is left.
# Under proot, proot itself is spared while anything else is left, and for two seconds at most: it exits by itself
# once its tracees are gone, while one the step killed dies by a signal this process did not send — which may be seen
# only now, its exit (detaching its tracees) ending after the step's shell has reported (a loaded machine showed it).
uid = int(os.environ.get('HOIST_STEP_UID', '-1'))
spare_until = time.monotonic() + 2
killed_child = False
def kill_found():
    global killed_child
    spare = seccomp and status is None and time.monotonic() < spare_until
    for p in descendants():
        if p == child:
            if spare:
                continue
            killed_child = True
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return spare
if uid > 0 and uid != os.getuid() and as_user(uid, signal.SIGSTOP):
    kill_found()
    as_user(uid, signal.SIGCONT)
while True:
    spare = kill_found()
    try:
        pid, st = os.waitpid(-1, os.WNOHANG if spare else 0)
    except ChildProcessError:
        break
    if pid == 0:
        # proot spared and still there: looked at again when a child ends, else in 50 ms
        signal.sigtimedwait({signal.SIGCHLD}, 0.05)
        continue
    if pid == child and status is None:
        if killed_child:
            status = st
        else:
            ended_itself(st)
if status is None:
    os._exit(137)
os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
`;

/** argv and environment that run `argv` with `env` under the warden (`python` is python3's own program). */
export function underWarden(
  python: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  options: { seccomp: boolean; uid: number },
): { argv: string[]; env: NodeJS.ProcessEnv } {
  return {
    argv: [python, '-c', wardenProgram, options.seccomp ? '1' : '0', ...argv],
    // python3 may be a wrapper that adds to its own environment (pyenv's shims): the step's goes through encoded.
    env: {
      HOIST_STEP_ENV: Buffer.from(JSON.stringify(env)).toString('base64'),
      HOIST_PARENT: String(process.pid),
      HOIST_STEP_UID: String(options.uid),
    },
  };
}

let pidNamespaces: boolean | undefined;

/** unshare's program when this process may make a PID namespace (root with CAP_SYS_ADMIN, not in a plain container). */
export function pidNamespaceProgram(): string | undefined {
  const unshare = onPath('unshare');
  if (!unshare) return undefined;
  pidNamespaces ??=
    spawnSync(unshare, ['--pid', '--fork', '--kill-child', 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  return pidNamespaces ? unshare : undefined;
}
