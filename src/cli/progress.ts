// Build progress as buildx shows it. plain (CI logs): `#N [stage k/n] INSTRUCTION` when a step starts, `#N TEXT`
// for each line a RUN step prints, and `#N DONE 0.1s` (or `#N CACHED`) when it ends. tty: a line per finished step and a live status line at the
// bottom, redrawn in place. quiet: nothing.
import type { StepReport, StepStart } from '../solver/solver.js';
import type { CommandIO } from './io.js';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'quiet';

export interface Progress {
  start(s: StepStart): void;
  /** a line a RUN step printed, shown under the step's number */
  output(s: StepStart, line: string): void;
  done(s: StepReport): void;
  finish(ok: boolean): void;
}

const key = (s: StepStart) => `${s.stage}:${s.position}`;
const label = (s: StepStart) => `${s.prefix}${s.instruction.split('\n')[0]}`;

export function createProgress(mode: ProgressMode, io: CommandIO): Progress {
  const effective = mode === 'auto' ? (io.errIsTTY ? 'tty' : 'plain') : mode;
  if (effective === 'quiet') return { start() {}, output() {}, done() {}, finish() {} };
  const numbers = new Map<string, number>();
  let next = 0;
  if (effective === 'plain') {
    return {
      start(s) {
        numbers.set(key(s), ++next);
        io.err(`#${next} ${label(s)}\n`);
      },
      output(s, line) {
        io.err(`#${numbers.get(key(s)) ?? '?'} ${line}\n`);
      },
      done(s) {
        const n = numbers.get(key(s)) ?? ++next;
        io.err(s.cached ? `#${n} CACHED\n` : `#${n} DONE ${s.seconds.toFixed(1)}s\n`);
      },
      finish() {},
    };
  }
  const began = Date.now();
  const running = new Map<string, StepStart>();
  let finished = 0;
  const status = (final?: string) => {
    const secs = ((Date.now() - began) / 1000).toFixed(1);
    const now = [...running.values()].map(label).join(', ');
    io.err(
      `\r\x1b[K[+] Building ${secs}s (${finished}/${finished + running.size})${final ? ` ${final}` : now ? ` ${now}` : ''}`,
    );
  };
  const timer = setInterval(() => status(), 200);
  timer.unref?.();
  return {
    start(s) {
      running.set(key(s), s);
      numbers.set(key(s), ++next);
      status();
    },
    output(s, line) {
      io.err(`\r\x1b[K#${numbers.get(key(s)) ?? '?'} ${line}\n`);
      status();
    },
    done(s) {
      running.delete(key(s));
      finished++;
      io.err(`${`\r\x1b[K => ${s.cached ? 'CACHED ' : ''}${label(s)}`.padEnd(70)} ${s.seconds.toFixed(1)}s\n`);
      status();
    },
    finish(ok) {
      clearInterval(timer);
      status(ok ? 'FINISHED' : 'FAILED');
      io.err('\n');
    },
  };
}
