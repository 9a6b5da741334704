// What a hoist process left behind when it was killed outright (SIGKILL, an OOM kill, a runner that vanished):
// nothing of it could clean up, so the next `hoist prune` and the next build do. A leftover is known by the pid
// in its name, and only a dead process's are touched: runtime containers (`hoist-PID-…`, killed and deleted),
// mounts under its temp dirs in the store (unmounted, deepest first, before anything is removed), the temp dirs
// themselves, its secret dirs on /dev/shm, the ssh-agents it started (with their keys), its ssh proxy sockets and
// the environment file a build run again under sudo was handed.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { processAlive } from '../store/lock.js';

export interface LeftoverReport {
  containers: number;
  mounts: number;
  tempDirs: number;
  secrets: number;
  agents: number;
}

/** Where the secret files of a build's steps are kept (a tmpfs), named after the build's pid. */
export function secretDirPrefix(base: string): string {
  return path.join(base, `hoist-secret-${process.pid}-`);
}

/** Where an ssh-agent started for a build keeps its socket (and its pid, for the cleaner). */
export function agentDirPrefix(): string {
  return path.join(tmpdir(), `hoist-agent-${process.pid}-`);
}

const deadPid = (name: string, prefix: string): boolean => {
  // (a busy /tmp holds thousands of names: most are dismissed by their first characters)
  if (!name.startsWith(prefix)) return false;
  const m = /^(\d+)-/.exec(name.slice(prefix.length));
  if (!m) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !processAlive(pid);
};

/** Mount points at or below `dir`, from /proc/self/mountinfo (octal escapes undone), deepest first. */
export function mountsBelow(dir: string): string[] {
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const p = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (p === dir || p.startsWith(`${dir}/`)) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

function unmountAll(dir: string): number {
  let n = 0;
  for (const m of mountsBelow(dir)) {
    if (
      spawnSync('umount', [m], { stdio: 'ignore' }).status === 0 ||
      spawnSync('umount', ['-l', m], { stdio: 'ignore' }).status === 0
    )
      n++;
  }
  return n;
}

function quietRemove(p: string): boolean {
  try {
    rmSync(p, { recursive: true, force: true });
    return true;
  } catch {
    return false; // not ours to remove (another user's), or busy: left for the next time
  }
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** What dead hoist processes left in the store at `storeRoot` and on this machine, counted and left as it is. */
export function findLeftovers(storeRoot: string): LeftoverReport {
  return sweepLeftovers(storeRoot, false);
}

/** Cleans what dead hoist processes left in the store at `storeRoot` and on this machine. */
export function cleanLeftovers(storeRoot: string): LeftoverReport {
  return sweepLeftovers(storeRoot, true);
}

function sweepLeftovers(storeRoot: string, clean: boolean): LeftoverReport {
  const report: LeftoverReport = { containers: 0, mounts: 0, tempDirs: 0, secrets: 0, agents: 0 };
  for (const runtime of ['runc', 'crun']) {
    // Its state directory (runc's and crun's default --root as root: /run/<runtime>) shows whether any container of
    // ours is there at all: only then is the runtime asked (a process started per build costs 10–25 ms).
    if (process.getuid?.() === 0 && !entries(`/run/${runtime}`).some((id) => id.startsWith('hoist-'))) continue;
    const list = spawnSync(runtime, ['list', '-q'], { encoding: 'utf8' });
    if (list.status !== 0) continue;
    for (const id of list.stdout.split('\n').map((l) => l.trim())) {
      if (!deadPid(id, 'hoist-')) continue;
      if (!clean) {
        report.containers++;
        continue;
      }
      spawnSync(runtime, ['kill', id, 'KILL'], { stdio: 'ignore' });
      if (spawnSync(runtime, ['delete', '--force', id], { stdio: 'ignore' }).status === 0) report.containers++;
    }
  }
  const remove = (p: string) => !clean || quietRemove(p);
  const tmp = path.join(storeRoot, 'tmp');
  for (const name of entries(tmp)) {
    if (!deadPid(name, '')) continue;
    const p = path.join(tmp, name);
    if (!clean) {
      report.mounts += mountsBelow(p).length;
      report.tempDirs++;
      continue;
    }
    report.mounts += unmountAll(p);
    // Still mounted (the kernel refused even a lazy unmount): removing would reach into what is mounted there.
    if (mountsBelow(p).length === 0 && quietRemove(p)) report.tempDirs++;
  }
  for (const name of entries('/dev/shm')) {
    if (deadPid(name, 'hoist-secret-') && remove(path.join('/dev/shm', name))) report.secrets++;
  }
  for (const name of entries(tmpdir())) {
    // ssh proxy sockets, and the environment a build handed to itself under sudo (it may hold secrets)
    if ((deadPid(name, 'hoist-ssh-') || deadPid(name, 'hoist-sudo-')) && remove(path.join(tmpdir(), name)))
      report.tempDirs++;
    if (!deadPid(name, 'hoist-agent-')) continue;
    const dir = path.join(tmpdir(), name);
    if (!clean) {
      report.agents++;
      continue;
    }
    const pid = Number(readText(path.join(dir, 'agent.pid')).trim() || 'x');
    // The agent holds the build's keys in memory: stopped, if it still runs and is the agent of this socket.
    if (Number.isInteger(pid) && pid > 0 && readCmdline(pid).includes(path.join(dir, 'agent.sock'))) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone meanwhile
      }
    }
    if (quietRemove(dir)) report.agents++;
  }
  return report;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function readCmdline(pid: number): string {
  return readText(`/proc/${pid}/cmdline`).split('\0').join(' ');
}

/** The report in words ("2 mounts, 1 temp dir"), or '' when nothing was cleaned. */
export function describeLeftovers(r: LeftoverReport): string {
  const parts: string[] = [];
  const add = (n: number, one: string, many: string) => n && parts.push(`${n} ${n === 1 ? one : many}`);
  add(r.containers, 'container', 'containers');
  add(r.mounts, 'mount', 'mounts');
  add(r.tempDirs, 'temp dir', 'temp dirs');
  add(r.secrets, 'secret dir', 'secret dirs');
  add(r.agents, 'ssh-agent', 'ssh-agents');
  return parts.join(', ');
}
