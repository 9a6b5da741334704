// Where a command's output goes; the real process streams, or buffers in tests.
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
  readStdin(): string;
  /** standard input as bytes (an archive piped in); absent where there is none */
  stdinStream?: () => Readable;
  /** standard output as bytes (an archive piped out) */
  stdoutStream?: () => Writable;
  /** whether err() goes to a terminal (progress then redraws a live view) */
  errIsTTY?: boolean;
  /** in a GitHub Actions step: workflow commands on again (before another process writes to the same log) */
  resumeCommands?: () => void;
}

export const processIO: CommandIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  readStdin: () => readFileSync(0, 'utf8'),
  stdinStream: () => process.stdin,
  stdoutStream: () => process.stdout,
  errIsTTY: process.stderr.isTTY === true,
};
