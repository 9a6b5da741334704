// `hoist parse` and `hoist lint`: the front end on its own, for people and for conformance checks.
import { readFileSync } from 'node:fs';
import { dump, formatLintWarning, lint, readDockerfile, parse } from '../dockerfile/index.js';
import type { CommandIO } from './io.js';
import { keyValueOptions, parseArgv, UsageError } from './argv.js';
import { parsePlatform } from '../image/platform.js';

function dockerfileArg(command: string, positional: string[], file: string[] | undefined): string {
  const f = file?.[0] ?? positional[0];
  if (f === undefined) throw new UsageError(`"hoist ${command}" needs a Dockerfile: hoist ${command} [-f] FILE`);
  if (file && positional.length > 0)
    throw new UsageError(`"hoist ${command}" takes one Dockerfile, got -f ${f} and ${positional[0]}`);
  if (!file && positional.length > 1)
    throw new UsageError(`"hoist ${command}" takes one Dockerfile, got ${positional.length} arguments`);
  return f;
}

function readText(file: string, io: CommandIO): string {
  if (file === '-') return io.readStdin();
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `${file}: no such file`
        : code === 'EISDIR'
          ? `${file} is a directory, not a Dockerfile`
          : `cannot read ${file}: ${(e as Error).message}`,
    );
  }
}

export const parseUsage = `Usage: hoist parse [--dump|--json] [-f] FILE

Parses a Dockerfile (FILE or - for standard input) and prints it.
  --dump   BuildKit's AST dump format (the default)
  --json   the instructions as JSON, with their lines`;

export function parseCommand(argv: string[], io: CommandIO): number {
  const a = parseArgv(argv, { dump: {}, json: {}, file: { value: true, short: 'f' }, help: { short: 'h' } }, 'parse');
  if (a.flags.has('help')) {
    io.out(`${parseUsage}\n`);
    return 0;
  }
  const file = dockerfileArg('parse', a.positional, a.options.get('file'));
  const text = readText(file, io);
  const name = file === '-' ? 'Dockerfile' : file;
  if (a.flags.has('json')) {
    const df = readDockerfile(text, name);
    const strip = (k: string, v: unknown) => (k === 'node' || k === 'trigger' ? undefined : v);
    io.out(
      `${JSON.stringify({ directives: df.directives, globalArgs: df.globalArgs, stages: df.stages }, strip, 2)}\n`,
    );
    return 0;
  }
  io.out(dump(parse(text, { file: name }).nodes));
  return 0;
}

export const lintUsage = `Usage: hoist lint [--build-arg KEY=VALUE]... [--target STAGE] [-f] FILE

Checks a Dockerfile and prints each finding as FILE:LINE: [Check] message.
Exits 1 when the file does not parse, or when a "# check=error=true" directive is set and there are findings.`;

export function lintCommand(argv: string[], io: CommandIO): number {
  const a = parseArgv(
    argv,
    {
      file: { value: true, short: 'f' },
      'build-arg': { value: true, repeat: true },
      target: { value: true },
      platform: { value: true },
      help: { short: 'h' },
    },
    'lint',
  );
  if (a.flags.has('help')) {
    io.out(`${lintUsage}\n`);
    return 0;
  }
  const file = dockerfileArg('lint', a.positional, a.options.get('file'));
  const df = readDockerfile(readText(file, io), file === '-' ? 'Dockerfile' : file);
  const platform = a.options.get('platform')?.[0];
  const result = lint(df, {
    buildArgs: keyValueOptions(a.options.get('build-arg') ?? []),
    target: a.options.get('target')?.[0],
    targetPlatform: platform ? parsePlatform(platform) : undefined,
  });
  for (const w of result.warnings) io.out(`${formatLintWarning(w)}\n`);
  return result.failOnWarnings && result.warnings.length > 0 ? 1 : 0;
}
