// Entry point of dist/index.js (the Action). A build run again through sudo (run.ts: the plan has RUN and the
// runner user is not root) starts here too, with the step's environment handed over in a file: adopted before
// run.ts is loaded, since @actions/github reads its context from the environment when it is first imported.
import { installInterruptHandler } from '../exec/cleanup.js';
import { adoptEnvFile } from '../exec/sudo.js';
import { failIfUnsettled } from '../exec/unsettled.js';

installInterruptHandler();
adoptEnvFile(process.argv.slice(2));
const { run } = await import(/* webpackMode: "eager" */ './run.js');
const work = run();
// (an unsettled top-level await would end the step with Node's own exit code 13 and a bare warning)
failIfUnsettled(work, (line) => process.stdout.write(`::error::${line}\n`));
await work;
