// What the build prints goes out with workflow commands stopped (src/action/commands.ts): read back as the runner
// reads a log (helpers/runner-commands.ts), nothing a step printed is a command; hoist's own commands are.
import { CommandGuard } from '../../src/action/commands.js';
import { injections, runnerCommands } from '../helpers/runner-commands.js';

test('the runner-like reader finds every injection when nothing guards them', () => {
  expect(runnerCommands(injections.join('\n')).map((c) => c.command)).toEqual(['add-mask', 'error', 'stop-commands']);
  expect(runnerCommands(injections.slice(3).join('\n')).map((c) => c.command)).toEqual([
    'notice',
    'warning',
    'set-env',
    'tok',
  ]);
});

test("guarded, a step's lines are text: only the guard's own stop and hoist's commands are commands", () => {
  let log = '';
  const g = new CommandGuard((t) => void (log += t));
  g.info('#2 [2/2] RUN echo ::error::x ##[warning]y');
  for (const i of injections) g.info(`  ${i}`);
  g.command(() => void (log += '::group::stage 1\n'));
  g.info('more\r::notice::late');
  g.resume();
  const cmds = runnerCommands(log).map((c) => c.command);
  expect(cmds).toEqual(['stop-commands', 'group', 'stop-commands']);
  // A `\r` in a line is a line break where the runner reads it: printed as one.
  expect(log).toContain('more\n::notice::late\n');
  expect(g.token).toMatch(/^[0-9a-f]{32}$/);
  expect(new CommandGuard(() => undefined).token).not.toBe(g.token);
});
