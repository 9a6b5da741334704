// The workflow commands a GitHub runner would take from a step's log, by the runner's rules (actions/runner
// ActionCommandManager and ActionCommand.TryParseV2/TryParse): the log is cut into lines at `\n` and at `\r`; a line
// whose text after its leading whitespace is `::name[ props]::data` is a command, and so is `##[name …]data` anywhere
// in a line; after `::stop-commands::TOKEN` nothing is a command until a line `::TOKEN::`.
export interface RunnerCommand {
  command: string;
  data: string;
}

export function runnerCommands(log: string): RunnerCommand[] {
  const found: RunnerCommand[] = [];
  let stopped: string | undefined;
  for (const raw of log.split('\n')) {
    for (const line of raw.split('\r')) {
      const text = line.trimStart();
      const v2 = /^::([^\s:]+)(?:\s[^:]*)?::(.*)$/.exec(text);
      if (stopped !== undefined) {
        if (v2 && v2[1] === stopped) stopped = undefined;
        continue;
      }
      if (v2) {
        found.push({ command: v2[1], data: v2[2] });
        if (v2[1] === 'stop-commands') stopped = v2[2];
        continue;
      }
      const v1 = /##\[([^\]\s;]+)[^\]]*\](.*)$/.exec(line);
      if (v1) found.push({ command: v1[1], data: v1[2] });
    }
  }
  return found;
}

/** What a hostile step prints to issue commands through a log that shows its output. */
export const injections = [
  '::add-mask::sha256',
  '::error title=x::injected error',
  '::stop-commands::tok',
  'abc\r::notice::injected notice',
  'x ##[warning]injected warning',
  '   ::set-env name=X::1',
  '::tok::',
];
