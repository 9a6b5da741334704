// The `hoist` command: argv to a subcommand, errors to messages a person can act on, and an exit code.
import { DockerfileError } from '../dockerfile/index.js';
import { PlatformError } from '../image/platform.js';
import { version } from '../version.js';
import { UsageError } from './argv.js';
import { lintCommand, parseCommand } from './dockerfile-commands.js';
import { type CommandIO, processIO } from './io.js';

const usage = `hoist ${version}: build and push container images from Dockerfiles, without a daemon

Usage: hoist COMMAND [OPTIONS]

Commands:
  parse    print a Dockerfile's parse tree (BuildKit's AST dump format)
  lint     check a Dockerfile and print the findings
  version  print hoist's version

Run "hoist COMMAND --help" for a command's options.
`;

const commands: Record<string, (argv: string[], io: CommandIO) => number | Promise<number>> = {
  parse: parseCommand,
  lint: lintCommand,
  version: (_argv, io) => {
    io.out(`hoist ${version}\n`);
    return 0;
  },
};

export async function run(argv: string[], io: CommandIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(usage);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') return commands.version([], io);
  const command = commands[name];
  if (!command) {
    io.err(`hoist: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  try {
    return await command(rest, io);
  } catch (e) {
    if (e instanceof DockerfileError) {
      io.err(`error: ${e.format()}\n`);
      return 1;
    }
    if (e instanceof UsageError || e instanceof PlatformError) {
      io.err(`hoist ${name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
