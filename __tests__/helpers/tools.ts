// Real parts the integration tests start: Debian's docker-registry, skopeo, umoci, dockerd. `npm test` installs
// them first when it runs as root (scripts/test-deps.mjs); where one is still missing, its tests are skipped
// with a notice instead of failing for a reason that is not hoist's.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const found = new Map<string, boolean>();

export function haveTool(name: string): boolean {
  let v = found.get(name);
  if (v === undefined) {
    v = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
    found.set(name, v);
    if (!v) process.stderr.write(`NOTICE: ${name} is not installed: the tests that need it are skipped\n`);
  }
  return v;
}

/** `describe` when every tool is on PATH, else `describe.skip`. */
export function describeWith(tools: string[]): jest.Describe {
  return tools.every(haveTool) ? describe : describe.skip;
}

/** Runs a program, returning stdout; throws with its stderr on failure. */
export function run(
  program: string,
  args: string[],
  options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): string {
  const r = spawnSync(program, args, {
    input: options.input,
    env: options.env ?? process.env,
    cwd: options.cwd,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(
      `${program} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr?.toString() ?? ''}${r.stdout?.toString().slice(0, 2000) ?? ''}`,
    );
  }
  return r.stdout.toString();
}

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr as they came, interleaved */
  output: string;
}

/**
 * Runs a program to its end without blocking this process's event loop (a service the test serves in-process keeps
 * answering): its status and output; it and its process group are killed after `timeoutMs`.
 */
export function runAsync(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const r: Ran = { status: null, stdout: '', stderr: '', output: '' };
    child.stdout.on('data', (d: Buffer) => {
      r.stdout += d.toString();
      r.output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      r.stderr += d.toString();
      r.output += d.toString();
    });
    const timeoutMs = options.timeoutMs ?? 240_000;
    const timer = setTimeout(() => {
      r.output += `\n(killed after ${timeoutMs} ms)`;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ ...r, status });
    });
  });
}

/**
 * A PATH directory with every command of this PATH except `missing` (symlinks; remove it when done): a machine
 * without some tools, as GitHub's runners are without the attr package.
 */
export function pathWithout(missing: readonly string[]): string {
  const bin = mkdtempSync(path.join(tmpdir(), 'hoist-path-'));
  for (const d of (process.env.PATH ?? '').split(':').filter((d) => d && existsSync(d))) {
    for (const name of readdirSync(d))
      if (!missing.includes(name) && !existsSync(path.join(bin, name)))
        symlinkSync(path.join(d, name), path.join(bin, name));
  }
  chmodSync(bin, 0o755);
  return bin;
}
