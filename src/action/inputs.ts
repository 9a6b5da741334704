// The Action's inputs, read into one typed object: build-push-action's names and list kinds (List: one item per
// line; List/CSV: commas split too; see lists.ts), metadata-action's tagging inputs, login-action's, and `cache`.
// Every value is checked here, so that a bad one fails the step before anything is fetched, naming the input.
// Pure: inputs come through `get` (core.getInput on a runner, a table in tests).
import { type Isolation, isolations } from '../exec/executor.js';
import { type CacheFromSpec, type CacheToSpec, parseCacheFrom, parseCacheTo } from '../cache/backend.js';
import { parseSecretFlag, type SecretSource } from '../exec/mounts.js';
import { parseSshFlag } from '../exec/ssh.js';
import { type OutputSpec, parseOutput } from '../export/outputs.js';
import { parsePlatform, type Platform } from '../image/platform.js';
import { getList, inputBool } from './lists.js';

export class InputError extends Error {
  override readonly name = 'InputError';
}

/** Every input action.yml declares, with its list kind ('list', 'csv') or 'string'/'bool'; a test keeps them equal. */
export const inputKinds = {
  context: 'string',
  file: 'string',
  tags: 'csv',
  images: 'list',
  'tag-rules': 'list',
  flavor: 'list',
  labels: 'list',
  annotations: 'list',
  'build-args': 'list',
  'build-contexts': 'list',
  target: 'string',
  platforms: 'csv',
  emulate: 'bool',
  isolation: 'string',
  push: 'bool',
  'push-by-digest': 'bool',
  load: 'bool',
  outputs: 'list',
  cache: 'string',
  'cache-from': 'list',
  'cache-to': 'list',
  'no-cache': 'bool',
  'no-cache-filters': 'csv',
  pull: 'bool',
  secrets: 'list',
  'secret-envs': 'csv',
  'secret-files': 'list',
  ssh: 'csv',
  network: 'string',
  'shm-size': 'string',
  'add-hosts': 'csv',
  registry: 'string',
  username: 'string',
  password: 'string',
  'github-token': 'string',
  merge: 'list',
  'merge-digests-dir': 'string',
} as const;

export type InputName = keyof typeof inputKinds;

/**
 * How a list input is read beyond its kind: metadata-action's lists skip `#` comment lines; build-push-action reads
 * `outputs` with quotes as ordinary characters and `secrets` untrimmed (a key's trailing line break is part of it).
 */
const listOptions: Partial<Record<InputName, { comment?: string; quote?: boolean; trim?: boolean }>> = {
  images: { comment: '#' },
  'tag-rules': { comment: '#' },
  flavor: { comment: '#' },
  labels: { comment: '#' },
  annotations: { comment: '#' },
  outputs: { quote: false },
  secrets: { trim: false },
};

export interface ActionInputs {
  /** as given (relative to the workspace) */
  context: string;
  file?: string;
  tags: string[];
  images: string[];
  tagRules: string[];
  flavor: string[];
  /** `key=value` lines */
  labels: string[];
  annotations: string[];
  buildArgs: Map<string, string>;
  target?: string;
  /** one platform: the one asked for (absent: the runner's) */
  platform?: Platform;
  /** several platforms: an image each, pushed as one index */
  platforms: Platform[];
  /** register qemu-user-static with binfmt_misc for a foreign platform's RUN */
  emulate: boolean;
  /** how RUN steps run (auto: runc where the runner may mount, else proot, else chroot) */
  isolation: Isolation;
  /** merge mode: no build, one index of these images (REPO@sha256:…), or of the digests files in mergeDigestsDir name */
  merge: string[];
  mergeDigestsDir?: string;
  push: boolean;
  /** push to the repositories of the tags (or of images) without a tag, the digest as the output: a matrix leg */
  pushByDigest: boolean;
  load: boolean;
  outputs: OutputSpec[];
  cache: 'auto' | 'off';
  cacheFrom: CacheFromSpec[];
  cacheTo: CacheToSpec[];
  noCache: boolean;
  noCacheFilters: string[];
  secrets: Map<string, SecretSource>;
  ssh: Map<string, string[]>;
  registry?: string;
  username?: string;
  password?: string;
  githubToken?: string;
  /** inputs given that this version does not apply, each as a sentence for the log */
  notApplied: string[];
}

/** `KEY=value` of a List input's item; `what` names it in the error. */
function keyValue(item: string, input: string, what = 'KEY=VALUE'): [string, string] {
  const eq = item.indexOf('=');
  if (eq <= 0) throw new InputError(`input ${input}: "${item}" is not ${what}`);
  return [item.slice(0, eq).trim(), item.slice(eq + 1)];
}

function parsed<T>(input: string, item: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new InputError(`input ${input}: ${(e as Error).message.replace(/^--[a-z-]+ /, `"${item}": `)}`);
  }
}

/** `get` answers an input as core.getInput does: trimmed, unless `untrimmed` asks for it as given. */
export function readInputs(get: (name: InputName, untrimmed?: boolean) => string): ActionInputs {
  const text = (n: InputName) => get(n).trim();
  const list = (n: InputName) => {
    const o = listOptions[n] ?? {};
    try {
      return getList(o.trim === false ? get(n, true) : get(n).trim(), { ignoreComma: inputKinds[n] !== 'csv', ...o });
    } catch (e) {
      throw new InputError(`input ${n}: ${(e as Error).message}`);
    }
  };
  const bool = (n: InputName, fallback = false) => {
    try {
      return inputBool(n, get(n), fallback);
    } catch (e) {
      throw new InputError((e as Error).message);
    }
  };
  const notApplied: string[] = [];

  const buildArgs = new Map(list('build-args').map((a) => keyValue(a, 'build-args')));
  for (const l of list('labels')) keyValue(l, 'labels');
  const platforms = list('platforms').map((p) => parsed('platforms', p, () => parsePlatform(p)));
  const platform = platforms.length === 1 ? platforms[0] : undefined;

  const cache = text('cache') || 'auto';
  if (cache !== 'auto' && cache !== 'off') throw new InputError(`input cache: "${cache}" is not auto or off`);
  bool('pull'); // base images are resolved at every build: pull is always true in effect

  const secrets = new Map<string, SecretSource>();
  for (const s of list('secrets')) {
    const [id, value] = keyValue(s, 'secrets', 'ID=value');
    secrets.set(id, { value });
  }
  for (const s of list('secret-envs')) {
    const [id, env] = keyValue(s, 'secret-envs', 'ID=ENVNAME');
    secrets.set(id, { env });
  }
  for (const s of list('secret-files')) {
    const [id, file] = keyValue(s, 'secret-files', 'ID=path');
    secrets.set(id, parsed('secret-files', s, () => parseSecretFlag(`id=${id},src=${file}`))[1]);
  }

  for (const n of ['build-contexts', 'add-hosts'] as const) if (list(n).length) notApplied.push(`input ${n} is not supported by this version of hoist and is ignored`);
  const shm = text('shm-size');
  if (shm) notApplied.push('input shm-size is not supported by this version of hoist and is ignored (RUN gets the runtime\'s default /dev/shm)');
  const network = text('network');
  if (network && network !== 'default' && network !== 'host') notApplied.push(`input network: "${network}" is not supported by this version of hoist and is ignored (RUN uses the host's network unless a step says --network=none)`);
  if (list('annotations').length) notApplied.push('input annotations: this version of hoist writes no manifest annotations; they are ignored');

  return {
    context: text('context') || '.',
    ...(text('file') ? { file: text('file') } : {}),
    tags: list('tags'),
    images: list('images'),
    tagRules: list('tag-rules'),
    flavor: list('flavor'),
    labels: list('labels'),
    annotations: list('annotations'),
    buildArgs,
    ...(text('target') ? { target: text('target') } : {}),
    ...(platform ? { platform } : {}),
    platforms,
    emulate: bool('emulate'),
    isolation: isolationInput(text('isolation')),
    merge: list('merge'),
    ...(text('merge-digests-dir') ? { mergeDigestsDir: text('merge-digests-dir') } : {}),
    push: bool('push'),
    pushByDigest: bool('push-by-digest'),
    load: bool('load'),
    outputs: list('outputs').map((o) => parsed('outputs', o, () => parseOutput(o))),
    cache,
    cacheFrom: list('cache-from').map((c) => parsed('cache-from', c, () => parseCacheFrom(c))),
    cacheTo: list('cache-to').map((c) => parsed('cache-to', c, () => parseCacheTo(c))),
    noCache: bool('no-cache'),
    noCacheFilters: list('no-cache-filters'),
    secrets,
    ssh: new Map(list('ssh').map((s) => parsed('ssh', s, () => parseSshFlag(s)))),
    ...(text('registry') ? { registry: text('registry') } : {}),
    ...(text('username') ? { username: text('username') } : {}),
    ...(get('password') ? { password: get('password') } : {}),
    ...(text('github-token') ? { githubToken: text('github-token') } : {}),
    notApplied,
  };
}

function isolationInput(value: string | undefined): Isolation {
  if (!value) return 'auto';
  if (!(isolations as readonly string[]).includes(value)) throw new InputError(`input isolation: ${JSON.stringify(value)} is not one of ${isolations.join(', ')}`);
  return value as Isolation;
}
