// Where registry credentials come from, in Docker's order (docker/cli configfile): credHelpers[host], then
// credsStore, then plain `auths`; DOCKER_AUTH_CONFIG (a config.json in an environment variable, docker CLI ≥ 28.3)
// overrides the file, and podman's auth.json is read when Docker's config has nothing. Docker Hub is keyed as
// `https://index.docker.io/v1/`. Secrets never leave this module except to an Authorization header.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

export interface Credential {
  username?: string;
  password?: string;
  /** an OAuth2 refresh token (docker's `identitytoken`, a helper's `<token>` user) */
  identityToken?: string;
  /** a bearer token to send as is (docker's `registrytoken`) */
  registryToken?: string;
}

export interface CredentialSource {
  get(registry: string): Promise<Credential | undefined>;
}

export class CredentialError extends Error {
  override readonly name = 'CredentialError';
}

export const dockerHubAuthKey = 'https://index.docker.io/v1/';

/** The key a registry's credentials are stored under in config.json. */
export function authKey(registry: string): string {
  return ['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(registry) ? dockerHubAuthKey : registry;
}

/** `https://quay.io/v1/` → `quay.io`; plain hosts stay as they are (docker/cli ConvertToHostname). */
function keyHostname(key: string): string {
  const noScheme = key.replace(/^[a-z]+:\/\//i, '');
  return noScheme.split('/')[0];
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [field: string]: unknown;
}

function entryCredential(e: AuthEntry, where: string): Credential | undefined {
  const c: Credential = {};
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new CredentialError(`${where}: the "auth" value is not base64 of user:password`);
    c.username = decoded.slice(0, colon);
    c.password = decoded.slice(colon + 1);
  } else {
    if (e.username) c.username = e.username;
    if (e.password) c.password = e.password;
  }
  if (e.identitytoken) c.identityToken = e.identitytoken;
  if (e.registrytoken) c.registryToken = e.registrytoken;
  return Object.keys(c).length ? c : undefined;
}

function findAuth(auths: Record<string, AuthEntry> | undefined, registry: string): AuthEntry | undefined {
  if (!auths) return undefined;
  const key = authKey(registry);
  if (auths[key]) return auths[key];
  const host = keyHostname(key);
  for (const [k, v] of Object.entries(auths)) {
    const kh = keyHostname(k);
    if (kh === host || authKey(kh) === key) return v;
  }
  return undefined;
}

/** Runs `docker-credential-<helper> <verb>` with the given stdin; resolves stdout, rejects with its message. */
export function runCredentialHelper(
  helper: string,
  verb: 'get' | 'store' | 'erase',
  input: string,
  env = process.env,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const program = `docker-credential-${helper}`;
    const child = spawn(program, [verb], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new CredentialError(
          e.code === 'ENOENT'
            ? `credential helper ${program} is not installed or not on PATH`
            : `${program}: ${e.message}`,
        ),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new CredentialError(`${program} ${verb}: ${(out.trim() || err.trim() || `exit code ${code}`).slice(0, 300)}`),
        );
    });
    child.stdin.end(input);
  });
}

async function helperGet(helper: string, registry: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  let out: string;
  try {
    out = await runCredentialHelper(helper, 'get', authKey(registry), env);
  } catch (e) {
    if (/credentials not found/i.test((e as Error).message)) return undefined;
    throw e;
  }
  const v = JSON.parse(out) as { Username?: string; Secret?: string };
  if (!v.Secret) return undefined;
  return v.Username === '<token>' ? { identityToken: v.Secret } : { username: v.Username, password: v.Secret };
}

export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || path.join(env.HOME || homedir(), '.docker');
}

export async function readDockerConfig(file: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch (e) {
    throw new CredentialError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

function podmanAuthFiles(env: NodeJS.ProcessEnv): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(path.join(env.XDG_CONFIG_HOME || path.join(env.HOME || homedir(), '.config'), 'containers', 'auth.json'));
  return files;
}

/** Credentials as `docker pull`/`docker push` would find them on this machine. */
export class DockerCredentials implements CredentialSource {
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  private async fromConfig(
    config: DockerConfigFile | undefined,
    registry: string,
    where: string,
  ): Promise<Credential | undefined> {
    if (!config) return undefined;
    const helper = config.credHelpers?.[authKey(registry)] ?? config.credHelpers?.[registry];
    if (helper) return helperGet(helper, registry, this.env);
    if (config.credsStore) {
      const c = await helperGet(config.credsStore, registry, this.env);
      if (c) return c;
    }
    const e = findAuth(config.auths, registry);
    return e ? entryCredential(e, where) : undefined;
  }

  async get(registry: string): Promise<Credential | undefined> {
    if (this.env.DOCKER_AUTH_CONFIG) {
      let config: DockerConfigFile;
      try {
        config = JSON.parse(this.env.DOCKER_AUTH_CONFIG) as DockerConfigFile;
      } catch {
        throw new CredentialError(
          'DOCKER_AUTH_CONFIG is not valid JSON (expected a config.json document with "auths")',
        );
      }
      const c = await this.fromConfig(config, registry, 'DOCKER_AUTH_CONFIG');
      if (c) return c;
    }
    const file = path.join(dockerConfigDir(this.env), 'config.json');
    const c = await this.fromConfig(await readDockerConfig(file), registry, file);
    if (c) return c;
    for (const f of podmanAuthFiles(this.env)) {
      const conf = await readDockerConfig(f);
      const e = findAuth(conf?.auths, registry);
      if (e) return entryCredential(e, f);
    }
    return undefined;
  }
}

/** Explicit credentials for some registries, then another source. */
export class StaticCredentials implements CredentialSource {
  constructor(
    private readonly byRegistry: Map<string, Credential>,
    private readonly fallback?: CredentialSource,
  ) {}
  async get(registry: string): Promise<Credential | undefined> {
    return this.byRegistry.get(authKey(registry)) ?? this.byRegistry.get(registry) ?? this.fallback?.get(registry);
  }
}

async function writeConfigAtomically(file: string, config: DockerConfigFile): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** `docker login`'s write: a helper's store when one is configured, else base64 `auth` in config.json (mode 0600). */
export async function storeCredential(
  registry: string,
  cred: { username: string; password: string },
  env = process.env,
): Promise<string> {
  const file = path.join(dockerConfigDir(env), 'config.json');
  const config = (await readDockerConfig(file)) ?? {};
  const key = authKey(registry);
  const helper = config.credHelpers?.[key] ?? config.credsStore;
  if (helper) {
    await runCredentialHelper(
      helper,
      'store',
      JSON.stringify({ ServerURL: key, Username: cred.username, Secret: cred.password }),
      env,
    );
    return `docker-credential-${helper}`;
  }
  config.auths = {
    ...config.auths,
    [key]: { auth: Buffer.from(`${cred.username}:${cred.password}`).toString('base64') },
  };
  await writeConfigAtomically(file, config);
  return file;
}

/** `docker logout`: erases from the helper or drops the `auths` entry. Returns false when nothing was stored. */
export async function eraseCredential(registry: string, env = process.env): Promise<boolean> {
  const file = path.join(dockerConfigDir(env), 'config.json');
  const config = await readDockerConfig(file);
  if (!config) return false;
  const key = authKey(registry);
  const helper = config.credHelpers?.[key] ?? config.credsStore;
  let erased = false;
  if (helper) {
    try {
      await runCredentialHelper(helper, 'erase', key, env);
      erased = true;
    } catch {
      // not stored there
    }
  }
  if (config.auths) {
    for (const k of Object.keys(config.auths)) {
      if (k === key || keyHostname(k) === keyHostname(key)) {
        delete config.auths[k];
        erased = true;
      }
    }
    await writeConfigAtomically(file, config);
  }
  return erased;
}
