// RUN needs root (an overlay mount and a container). A user with passwordless sudo — GitHub-hosted runners run
// jobs that way — gets the whole build again under `sudo -n`, with the same store and environment; afterwards the
// store and the files the build wrote are given back to the user. The environment travels in a file only the user
// can read (secrets may be in it), never on the command line.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withoutInterruptHandler } from './cleanup.js';

export const envFileFlag = '--hoist-env-file';

export function canSudo(): boolean {
  return spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
}

/** Runs this same hoist command under sudo; resolves its exit code. */
export async function rerunWithSudo(argv: string[], ownedPaths: string[], keepOwners: string[] = []): Promise<number> {
  const dir = mkdtempSync(path.join(tmpdir(), `hoist-sudo-${process.pid}-`));
  const envFile = path.join(dir, 'env.json');
  writeFileSync(envFile, JSON.stringify(process.env), { mode: 0o600 });
  try {
    const code = await withoutInterruptHandler(
      () =>
        new Promise<number>((resolve) => {
          const child = spawn('sudo', ['-n', process.execPath, process.argv[1], envFileFlag, envFile, ...argv], {
            stdio: 'inherit',
          });
          // A cancelled job signals this process: the build under sudo gets the signal too (sudo relays it) and
          // cleans up; this one waits for it instead of leaving it running.
          const relay = (signal: NodeJS.Signals) => () => void child.kill(signal);
          const onInt = relay('SIGINT');
          const onTerm = relay('SIGTERM');
          process.on('SIGINT', onInt);
          process.on('SIGTERM', onTerm);
          child.on('close', (c, signal) => {
            process.off('SIGINT', onInt);
            process.off('SIGTERM', onTerm);
            resolve(c ?? (signal === 'SIGINT' ? 130 : 143));
          });
          child.on('error', () => resolve(1));
        }),
    );
    const uid = process.getuid?.();
    const gid = process.getgid?.();
    if (uid !== undefined && gid !== undefined) {
      // What keeps the image's own owners (unpacked snapshots, cache mounts: only root uses them) is left alone;
      // handing those to the user would change the owners every later RUN step sees.
      const prune = keepOwners.flatMap((k, i) => [...(i ? ['-o'] : []), '-path', k]);
      for (const p of ownedPaths) {
        const args = prune.length
          ? [p, '(', ...prune, ')', '-prune', '-o', '-exec', 'chown', '-h', `${uid}:${gid}`, '{}', '+']
          : [p, '-exec', 'chown', '-h', `${uid}:${gid}`, '{}', '+'];
        spawnSync('sudo', ['-n', 'find', ...args], { stdio: 'ignore' });
      }
    }
    return code;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** In the process sudo started: the caller's environment back, the file removed. */
export function adoptEnvFile(argv: string[]): string[] {
  if (argv[0] !== envFileFlag) return argv;
  const file = argv[1];
  const env = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  return argv.slice(2);
}
