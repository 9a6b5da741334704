// Workflow commands only where hoist means them. The runner reads every line a step prints (stdout and stderr) for
// commands: one that starts with `::` after its leading whitespace (`::add-mask::`, `::error::`, `::stop-commands::`)
// and one holding `##[…]` anywhere (the old form), and it splits lines at `\r` too. A RUN step's output, the
// Dockerfile's text in a step's name, a file name in a message: all of it is a pull request's to choose, so all of
// it goes out between `::stop-commands::TOKEN` and `::TOKEN::` (the runner takes nothing in between as a command but
// that token, new and random each run, which nothing the build runs can know), split at `\r` as the runner would
// split it; hoist's own commands (groups, warnings, annotations, masks) go out with commands on.
import { randomBytes } from 'node:crypto';
import { EOL } from 'node:os';

export class CommandGuard {
  private stopped = false;
  readonly token = randomBytes(16).toString('hex');

  constructor(private readonly write: (text: string) => void = (t) => void process.stdout.write(t)) {}

  /** Text that may hold anything: shown as it is, never taken as a command. */
  info(text: string): void {
    if (!this.stopped) {
      this.write(`::stop-commands::${this.token}${EOL}`);
      this.stopped = true;
    }
    this.write(`${text.split(/\r\n|\r|\n/).join(EOL)}${EOL}`);
  }

  /** Commands on again (before hoist issues one of its own, and before the step ends). */
  resume(): void {
    if (!this.stopped) return;
    this.write(`::${this.token}::${EOL}`);
    this.stopped = false;
  }

  /** Runs `issue` (which writes workflow commands: a group, a warning, a mask) with commands on. */
  command<T>(issue: () => T): T {
    this.resume();
    return issue();
  }
}
