// Debian's dockerd, started for a test file on its own socket and data root, as the reference that loads and
// runs what hoist writes (`docker load`, `docker run`).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Dockerd {
  host: string;
  docker(args: string[], input?: Buffer | string, env?: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

export async function startDockerd(options: { insecureRegistries?: string[] } = {}): Promise<Dockerd> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-dockerd-'));
  const sock = path.join(dir, 'docker.sock');
  const args = ['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '--host', `unix://${sock}`, '--pidfile', path.join(dir, 'pid'), '--iptables=false', '--ip6tables=false', '--bridge=none'];
  for (const r of options.insecureRegistries ?? []) args.push('--insecure-registry', r);
  const child: ChildProcess = spawn('dockerd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const host = `unix://${sock}`;
  // Debian's own client (20.10) when it is there: it builds with BuildKit without the buildx plugin.
  const client = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const docker = (a: string[], input?: Buffer | string, env: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(client, a, { input, env: { ...process.env, ...env, DOCKER_HOST: host, DOCKER_CONFIG: path.join(dir, 'config') }, maxBuffer: 256 * 1024 * 1024 });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`dockerd exited: ${log}`);
    if (existsSync(sock) && docker(['version']).status === 0) break;
    if (i > 300) throw new Error(`dockerd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    docker,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      spawnSync('sh', ['-c', `grep ' ${dir}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l`]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
