// SSH agent forwarding for RUN --mount=type=ssh, as buildx offers it: `--ssh default` (the agent of
// SSH_AUTH_SOCK), `--ssh ID=SOCKET` or `--ssh ID=KEY[,KEY…]` (an ssh-agent started for the build holds the
// keys). A step never sees the host's socket: it gets a socket of its own, owned and moded as its mount says,
// whose connections are forwarded to the agent (BuildKit forwards them over its session the same way).
import { spawn, spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { splitCSV } from '../dockerfile/plan.js';
import { onInterrupt, removeSync } from './cleanup.js';
import { agentDirPrefix } from './leftovers.js';
import { ExecError } from './overlay.js';

/** `--ssh default|ID[=SOCKET|KEY[,KEY…]]` → [id, paths]. */
export function parseSshFlag(text: string): [string, string[]] {
  const eq = text.indexOf('=');
  const id = (eq < 0 ? text : text.slice(0, eq)).trim();
  if (!id) throw new ExecError(`--ssh ${text}: needs an id (default, or ID=SOCKET|KEY)`);
  return [
    id,
    eq < 0
      ? []
      : splitCSV(text.slice(eq + 1))
          .map((p) => p.trim())
          .filter(Boolean),
  ];
}

export class SshAgents {
  private readonly sockets = new Map<string, Promise<string>>();
  private readonly agents: { pid: number; dir: string; forget: () => void }[] = [];

  constructor(
    private readonly specs: ReadonlyMap<string, readonly string[]>,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  has(id: string): boolean {
    return this.specs.has(id);
  }

  /** The agent socket for `id`: given, SSH_AUTH_SOCK, or an agent started here with the given keys. */
  socket(id: string): Promise<string> {
    let p = this.sockets.get(id);
    if (!p) {
      p = this.resolve(id);
      this.sockets.set(id, p);
    }
    return p;
  }

  private async resolve(id: string): Promise<string> {
    const paths = this.specs.get(id) ?? [];
    if (paths.length === 0) {
      const sock = this.env.SSH_AUTH_SOCK;
      if (!sock)
        throw new ExecError(
          `--ssh ${id}: SSH_AUTH_SOCK is not set; start an agent (eval $(ssh-agent); ssh-add) or pass --ssh ${id}=PATH`,
        );
      return sock;
    }
    if (paths.length === 1 && statSync(paths[0], { throwIfNoEntry: false })?.isSocket()) return paths[0];
    for (const k of paths)
      if (!statSync(k, { throwIfNoEntry: false })?.isFile())
        throw new ExecError(`--ssh ${id}: ${k} is neither an agent socket nor a key file`);
    const dir = await mkdtemp(agentDirPrefix());
    const sock = path.join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    const failed = await new Promise<string | undefined>((resolve) => {
      agent.once('error', (e) => resolve(`cannot start ssh-agent (apt-get install openssh-client): ${e.message}`));
      const poll = (n: number) => {
        if (statSync(sock, { throwIfNoEntry: false })?.isSocket()) resolve(undefined);
        else if (agent.exitCode !== null || n > 100) resolve('ssh-agent did not start');
        else setTimeout(() => poll(n + 1), 20);
      };
      poll(0);
    });
    if (agent.pid) {
      const pid = agent.pid;
      // For the cleaner of a build that is killed outright (leftovers.ts): the agent holds the keys.
      writeFileSync(path.join(dir, 'agent.pid'), String(pid));
      this.agents.push({
        pid,
        dir,
        forget: onInterrupt(() => {
          killQuietly(pid);
          removeSync(dir);
        }),
      });
    }
    if (!agent.pid) removeSync(dir);
    if (failed) throw new ExecError(`--ssh ${id}: ${failed}`);
    const added = spawnSync('ssh-add', paths, {
      env: { ...this.env, SSH_AUTH_SOCK: sock },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (added.status !== 0)
      throw new ExecError(
        `--ssh ${id}: ssh-add could not load ${paths.join(', ')}: ${(added.stderr || added.error?.message || '').trim()} (keys with a passphrase need an agent: --ssh ${id}=$SSH_AUTH_SOCK)`,
      );
    return sock;
  }

  /** Stops the agents started for the build. */
  async close(): Promise<void> {
    for (const a of this.agents.splice(0)) {
      killQuietly(a.pid);
      await rm(a.dir, { recursive: true, force: true });
      a.forget();
    }
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

export interface AgentProxy {
  path: string;
  close(): Promise<void>;
}

/** A socket owned by uid:gid with `mode` that forwards every connection to the agent at `agent`. */
export async function agentProxy(
  agent: string,
  owner: { uid: number; gid: number; mode: number },
): Promise<AgentProxy> {
  // Socket paths are limited to 108 bytes: a short directory of its own, not the store's.
  const dir = await mkdtemp(path.join(tmpdir(), `hoist-ssh-${process.pid}-`));
  const sock = path.join(dir, 'agent.sock');
  const open = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const up = net.connect(agent);
    open.add(c).add(up);
    const done = () => {
      c.destroy();
      up.destroy();
      open.delete(c);
      open.delete(up);
    };
    c.on('error', done).on('close', done);
    up.on('error', done).on('close', done);
    c.pipe(up).pipe(c);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, () => resolve());
  });
  const forget = onInterrupt(() => removeSync(dir));
  await chmod(sock, owner.mode);
  await chown(sock, owner.uid, owner.gid).catch(() => undefined);
  return {
    path: sock,
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
      forget();
    },
  };
}
