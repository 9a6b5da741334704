// The `hoist` command: argv to a subcommand, errors to messages a person can act on, and an exit code.
import { CommandGuard } from '../action/commands.js';
import { DockerfileError } from '../dockerfile/index.js';
import { PlatformError } from '../image/platform.js';
import { ImageReferenceError } from '../image/reference.js';
import { version } from '../version.js';
import { UsageError } from './argv.js';
import { lintCommand, parseCommand } from './dockerfile-commands.js';
import { imageCommands } from './image-commands.js';
import { buildCommand } from './build-command.js';
import { type CommandIO, processIO } from './io.js';

const usage = `hoist ${version}: build and push container images from Dockerfiles, without a daemon

Usage: hoist COMMAND [OPTIONS]

Commands:
  parse    print a Dockerfile's parse tree (BuildKit's AST dump format)
  lint     check a Dockerfile and print the findings
  build    build an image from a Dockerfile (-t NAME, --push, --output)
  version  print hoist's version

Images (the store: ~/.cache/hoist, or --store / $HOIST_STORE):
  pull     download an image into the store
  push     upload an image of the store to a registry
  tag      give an image more names in its registry (no upload)
  copy     copy an image (every platform) from registry to registry
  merge    one index of images already pushed (matrix legs pushed by digest), under tags
  inspect  print an image's manifest and config
  history  show the steps an image was made of
  images   list the images in the store
  rmi      remove images from the store
  prune    remove what no image uses (--all: everything)
  store    check the store (store check [--repair]: blobs against their digests, records, lowers, leftovers)
  save     write images to a tar for docker load / OCI tools
  load     read images from such a tar
  import   make an image of a root filesystem tarball
  login    store credentials for a registry
  logout   remove them

Run "hoist COMMAND --help" for a command's options.
`;

const commands: Record<string, (argv: string[], io: CommandIO) => number | Promise<number>> = {
  parse: parseCommand,
  lint: lintCommand,
  build: buildCommand,
  ...imageCommands,
  version: (_argv, io) => {
    io.out(`hoist ${version}\n`);
    return 0;
  },
};

/** Errors that describe a problem with the input or the world, not a bug: printed as a message. */
const userErrors = new Set([
  'RegistryError',
  'RegistryConnectionError',
  'DigestError',
  'DigestMismatchError',
  'SizeMismatchError',
  'ManifestError',
  'StoreError',
  'StoreFullError',
  'LoadError',
  'ArchiveError',
  'ExecError',
  'NeedsRootError',
  'CredentialError',
  'TarError',
  'CompressionError',
  'ContextError',
  'CopyError',
  'MergeError',
  'OutputError',
  'DockerLoadError',
  'UserError',
  'ChmodError',
  'HttpSourceError',
  'NoPlatformError',
  'ToolMissingError',
  'GitContextError',
  'ProxyError',
]);

/**
 * The hoist command. In a GitHub Actions step everything it prints on stderr (a RUN step's output, the Dockerfile's
 * text, errors quoting either) goes out with workflow commands stopped (action/commands.ts): a pull request's
 * Dockerfile cannot issue `::add-mask::`, `::error::` or `##[…]` through hoist's log.
 */
export async function run(argv: string[], io: CommandIO = processIO): Promise<number> {
  if (process.env.GITHUB_ACTIONS !== 'true') return runCommand(argv, io);
  const guard = new CommandGuard((t) => io.err(t));
  try {
    return await runCommand(argv, {
      ...io,
      err: (t) => guard.info(t.endsWith('\n') ? t.slice(0, -1) : t),
      resumeCommands: () => guard.resume(),
    });
  } finally {
    guard.resume();
  }
}

/** The common options (docs/command.md: common options), which may also come before the command, as docker's do. */
const commonOptions: Record<string, boolean> = {
  store: true,
  'insecure-registry': true,
  'registry-mirror': true,
  debug: false,
};

/** `hoist --store DIR pull REF` read as `hoist pull --store DIR REF`. */
function commandFirst(argv: readonly string[]): string[] {
  const before: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const m = /^--([a-z-]+)(=.*)?$/.exec(argv[i]);
    if (!m || !(m[1] in commonOptions)) break;
    before.push(argv[i]);
    if (commonOptions[m[1]] && m[2] === undefined && i + 1 < argv.length) before.push(argv[++i]);
  }
  return i < argv.length ? [argv[i], ...before, ...argv.slice(i + 1)] : [...before];
}

async function runCommand(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = commandFirst(argv);
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
    if (
      e instanceof UsageError ||
      e instanceof PlatformError ||
      e instanceof ImageReferenceError ||
      e instanceof RangeError
    ) {
      io.err(`hoist ${name}: ${e.message}\n`);
      return 2;
    }
    const sys = e as NodeJS.ErrnoException;
    if (e instanceof Error && (userErrors.has(e.name) || (sys.code !== undefined && sys.syscall !== undefined))) {
      io.err(`hoist ${name}: ${e.message}\n`);
      return 1;
    }
    io.err(
      `hoist ${name}: internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    return 1;
  }
}
