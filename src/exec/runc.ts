// Runs one RUN step's process with the OCI runtime (runc, else crun): a bundle directory with config.json, the
// container named after the build and step, output streamed line by line, and the container deleted whatever
// happens (also when the build is interrupted).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onInterrupt, removeSync } from './cleanup.js';
import { ExecError } from './overlay.js';
import { onPath, runProcess, streamLines } from './process.js';
import { specJSON } from './spec.js';

/** runc, else crun, as found on PATH. */
export function findRuntime(): string | undefined {
  return ['runc', 'crun'].find((r) => onPath(r) !== undefined);
}

export interface RunResult {
  exitCode: number;
  /** the last lines of output, for the error message */
  tail: string[];
}

let counter = 0;

/** `signal`: aborted, the container is killed (the build stops: another step failed); the run then ends as killed. */
export async function runContainer(
  runtime: string,
  spec: object,
  scratch: string,
  onOutput: (line: string) => void,
  signal?: AbortSignal,
): Promise<RunResult> {
  const bundle = await mkdtemp(path.join(scratch, 'bundle-'));
  const id = `hoist-${process.pid}-${Date.now()}-${counter++}`;
  await writeFile(path.join(bundle, 'config.json'), specJSON(spec));
  // Interrupted: the container is killed and deleted, its bundle removed.
  const forget = onInterrupt(() => {
    spawnSync(runtime, ['kill', id, 'KILL'], { stdio: 'ignore' });
    spawnSync(runtime, ['delete', '--force', id], { stdio: 'ignore' });
    removeSync(bundle);
  });
  try {
    if (signal?.aborted) return { exitCode: 137, tail: [] };
    const child = spawn(runtime, ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = () => void runProcess(runtime, ['kill', id, 'KILL']);
    signal?.addEventListener('abort', kill, { once: true });
    const lines = streamLines(child, onOutput);
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(new ExecError(`cannot start ${runtime}: ${e.message}`)));
      child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
    }).finally(() => signal?.removeEventListener('abort', kill));
    lines.done();
    return { exitCode, tail: lines.tail };
  } finally {
    forget();
    // `run` deletes its container when the container's process ends (runc's and crun's state under /run/<name>);
    // one still there (the runtime itself killed) is deleted here, one of a dead hoist by the next build's sweep.
    if (existsSync(path.join('/run', path.basename(runtime), id))) await runProcess(runtime, ['delete', '--force', id]);
    await rm(bundle, { recursive: true, force: true });
  }
}
