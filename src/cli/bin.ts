// Entry point of dist/cli.js (the `hoist` command).
import { run } from './main.js';
import { adoptEnvFile } from '../exec/sudo.js';
import { installInterruptHandler } from '../exec/cleanup.js';
import { failIfUnsettled } from '../exec/unsettled.js';

installInterruptHandler();

const work = run(adoptEnvFile(process.argv.slice(2)));
failIfUnsettled(work, (line) => process.stderr.write(`hoist: ${line}\n`));
work.then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`hoist: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
