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
import { type ProvenanceOptions, requestedAttestations } from '../export/provenance.js';
import { parseAddHost, parseNetwork, parseShmSize, parseUlimit, type RunSandbox } from '../exec/sandbox.js';

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
  ulimit: 'list',
  provenance: 'string',
  sbom: 'string',
  attests: 'list',
  'cgroup-parent': 'string',
  call: 'string',
  allow: 'csv',
  builder: 'string',
  created: 'string',
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
  /** what every RUN gets: add-hosts, network, shm-size, ulimit */
  sandbox: RunSandbox;
  /** build-contexts: NAME=docker-image://REF or NAME=DIR (relative to the workspace), unparsed */
  buildContexts: string[];
  /** org.opencontainers.image.created: the commit's time (default) or the run's */
  created: 'commit' | 'now';
  /** a provenance attestation (the provenance input, else attests' type=provenance) */
  provenance?: ProvenanceOptions;
  /** an SBOM attestation (the sbom input, else attests' type=sbom) */
  sbom: boolean;
  registry?: string;
  username?: string;
  password?: string;
  githubToken?: string;
  /** inputs given that this version does not apply, each as a sentence for the log */
  notApplied: string[];
}

/**
 * `KEY=value` of a List input's item as buildx reads its flags (listToMap): a key alone is a build arg's value from
 * the environment (left out when unset) or a label's empty value; an empty key is an error.
 */
function keyValue(item: string, input: string, fromEnv?: NodeJS.ProcessEnv): [string, string] | undefined {
  const eq = item.indexOf('=');
  const key = (eq < 0 ? item : item.slice(0, eq)).trim();
  if (key === '') throw new InputError(`input ${input}: "${item}" has an empty key (KEY=VALUE)`);
  if (eq >= 0) return [key, item.slice(eq + 1)];
  if (!fromEnv) return [key, ''];
  return fromEnv[key] === undefined ? undefined : [key, fromEnv[key] as string];
}

function parsed<T>(input: string, item: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new InputError(`input ${input}: ${(e as Error).message.replace(/^--[a-z-]+ /, `"${item}": `)}`);
  }
}

/** `get` answers an input as core.getInput does: trimmed, unless `untrimmed` asks for it as given. */
export function readInputs(
  get: (name: InputName, untrimmed?: boolean) => string,
  env: NodeJS.ProcessEnv = process.env,
): ActionInputs {
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

  const buildArgs = new Map(
    list('build-args').flatMap((a) => {
      const kv = keyValue(a, 'build-args', env);
      return kv ? [kv] : [];
    }),
  );
  const labels = list('labels').map((l) => (keyValue(l, 'labels') as [string, string]).join('='));
  const platforms = list('platforms').map((p) => parsed('platforms', p, () => parsePlatform(p)));
  const platform = platforms.length === 1 ? platforms[0] : undefined;

  const cache = text('cache') || 'auto';
  if (cache !== 'auto' && cache !== 'off') throw new InputError(`input cache: "${cache}" is not auto or off`);
  bool('pull'); // base images are resolved at every build: pull is always true in effect

  // As build-push-action: an item that is not ID=VALUE (both non-empty; the id up to the first `=`) is skipped with
  // a warning (which never repeats the item: it may be a secret's value).
  const secrets = new Map<string, SecretSource>();
  const secretItems = (n: 'secrets' | 'secret-envs' | 'secret-files', what: string) =>
    list(n).flatMap((s, i) => {
      const eq = s.indexOf('=');
      if (eq > 0 && eq < s.length - 1) return [[s.slice(0, eq), s.slice(eq + 1)] as const];
      notApplied.push(`input ${n}: item ${i + 1} is not ID=${what} (skipped)`);
      return [];
    });
  for (const [id, value] of secretItems('secrets', 'VALUE')) secrets.set(id, { value });
  for (const [id, env] of secretItems('secret-envs', 'ENVNAME')) secrets.set(id, { env });
  for (const [id, file] of secretItems('secret-files', 'PATH'))
    secrets.set(id, parsed('secret-files', `${id}=${file}`, () => parseSecretFlag(`id=${id},src=${file}`))[1]);

  if (text('builder'))
    notApplied.push(
      `input builder: ${JSON.stringify(text('builder'))} names a buildx builder; hoist builds itself and does not use it`,
    );
  const sandbox = sandboxOf(list, text);
  refuseUnsupported(list, text);

  // The context: build-push-action's default, the event's Git context (fetched at the event's commit, with the
  // github-token as GIT_AUTH_TOKEN.<host> unless a GIT_AUTH_TOKEN secret is given); `.` is the checkout.
  const gitDefault = eventGitContext(env);
  const context = withDefaultContext(text('context'), gitDefault) || gitDefault || '.';
  const token = text('github-token');
  if (
    token &&
    gitDefault &&
    context.startsWith(gitDefault.replace(/[#?].*$/, '')) &&
    ![...secrets.keys()].some((id) => id === 'GIT_AUTH_TOKEN' || id.startsWith('GIT_AUTH_TOKEN.'))
  ) {
    secrets.set(`GIT_AUTH_TOKEN.${new URL(gitDefault).host}`, { value: token });
  }

  return {
    context,
    ...(text('file') ? { file: text('file') } : {}),
    tags: list('tags'),
    images: list('images'),
    tagRules: list('tag-rules'),
    flavor: list('flavor'),
    labels,
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
    sandbox,
    // (a named context is an image or a directory: {{defaultContext}} there is the checkout)
    buildContexts: list('build-contexts').map((c) =>
      c.includes('=')
        ? `${c.slice(0, c.indexOf('='))}=${withDefaultContext(c.slice(c.indexOf('=') + 1), undefined)}`
        : c,
    ),
    created: createdInput(text('created')),
    ...attestationInputs(text, list),
    ...(text('registry') ? { registry: text('registry') } : {}),
    ...(text('username') ? { username: text('username') } : {}),
    ...(get('password') ? { password: get('password') } : {}),
    ...(text('github-token') ? { githubToken: text('github-token') } : {}),
    notApplied,
  };
}

/** add-hosts, network, shm-size and ulimit: what every RUN gets. */
function sandboxOf(list: (n: InputName) => string[], text: (n: InputName) => string): RunSandbox {
  const checked = <T>(input: InputName, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new InputError(`input ${input}: ${(e as Error).message}`);
    }
  };
  const addHosts = list('add-hosts').map((h) => checked('add-hosts', () => parseAddHost(h)));
  const network = checked('network', () => parseNetwork(text('network')));
  const shm = text('shm-size');
  const ulimits = list('ulimit').map((u) => checked('ulimit', () => parseUlimit(u)));
  return {
    ...(addHosts.length ? { addHosts } : {}),
    ...(network && network !== 'default' ? { network } : {}),
    ...(shm ? { shmSize: checked('shm-size', () => parseShmSize(shm)) } : {}),
    ...(ulimits.length ? { ulimits } : {}),
  };
}

/**
 * build-push-action's inputs that would change what is built or attached and that hoist does not do yet: refused,
 * saying what to write instead, rather than a different image than the workflow asks for.
 */
function refuseUnsupported(list: (n: InputName) => string[], text: (n: InputName) => string): void {
  if (text('cgroup-parent'))
    throw new InputError(
      'input cgroup-parent: hoist runs RUN steps in its own runtime, not under a cgroup you name; leave cgroup-parent out',
    );
  const call = text('call');
  if (call && call !== 'build')
    throw new InputError(
      `input call: ${JSON.stringify(call)}: hoist only builds (call: build); it runs the Dockerfile's build checks before every build, as warnings at their lines`,
    );
  for (const e of list('allow')) {
    if (e === 'network.host') continue; // RUN --network=host needs no entitlement here
    throw new InputError(
      `input allow: ${JSON.stringify(e)}: ${e === 'security.insecure' ? 'RUN --security=insecure is not supported by hoist' : 'unknown entitlement (network.host, security.insecure)'}`,
    );
  }
}

/** provenance, sbom and attests as build-push-action reads them (export/provenance.ts requestedAttestations). */
function attestationInputs(
  text: (n: InputName) => string,
  list: (n: InputName) => string[],
): { provenance?: ProvenanceOptions; sbom: boolean } {
  try {
    return requestedAttestations(
      { provenance: text('provenance'), sbom: text('sbom'), attests: list('attests') },
      { provenance: 'input provenance', sbom: 'input sbom', attests: 'input attests' },
    );
  } catch (e) {
    throw new InputError((e as Error).message);
  }
}

/**
 * build-push-action's default context: the event's Git context, as @docker/actions-toolkit's Context.gitContext()
 * makes it (parseGitRef: a branch name made a full ref, then the commit itself unless it is a pull request's ref,
 * whose merge ref becomes its head with DOCKER_DEFAULT_GIT_CONTEXT_PR_HEAD_REF=true); `?ref=` instead of `#` with
 * BUILDX_SEND_GIT_QUERY_AS_INPUT, as current buildx sends it. Undefined outside a workflow (no repository).
 */
export function eventGitContext(env: NodeJS.ProcessEnv): string | undefined {
  const repo = env.GITHUB_REPOSITORY;
  if (!repo) return undefined;
  const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
  const sha = env.GITHUB_SHA ?? '';
  let ref = env.GITHUB_REF ?? '';
  if (sha && ref && !ref.startsWith('refs/')) ref = `refs/heads/${ref}`;
  if (sha && !ref.startsWith('refs/pull/')) ref = sha;
  else if (ref.startsWith('refs/pull/') && env.DOCKER_DEFAULT_GIT_CONTEXT_PR_HEAD_REF === 'true')
    ref = ref.replace(/\/merge$/, '/head');
  return /^(1|true)$/i.test(env.BUILDX_SEND_GIT_QUERY_AS_INPUT ?? '')
    ? `${server}/${repo}.git?ref=${ref}`
    : `${server}/${repo}.git#${ref}`;
}

/**
 * `{{defaultContext}}` is the event's Git context, `{{defaultContext}}:sub` the directory `sub` of it (in the URL's
 * own form: `#ref:sub`, or `&subdir=sub` with the query form); outside a workflow, the checkout (`.` and `sub`).
 */
function withDefaultContext(value: string, git: string | undefined): string {
  const m = /^\{\{\s*defaultContext\s*\}\}(?::(.*))?$/.exec(value);
  if (!m) return value;
  const sub = m[1];
  if (!git) return sub || '.';
  if (!sub) return git;
  return git.includes('?') ? `${git}&subdir=${encodeURIComponent(sub)}` : `${git}:${sub}`;
}

function createdInput(value: string): 'commit' | 'now' {
  if (value === '' || value === 'commit') return 'commit';
  if (value === 'now') return 'now';
  throw new InputError(`input created: ${JSON.stringify(value)} is not commit or now`);
}

function isolationInput(value: string | undefined): Isolation {
  if (!value) return 'auto';
  if (!(isolations as readonly string[]).includes(value))
    throw new InputError(`input isolation: ${JSON.stringify(value)} is not one of ${isolations.join(', ')}`);
  return value as Isolation;
}
