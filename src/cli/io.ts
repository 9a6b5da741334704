// Where a command's output goes; the real process streams, or buffers in tests.
import { readFileSync } from 'node:fs';

export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
  readStdin(): string;
}

export const processIO: CommandIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  readStdin: () => readFileSync(0, 'utf8'),
};
