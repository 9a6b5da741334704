// A small argv reader for the hoist command: `--name value`, `--name=value`, short `-f value`, boolean flags,
// repeated flags, `--` to end options. Unknown options are errors that name the command's options.

export interface OptionSpec {
  /** takes a value (else a boolean flag) */
  value?: boolean;
  /** may be given several times */
  repeat?: boolean;
  short?: string;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface ParsedArgs {
  options: Map<string, string[]>;
  flags: Set<string>;
  positional: string[];
}

export function parseArgv(argv: readonly string[], spec: Record<string, OptionSpec>, command: string): ParsedArgs {
  const options = new Map<string, string[]>();
  const flags = new Set<string>();
  const positional: string[] = [];
  const byShort = new Map(Object.entries(spec).flatMap(([name, s]) => (s.short ? [[s.short, name] as const] : [])));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (eq >= 0) inline = a.slice(eq + 1);
    } else if (a.startsWith('-') && a.length > 1) {
      name = byShort.get(a.slice(1, 2));
      if (!name) throw new UsageError(`unknown option ${a} for "hoist ${command}"`);
      if (a.length > 2) inline = a.slice(2).replace(/^=/, '');
    } else {
      positional.push(a);
      continue;
    }
    const s = spec[name];
    if (!s) {
      const known = Object.keys(spec)
        .map((k) => `--${k}`)
        .join(', ');
      throw new UsageError(`unknown option --${name} for "hoist ${command}" (options: ${known})`);
    }
    if (!s.value) {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') {
        throw new UsageError(`option --${name} takes no value`);
      }
      if (inline !== 'false') flags.add(name);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
      value = argv[++i];
    }
    const list = options.get(name) ?? [];
    if (list.length > 0 && !s.repeat) throw new UsageError(`option --${name} given more than once`);
    list.push(value);
    options.set(name, list);
  }
  return { options, flags, positional };
}

/** `KEY=VALUE` pairs of a repeated option (`--build-arg`); a bare KEY takes its value from the environment. */
export function keyValueOptions(values: readonly string[], env: NodeJS.ProcessEnv = process.env): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq === 0) throw new UsageError(`invalid argument ${JSON.stringify(v)}: expected KEY=VALUE`);
    if (eq < 0) {
      const fromEnv = env[v];
      if (fromEnv !== undefined) out.set(v, fromEnv);
      continue;
    }
    out.set(v.slice(0, eq), v.slice(eq + 1));
  }
  return out;
}
