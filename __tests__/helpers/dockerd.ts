// The reference docker, started for a test file on its own sockets and data root: docker 26.1 (BuildKit 0.13, its
// containerd beside it) where the test set-up fetched it (scripts/test-deps.mjs), else Debian's dockerd 20.10
// (BuildKit 0.8). It builds what hoist is compared with, and loads and runs what hoist writes.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Dockerd {
  host: string;
  /** the server's major version: 26 (current BuildKit) or 20 (Docker 20.10's) */
  major: number;
  docker(
    args: string[],
    input?: Buffer | string,
    env?: NodeJS.ProcessEnv,
  ): { status: number | null; stdout: string; stderr: string };
  /** the same, without blocking: what runs beside it (hoist's build of the same case) goes on meanwhile */
  dockerAsync(
    args: string[],
    env?: NodeJS.ProcessEnv,
  ): Promise<{ status: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** docker 26 as the test set-up unpacked it, when it did (HOIST_TEST_DOCKER=20 keeps to the system's docker). */
function docker26(): string | undefined {
  if (process.env.HOIST_TEST_DOCKER === '20') return undefined;
  const root = path.join(
    path.dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    'node_modules',
    '.cache',
    'hoist-docker26',
    'root',
  );
  return existsSync(path.join(root, 'usr', 'sbin', 'dockerd')) ? root : undefined;
}

/** docker 26's buildx plugin (0.13), when the test set-up unpacked it: a reader of what hoist pushes. */
export function buildx26(): string | undefined {
  const root = docker26();
  const bin = root && path.join(root, 'usr', 'libexec', 'docker', 'cli-plugins', 'docker-buildx');
  return bin && existsSync(bin) ? bin : undefined;
}

let announced = false;

export async function startDockerd(options: { insecureRegistries?: string[] } = {}): Promise<Dockerd> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-dockerd-'));
  const sock = path.join(dir, 'docker.sock');
  const d26 = docker26();
  if (!announced) {
    announced = true;
    process.stderr.write(
      d26
        ? 'NOTICE: the reference is docker 26 (BuildKit 0.13)\n'
        : "NOTICE: docker 26 was not fetched: the reference is the system's docker (20.10, BuildKit 0.8)\n",
    );
  }
  const args = [
    '--data-root',
    path.join(dir, 'data'),
    '--exec-root',
    path.join(dir, 'exec'),
    '--host',
    `unix://${sock}`,
    '--pidfile',
    path.join(dir, 'pid'),
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
  ];
  for (const r of options.insecureRegistries ?? []) args.push('--insecure-registry', r);
  const children: ChildProcess[] = [];
  let log = '';
  const keepLog = (c: ChildProcess) => c.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  // (read when each command runs: a test may set SSH_AUTH_SOCK and the like after the daemon started)
  const path26 = d26 ? `${path.join(d26, 'usr', 'bin')}:${path.join(d26, 'usr', 'sbin')}:` : '';
  const envNow = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${path26}${process.env.PATH ?? ''}` });
  const env = envNow();
  if (d26) {
    // Its own containerd (1.7, with the image store docker 26 uses) and the buildx plugin for `docker build`.
    const bin = path.join(d26, 'usr', 'bin');
    mkdirSync(path.join(dir, 'config', 'cli-plugins'), { recursive: true });
    symlinkSync(
      path.join(d26, 'usr', 'libexec', 'docker', 'cli-plugins', 'docker-buildx'),
      path.join(dir, 'config', 'cli-plugins', 'docker-buildx'),
    );
    const ctdSock = path.join(dir, 'containerd.sock');
    writeFileSync(
      path.join(dir, 'containerd.toml'),
      `version = 2\nroot = "${dir}/ctd-root"\nstate = "${dir}/ctd-state"\n[grpc]\n  address = "${ctdSock}"\n[ttrpc]\n  address = "${ctdSock}.ttrpc"\n`,
    );
    const ctd = spawn(path.join(bin, 'containerd'), ['--config', path.join(dir, 'containerd.toml')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    keepLog(ctd);
    children.push(ctd);
    for (let i = 0; !existsSync(ctdSock); i++) {
      if (ctd.exitCode !== null || i > 300) throw new Error(`containerd did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    writeFileSync(path.join(dir, 'daemon.json'), JSON.stringify({ features: { 'containerd-snapshotter': true } }));
    args.push('--containerd', ctdSock, '--config-file', path.join(dir, 'daemon.json'));
  }
  const child: ChildProcess = spawn(d26 ? path.join(d26, 'usr', 'sbin', 'dockerd') : 'dockerd', args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env,
  });
  keepLog(child);
  children.unshift(child);
  const host = `unix://${sock}`;
  // The client of the same docker (Debian's 20.10 builds with BuildKit without the buildx plugin).
  const client = d26
    ? path.join(d26, 'usr', 'bin', 'docker')
    : existsSync('/usr/bin/docker')
      ? '/usr/bin/docker'
      : 'docker';
  const docker = (a: string[], input?: Buffer | string, extra: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(client, a, {
      input,
      env: { ...envNow(), ...extra, DOCKER_HOST: host, DOCKER_CONFIG: path.join(dir, 'config') },
      maxBuffer: 256 * 1024 * 1024,
    });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  const dockerAsync = (a: string[], extra: NodeJS.ProcessEnv = {}) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const c = spawn(client, a, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...envNow(), ...extra, DOCKER_HOST: host, DOCKER_CONFIG: path.join(dir, 'config') },
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      c.stdout?.on('data', (b: Buffer) => out.push(b));
      c.stderr?.on('data', (b: Buffer) => err.push(b));
      c.on('error', reject);
      c.on('close', (status) =>
        resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
      );
    });
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`dockerd exited: ${log}`);
    if (existsSync(sock) && docker(['version']).status === 0) break;
    if (i > 300) throw new Error(`dockerd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    major: d26 ? 26 : 20,
    docker,
    dockerAsync,
    async stop() {
      for (const c of children) {
        c.kill('SIGTERM');
        await new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)));
      }
      spawnSync('sh', ['-c', `grep ' ${dir}' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l`]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
