// A Git repository as the build's context, as BuildKit's dockerui reads one (frontend/dockerui, util/gitutil): a
// URL ending in `.git` over https/http (`https://host/o/r.git#ref:subdir`), `git@host:o/r.git`, `ssh://…`,
// `git://…`, `github.com/o/r`, with the ref and the directory inside the repository in the fragment, or as
// `?ref=…&subdir=…` (buildx's BUILDX_SEND_GIT_QUERY_AS_INPUT). It is fetched with the machine's own git, shallow
// (one commit), its submodules too, into a directory of the build's: the `.git` directory is removed unless
// BUILDKIT_CONTEXT_KEEP_GIT_DIR=1 (or `keep-git-dir=true`) asks to keep it, and every file gets the commit's time,
// so that the same commit gives the same layers (BuildKit master's `git.mtime=commit`; 0.13 keeps the checkout's
// time). A token (GIT_AUTH_TOKEN, or GIT_AUTH_TOKEN.<host>, as BuildKit takes it) goes to git as an HTTP header
// through the environment of the git processes alone: never in an argument, a file, the URL or a log line.
// Transports that read the machine (file://, ext::) are refused, the repository's own submodules included.
import { lstatSync, readdirSync } from 'node:fs';
import { lutimes, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { resolveInside } from '../layer/rooted.js';
import { ToolMissingError } from '../layer/xattr.js';
import { onPath, type ProcessResult, runProcess } from '../exec/process.js';

export interface GitContext {
  /** what git fetches from (the URL without the fragment or query) */
  remote: string;
  /** a branch, tag, full ref or commit; the remote's HEAD when absent */
  ref?: string;
  /** the directory inside the repository that is the context */
  subdir?: string;
  keepGitDir?: boolean;
  submodules: boolean;
  /** `checksum=` / `commit=`: the commit the ref must resolve to (a prefix of its id) */
  checksum?: string;
  /** the host a GIT_AUTH_TOKEN.<host> secret is for */
  host: string;
}

export class GitContextError extends Error {
  override readonly name = 'GitContextError';
}

/** The Git context a build context names, or undefined when it is not a Git URL (a directory, say). */
export function parseGitContext(text: string): GitContext | undefined {
  const shorthand = /^github\.com\//.test(text);
  let url = shorthand ? `https://${text}` : text;
  const scp = /^[a-z0-9_.-]+@([a-z0-9.-]+):(?!\/\/)/i.exec(url);
  if (!scp && !/^(https?|git|ssh|git\+ssh):\/\//i.test(url)) return undefined;
  // http(s) is a Git context only with a .git path (else it is a URL context: a tarball or a Dockerfile)
  if (!shorthand && /^https?:\/\//i.test(url) && !/\.git(?:[#?].*)?$/.test(url)) return undefined;
  let fragment = '';
  let query = '';
  const hash = url.indexOf('#');
  if (hash >= 0) {
    fragment = url.slice(hash + 1);
    url = url.slice(0, hash);
  }
  const q = url.indexOf('?');
  if (q >= 0 && !scp) {
    query = url.slice(q + 1);
    url = url.slice(0, q);
  }
  const out: GitContext = { remote: url, submodules: true, host: '' };
  if (fragment) {
    const colon = fragment.indexOf(':');
    const ref = colon < 0 ? fragment : fragment.slice(0, colon);
    const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
    if (ref) out.ref = ref;
    if (subdir) out.subdir = subdir;
  }
  for (const [k, v] of new URLSearchParams(query)) {
    if (k === 'ref' || k === 'tag' || k === 'branch') out.ref = v;
    else if (k === 'subdir') out.subdir = v;
    else if (k === 'keep-git-dir') out.keepGitDir = /^(1|true)$/i.test(v);
    else if (k === 'submodules') out.submodules = !/^(0|false)$/i.test(v);
    else if (k !== 'checksum' && k !== 'commit')
      throw new GitContextError(
        `Git context ${redact(text)}: unknown query parameter ${JSON.stringify(k)} (ref, subdir, keep-git-dir, submodules)`,
      );
    else if (v && !/^[0-9a-f]{7,64}$/i.test(v))
      throw new GitContextError(`Git context ${redact(text)}: ${k}=${v} is not a commit`);
    else if (v) {
      out.checksum = v.toLowerCase();
      out.ref ??= v;
    }
  }
  if (out.ref !== undefined && (out.ref.startsWith('-') || /[\s\0~^:\\]|\.\.|@\{/.test(out.ref)))
    throw new GitContextError(`Git context ${redact(text)}: ${JSON.stringify(out.ref)} is not a ref or commit`);
  try {
    out.host = scp ? scp[1] : new URL(url.replace(/^git\+ssh:/i, 'ssh:')).host;
  } catch {
    throw new GitContextError(`Git context ${redact(text)}: not a URL git can fetch`);
  }
  return out;
}

/** A URL for messages: any user:password in it left out. */
export function redact(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^/@]*@/i, '$1');
}

export interface FetchedGitContext {
  /** the checkout's root */
  root: string;
  /** the context: the root, or the subdir resolved inside it */
  dir: string;
  commit: string;
  /** seconds */
  commitTime: number;
}

/**
 * Fetches the context into `into` (made; the caller removes it). `keepGitDir` is the build arg's; the URL's own
 * keep-git-dir wins.
 */
export async function fetchGitContext(
  ctx: GitContext,
  into: string,
  options: { token?: string; keepGitDir?: boolean } = {},
): Promise<FetchedGitContext> {
  const git = onPath('git');
  if (!git) throw new ToolMissingError('a Git context needs git on PATH: install git (apt-get install git)');
  await mkdir(into, { recursive: true });
  const env = gitEnvironment(ctx, options.token);
  const run = (args: string[]): Promise<ProcessResult> => runProcess(git, args, { cwd: into, env });
  const must = async (args: string[], what: string): Promise<ProcessResult> => {
    const r = await run(args);
    if (r.status !== 0)
      throw new GitContextError(
        `Git context ${redact(ctx.remote)}: ${what}: ${lastLines(r.error?.message ?? r.stderr)}`,
      );
    return r;
  };
  await must(['init', '-q'], 'git init failed');
  await must(['remote', 'add', 'origin', ctx.remote], 'git remote add failed');
  const ref = ctx.ref;
  // One commit: a branch, tag or full ref by name, a commit by its id (servers that allow it: GitHub does); a
  // shortened id, or a server that refuses a bare id, needs the whole history, fetched then.
  const fetched = await run(['fetch', '-q', '--depth=1', '--no-tags', 'origin', ref ?? 'HEAD']);
  if (fetched.status !== 0) {
    const commitLike = ref !== undefined && /^[0-9a-f]{7,40}$/i.test(ref);
    if (!commitLike)
      throw new GitContextError(
        `Git context ${redact(ctx.remote)}: could not fetch ${ref ?? 'HEAD'}: ${lastLines(fetched.stderr)}`,
      );
    await must(
      ['fetch', '-q', '--no-tags', 'origin', '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*'],
      `could not fetch ${ref}`,
    );
    await must(['checkout', '-q', '--detach', ref], `no commit ${ref} in the repository`);
  } else {
    await must(['checkout', '-q', '--detach', 'FETCH_HEAD'], 'git checkout failed');
  }
  if (ctx.submodules)
    await must(
      ['submodule', 'update', '-q', '--init', '--recursive', '--depth=1'],
      'its submodules could not be fetched',
    );
  const commit = (await must(['rev-parse', 'HEAD'], 'git rev-parse failed')).stdout.trim();
  if (ctx.checksum && !commit.startsWith(ctx.checksum))
    throw new GitContextError(
      `Git context ${redact(ctx.remote)}: ${ref ?? 'HEAD'} is commit ${commit}, not the ${ctx.checksum} the URL asks for`,
    );
  const commitTime = Number((await must(['log', '-1', '--format=%ct', 'HEAD'], 'git log failed')).stdout.trim());
  if (!(ctx.keepGitDir ?? options.keepGitDir)) {
    await rm(path.join(into, '.git'), { recursive: true, force: true });
  }
  await stampTimes(into, commitTime);
  let dir = into;
  if (ctx.subdir) {
    // inside the checkout, whatever its symlinks say (a link to / leads back to the checkout's root)
    const r = resolveInside(into, ctx.subdir, { followLast: true });
    if (!r.stats?.isDirectory())
      throw new GitContextError(
        `Git context ${redact(ctx.remote)}: ${JSON.stringify(ctx.subdir)} is not a directory of ${ref ?? 'HEAD'} (${commit.slice(0, 12)})`,
      );
    dir = r.abs;
  }
  return { root: into, dir, commit, commitTime };
}

/**
 * git's environment: no system or user configuration (url rewrites, credential helpers and hooks of the machine's
 * user have no say), no prompt, only network transports, a stalled transfer given up; the token as an extra header.
 */
function gitEnvironment(ctx: GitContext, token: string | undefined): NodeJS.ProcessEnv {
  const config: [string, string][] = [
    ['protocol.allow', 'never'],
    ['protocol.https.allow', 'always'],
    ['protocol.http.allow', 'always'],
    ['protocol.ssh.allow', 'always'],
    ['protocol.git.allow', 'always'],
    ['core.hooksPath', '/dev/null'],
    ['advice.detachedHead', 'false'],
    ['init.defaultBranch', 'main'],
    ['submodule.recurse', 'false'],
  ];
  if (token && /^https?:/i.test(ctx.remote)) {
    const origin = new URL(ctx.remote);
    config.push([
      `http.${origin.protocol}//${origin.host}/.extraheader`,
      `Authorization: basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`,
    ]);
  }
  const env: NodeJS.ProcessEnv = {};
  for (const k of [
    'PATH',
    'HOME',
    'SSH_AUTH_SOCK',
    'HTTPS_PROXY',
    'https_proxy',
    'HTTP_PROXY',
    'http_proxy',
    'NO_PROXY',
    'no_proxy',
    'GIT_SSH_COMMAND',
    'SSL_CERT_FILE',
    'SSL_CERT_DIR',
    'GIT_SSL_CAINFO',
  ]) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  return {
    ...env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_HTTP_LOW_SPEED_LIMIT: '1000',
    GIT_HTTP_LOW_SPEED_TIME: '60',
    GIT_CONFIG_COUNT: String(config.length),
    ...Object.fromEntries(
      config.flatMap(([k, v], i) => [
        [`GIT_CONFIG_KEY_${i}`, k],
        [`GIT_CONFIG_VALUE_${i}`, v],
      ]),
    ),
  };
}

/** git's last words, without anything that could be a credential in a URL. */
function lastLines(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-2)
    .map((l) => l.replace(/([a-z+]+:\/\/)[^/@\s]*@/gi, '$1'));
  return lines.join('; ').slice(0, 500) || 'git said nothing';
}

/** Every entry of the checkout at the commit's time (links themselves, not what they point at). */
async function stampTimes(root: string, seconds: number): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) await walk(p);
      await lutimes(p, seconds, seconds);
    }
  };
  await walk(root);
  await lutimes(root, seconds, seconds);
}
