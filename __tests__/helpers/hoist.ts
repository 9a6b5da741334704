// Runs the hoist command in-process with captured output, as a test's user would type it.
import { createReadStream } from 'node:fs';
import { run } from '../../src/cli/main.js';
import type { CommandIO } from '../../src/cli/io.js';

export interface HoistResult {
  code: number;
  out: string;
  err: string;
}

export async function hoist(argv: string[], options: { stdin?: string; stdinFile?: string } = {}): Promise<HoistResult> {
  let out = '';
  let err = '';
  const io: CommandIO = {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    readStdin: () => options.stdin ?? '',
    ...(options.stdinFile ? { stdinStream: () => createReadStream(options.stdinFile as string) } : {}),
  };
  const code = await run(argv, io);
  return { code, out, err };
}

/** The same, failing the test with the output when the exit code is not 0. */
export async function hoistOk(argv: string[], options?: Parameters<typeof hoist>[1]): Promise<HoistResult> {
  const r = await hoist(argv, options);
  if (r.code !== 0) throw new Error(`hoist ${argv.join(' ')} exited ${r.code}\n${r.err}${r.out}`);
  return r;
}
