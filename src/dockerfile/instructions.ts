// Nodes to typed instructions: the meaning of each instruction's flags and arguments, validated as BuildKit
// validates them (instructions/parse.go), before any variable is expanded.
import type { Heredoc, Node } from './ast.js';
import { trimSpace } from './chars.js';
import { DockerfileError } from './errors.js';
import { FlagSet, type FlagKind } from './flags.js';
import { parseGoDuration } from './duration.js';
import { chompHeredocContent, parseHeredocWord } from './heredoc.js';
import { LineSyntaxError, instructionKeywords } from './line-parsers.js';
import { closest } from './suggest.js';

interface Base {
  /** the keyword as written */
  keyword: string;
  /** the instruction's text, continuations joined, trimmed (BuildKit's "code", used in history) */
  code: string;
  line: number;
  endLine: number;
  node: Node;
}

export interface KeyValue {
  key: string;
  value: string;
  /** written in the legacy `KEY value` form (no `=`) */
  legacy?: boolean;
}

/** A heredoc used as a file: COPY <<EOF /dest, or a script of RUN. */
export interface InlineFile {
  name: string;
  data: string;
  /** whether variables in the body are expanded (the delimiter was not quoted) */
  expand: boolean;
  chomp: boolean;
}

/** The command of RUN, CMD, ENTRYPOINT: exec form as is, shell form as one string for the SHELL. */
export interface CommandLine {
  args: string[];
  /** shell form: the args are one string to run with the stage's SHELL */
  prependShell: boolean;
  files: InlineFile[];
}

export interface FromInstruction extends Base {
  kind: 'from';
  image: string;
  /** `AS name`, lower case */
  stageName?: string;
  platform?: string;
}
export interface ArgInstruction extends Base {
  kind: 'arg';
  args: { key: string; value?: string }[];
}
export interface EnvInstruction extends Base {
  kind: 'env';
  pairs: KeyValue[];
}
export interface LabelInstruction extends Base {
  kind: 'label';
  pairs: KeyValue[];
}
export interface RunInstruction extends Base {
  kind: 'run';
  command: CommandLine;
  /** each --mount value as written */
  mounts: string[];
  network?: string;
  security?: string;
}
export interface CmdInstruction extends Base {
  kind: 'cmd';
  command: CommandLine;
}
export interface EntrypointInstruction extends Base {
  kind: 'entrypoint';
  command: CommandLine;
}
export interface ShellInstruction extends Base {
  kind: 'shell';
  shell: string[];
}
interface CopyLike {
  sources: string[];
  inline: InlineFile[];
  dest: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  exclude: string[];
}
export interface CopyInstruction extends Base, CopyLike {
  kind: 'copy';
  from?: string;
  parents: boolean;
}
export interface AddInstruction extends Base, CopyLike {
  kind: 'add';
  checksum?: string;
  keepGitDir: boolean;
  unpack?: boolean;
}
export interface WorkdirInstruction extends Base {
  kind: 'workdir';
  path: string;
}
export interface UserInstruction extends Base {
  kind: 'user';
  user: string;
}
export interface VolumeInstruction extends Base {
  kind: 'volume';
  volumes: string[];
}
export interface ExposeInstruction extends Base {
  kind: 'expose';
  ports: string[];
}
export interface StopSignalInstruction extends Base {
  kind: 'stopsignal';
  signal: string;
}
export interface HealthcheckInstruction extends Base {
  kind: 'healthcheck';
  /** ["NONE"], ["CMD", exec…] or ["CMD-SHELL", command], as in the image config */
  test: string[];
  /** nanoseconds, 0 = inherit the default */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}
export interface OnbuildInstruction extends Base {
  kind: 'onbuild';
  /** the trigger as it is stored in the image config (heredoc bodies appended) */
  expression: string;
  trigger: Node;
}
export interface MaintainerInstruction extends Base {
  kind: 'maintainer';
  maintainer: string;
}

export type Instruction =
  | FromInstruction
  | ArgInstruction
  | EnvInstruction
  | LabelInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | CopyInstruction
  | AddInstruction
  | WorkdirInstruction
  | UserInstruction
  | VolumeInstruction
  | ExposeInstruction
  | StopSignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

export type InstructionKind = Instruction['kind'];

function base(node: Node): Base {
  return { keyword: node.keyword, code: trimSpace(node.original), line: node.startLine, endLine: node.endLine, node };
}

function flags(node: Node, spec: Record<string, FlagKind> = {}): FlagSet {
  return new FlagSet(node.keyword.toUpperCase(), spec).parse(node.flags);
}

function fail(message: string, hint?: string): never {
  throw new LineSyntaxError(message, hint);
}

function exactlyOne(node: Node, name: string): string {
  if (node.args.length !== 1) fail(`${name} requires exactly one argument`, `write ${name} VALUE`);
  return node.args[0];
}

function atLeastOne(node: Node, name: string): void {
  if (node.args.length === 0) fail(`${name} requires at least one argument`);
}

function keyValues(node: Node, name: string): KeyValue[] {
  if (node.args.length === 0) fail(`${name} requires at least one argument`, `write ${name} KEY=VALUE`);
  const pairs: KeyValue[] = [];
  // the line parser gives triples: key, value, separator ("=" or "" for the legacy form)
  for (let i = 0; i < node.args.length; i += 3) {
    if (node.args[i] === '') fail(`${name} names can not be blank`);
    const legacy = node.args[i + 2] === '';
    pairs.push(
      legacy ? { key: node.args[i], value: node.args[i + 1], legacy } : { key: node.args[i], value: node.args[i + 1] },
    );
  }
  return pairs;
}

// Exec form keeps its elements; shell form is one string for the SHELL. `CMD []` stays an empty exec form.
function commandLine(node: Node): CommandLine {
  const files = node.heredocs.map((h) => ({ name: h.name, data: h.content, expand: h.expand, chomp: h.chomp }));
  const args = node.json ? node.args : node.args.length === 0 ? [] : [node.args.join(' ')];
  return { args, prependShell: !node.json, files };
}

function sourcesAndDest(node: Node, name: string): Pick<CopyLike, 'sources' | 'inline' | 'dest'> {
  if (node.args.length < 2) {
    fail(
      `${name} requires at least two arguments, but only one was provided. Destination could not be determined`,
      `write ${name} SOURCE... DEST`,
    );
  }
  const dest = node.args[node.args.length - 1];
  if (parseHeredocWord(dest)) fail(`${name} cannot accept a heredoc as a destination`);
  const byName = new Map<string, Heredoc>(node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const inline: InlineFile[] = [];
  for (const src of node.args.slice(0, -1)) {
    const h = parseHeredocWord(src);
    if (h) {
      const content = byName.get(h.name)?.content ?? '';
      inline.push({
        name: h.name,
        data: h.chomp ? chompHeredocContent(content) : content,
        expand: h.expand,
        chomp: h.chomp,
      });
    } else {
      sources.push(src);
    }
  }
  return { sources, inline, dest };
}

function interval(f: FlagSet, name: string): number {
  const v = f.string(name);
  if (v === undefined || v === '') return 0;
  const d = parseGoDuration(v);
  if (d === undefined) fail(`time: invalid duration "${v}" in --${name}`, 'use a duration like 30s, 1m30s or 500ms');
  if (d === 0) return 0;
  if (d < 1e6) fail(`Interval "${name}" cannot be less than 1ms`);
  return d;
}

const stageNamePattern = /^[a-z][a-z0-9-_.]*$/;

function parseFrom(node: Node): FromInstruction {
  const f = flags(node, { platform: 'string' });
  const a = node.args;
  let stageName: string | undefined;
  if (a.length === 3 && a[1].toLowerCase() === 'as') {
    stageName = a[2].toLowerCase();
    if (!stageNamePattern.test(stageName)) {
      fail(
        `invalid name for build stage: ${JSON.stringify(a[2])}, name can't start with a number or contain symbols`,
        'stage names are letters, digits, -, _ and ., starting with a letter',
      );
    }
  } else if (a.length !== 1) {
    fail('FROM requires either one or three arguments', 'write FROM IMAGE or FROM IMAGE AS NAME');
  }
  return { ...base(node), kind: 'from', image: a[0], stageName, platform: f.string('platform') };
}

function parseHealthcheck(node: Node): HealthcheckInstruction {
  atLeastOne(node, 'HEALTHCHECK');
  const type = node.args[0].toUpperCase();
  const rest = node.args.slice(1);
  const b = { ...base(node), kind: 'healthcheck' as const };
  if (type === 'NONE') {
    if (rest.length !== 0) fail('HEALTHCHECK NONE takes no arguments');
    flags(node);
    return { ...b, test: ['NONE'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  }
  const f = flags(node, {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  });
  if (type !== 'CMD') fail(`Unknown type "${node.args[0]}" in HEALTHCHECK (try CMD)`);
  const cmd = node.json ? rest : rest.length === 0 ? [] : [rest.join(' ')];
  if (cmd.length === 0) fail('Missing command after HEALTHCHECK CMD');
  let retries = 0;
  const r = f.string('retries');
  if (r !== undefined && r !== '') {
    if (!/^[+-]?\d+$/.test(r))
      fail(`strconv.ParseInt: parsing "${r}": invalid syntax`, '--retries takes a whole number');
    retries = Number.parseInt(r, 10);
    if (retries < 0) fail(`--retries cannot be negative (${retries})`);
  }
  return {
    ...b,
    test: [node.json ? 'CMD' : 'CMD-SHELL', ...cmd],
    interval: interval(f, 'interval'),
    timeout: interval(f, 'timeout'),
    startPeriod: interval(f, 'start-period'),
    startInterval: interval(f, 'start-interval'),
    retries,
  };
}

function parseOnbuild(node: Node): OnbuildInstruction {
  flags(node);
  if (!node.sub) fail('ONBUILD requires at least one argument', 'write ONBUILD INSTRUCTION, e.g. ONBUILD COPY . /app');
  const trigger = node.sub.keyword.toUpperCase();
  if (trigger === 'ONBUILD') fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === 'MAINTAINER' || trigger === 'FROM') fail(`${trigger} isn't allowed as an ONBUILD trigger`);
  let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of node.heredocs) expression += `\n${h.content}${h.name}`;
  return { ...base(node), kind: 'onbuild', expression, trigger: node.sub };
}

function parseNode(node: Node): Instruction {
  const b = base(node);
  switch (node.keyword.toLowerCase()) {
    case 'from':
      return parseFrom(node);
    case 'arg': {
      flags(node);
      if (node.args.length === 0) fail('ARG requires at least one argument', 'write ARG NAME or ARG NAME=DEFAULT');
      const args = node.args.map((w) => {
        const eq = w.indexOf('=');
        if (eq === 0) fail(`ARG names can not be blank: ${w}`);
        return eq < 0 ? { key: w } : { key: w.slice(0, eq), value: w.slice(eq + 1) };
      });
      return { ...b, kind: 'arg', args };
    }
    case 'env':
      flags(node);
      return { ...b, kind: 'env', pairs: keyValues(node, 'ENV') };
    case 'label':
      flags(node);
      return { ...b, kind: 'label', pairs: keyValues(node, 'LABEL') };
    case 'maintainer':
      flags(node);
      return { ...b, kind: 'maintainer', maintainer: exactlyOne(node, 'MAINTAINER') };
    case 'run': {
      const f = flags(node, { mount: 'list', network: 'string', security: 'string' });
      return {
        ...b,
        kind: 'run',
        command: commandLine(node),
        mounts: f.list('mount'),
        network: f.string('network'),
        security: f.string('security'),
      };
    }
    case 'cmd':
      flags(node);
      return { ...b, kind: 'cmd', command: commandLine(node) };
    case 'entrypoint':
      flags(node);
      return { ...b, kind: 'entrypoint', command: commandLine(node) };
    case 'shell':
      flags(node);
      if (!node.json) fail('SHELL requires the arguments to be in JSON form', 'write SHELL ["/bin/bash", "-c"]');
      if (node.args.length === 0) fail('SHELL requires at least one argument');
      return { ...b, kind: 'shell', shell: node.args };
    case 'copy': {
      const f = flags(node, {
        from: 'string',
        chown: 'string',
        chmod: 'string',
        link: 'bool',
        parents: 'bool',
        exclude: 'list',
      });
      return {
        ...b,
        kind: 'copy',
        ...sourcesAndDest(node, 'COPY'),
        from: f.string('from'),
        chown: f.string('chown'),
        chmod: f.string('chmod'),
        link: f.bool('link'),
        parents: f.bool('parents'),
        exclude: f.list('exclude'),
      };
    }
    case 'add': {
      const f = flags(node, {
        chown: 'string',
        chmod: 'string',
        link: 'bool',
        checksum: 'string',
        'keep-git-dir': 'bool',
        exclude: 'list',
        unpack: 'bool',
      });
      return {
        ...b,
        kind: 'add',
        ...sourcesAndDest(node, 'ADD'),
        chown: f.string('chown'),
        chmod: f.string('chmod'),
        link: f.bool('link'),
        checksum: f.string('checksum'),
        keepGitDir: f.bool('keep-git-dir'),
        exclude: f.list('exclude'),
        unpack: f.used.includes('unpack') ? f.bool('unpack') : undefined,
      };
    }
    case 'workdir':
      flags(node);
      return { ...b, kind: 'workdir', path: exactlyOne(node, 'WORKDIR') };
    case 'user':
      flags(node);
      return { ...b, kind: 'user', user: exactlyOne(node, 'USER') };
    case 'volume':
      flags(node);
      atLeastOne(node, 'VOLUME');
      for (const v of node.args) if (trimSpace(v) === '') fail('VOLUME specified can not be an empty string');
      return { ...b, kind: 'volume', volumes: node.args };
    case 'expose':
      flags(node);
      atLeastOne(node, 'EXPOSE');
      return { ...b, kind: 'expose', ports: node.args };
    case 'stopsignal':
      flags(node);
      return { ...b, kind: 'stopsignal', signal: exactlyOne(node, 'STOPSIGNAL') };
    case 'healthcheck':
      return parseHealthcheck(node);
    case 'onbuild':
      return parseOnbuild(node);
    default: {
      const near = closest(node.keyword, instructionKeywords);
      fail(
        `unknown instruction: ${node.keyword}`,
        near
          ? `did you mean ${near.toUpperCase()}?`
          : `the instructions are ${instructionKeywords.map((k) => k.toUpperCase()).join(', ')}`,
      );
    }
  }
}

/** One node to its instruction; a DockerfileError (at the node's lines) for anything BuildKit rejects. */
export function parseInstruction(node: Node): Instruction {
  try {
    return parseNode(node);
  } catch (e) {
    if (e instanceof LineSyntaxError) {
      throw new DockerfileError(e.message, { line: node.startLine, endLine: node.endLine }, { hint: e.hint });
    }
    throw e;
  }
}
