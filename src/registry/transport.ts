// HTTP to one registry: endpoint choice (mirrors for pulls, plain HTTP only where allowed), authentication on
// 401, redirects followed by hand so credentials never reach another host, and bounded retries with backoff
// and jitter on 5xx, 429 (Retry-After honoured) and dropped connections.
import type { Readable } from 'node:stream';
import { type Dispatcher, request } from './undici.js';
import { httpDispatcher } from './proxy.js';
import { Authenticator } from './auth.js';
import type { CredentialSource } from './credentials.js';
import { maxErrorBody, readBounded } from './body.js';
import { RegistryConnectionError, RegistryError, parseErrorBody } from './errors.js';

export interface RetryPolicy {
  /** attempts in all, the first included */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * The docker.io mirrors the environment names: HOIST_REGISTRY_MIRROR, a comma-separated list of URLs (as docker's
 * daemon.json registry-mirrors, BuildKit's [registry."docker.io"] mirrors): what a self-hosted runner's
 * administrator sets once for every build, the Action's and the command's.
 */
export function mirrorsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.HOIST_REGISTRY_MIRROR ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
}

export const defaultRetry: RetryPolicy = { attempts: 5, baseDelayMs: 300, maxDelayMs: 15_000 };

export interface TransportOptions {
  credentials?: CredentialSource;
  /** hosts (host[:port]) that may be reached over plain HTTP or with unverified TLS, besides loopback */
  insecureRegistries?: readonly string[];
  /** mirror base URLs for docker.io, tried in order before Docker Hub itself, for pulls only */
  mirrors?: readonly string[];
  retry?: RetryPolicy;
  userAgent?: string;
  /** debug lines: method, URL path, status; never headers */
  debug?: (line: string) => void;
}

export interface RegistryRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** a path (`/v2/…`) on the endpoint, or an absolute URL the registry gave (an upload Location) */
  path: string;
  headers?: Record<string, string>;
  /** opens the body afresh for each attempt */
  body?: () => Readable | Uint8Array | string;
  scopes: readonly string[];
  /** what this is, for messages: "manifest ubuntu:latest" */
  what: string;
  /** statuses that are answers rather than errors (default: 2xx) */
  accept?: readonly number[];
  /** pulls may go to a mirror */
  pull?: boolean;
  /** repeat on a transient failure (only for requests that are safe to repeat) */
  retry?: boolean;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { text(): Promise<string>; dump(): Promise<void> };
  /** the URL that answered (after redirects) */
  url: URL;
}

const retryableCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'HOIST_RESTART',
]);

/** An error of the connection (refused, reset, TLS, timeout) rather than an answer or our own check. */
function isNetworkError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code ?? (e as { cause?: NodeJS.ErrnoException })?.cause?.code;
  return (
    typeof code === 'string' &&
    (retryableCodes.has(code) ||
      code.startsWith('UND_ERR') ||
      code.startsWith('ERR_SSL') ||
      code.startsWith('ERR_TLS') ||
      /^E[A-Z]+$/.test(code))
  );
}

/** A failure after which an upload must start again from a new session (its body cannot be replayed). */
export function restartError(message: string): Error {
  return Object.assign(new Error(message), { code: 'HOIST_RESTART' });
}

export function isTransient(e: unknown): boolean {
  if (e instanceof RegistryError) return e.status === 429 || (e.status >= 500 && e.status !== 501 && e.status !== 505);
  const code = (e as NodeJS.ErrnoException)?.code ?? (e as { cause?: NodeJS.ErrnoException })?.cause?.code;
  return code !== undefined && retryableCodes.has(code);
}

/** Whether a host may use plain HTTP: loopback always (as Docker treats 127.0.0.0/8), others only when named. */
export function isInsecureHost(host: string, insecure: readonly string[] = []): boolean {
  const name = host.replace(/:\d+$/, '');
  return (
    name === 'localhost' ||
    /^127\.\d+\.\d+\.\d+$/.test(name) ||
    name === '[::1]' ||
    insecure.includes(host) ||
    insecure.includes(name)
  );
}

export function header(res: { headers: RegistryResponse['headers'] }, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

export function backoffMs(policy: RetryPolicy, attempt: number, retryAfter?: number): number {
  if (retryAfter !== undefined) return Math.min(retryAfter, 60_000);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One place a registry answers: a base URL and its own authentication state. */
class Endpoint {
  private base: string | undefined;
  readonly auth: Authenticator;
  constructor(
    readonly host: string,
    scheme: 'https' | 'http' | 'probe',
    readonly dispatcher: Dispatcher,
    credentials: CredentialSource | undefined,
    credentialKey: string,
    userAgent: string,
    readonly mirror: boolean,
  ) {
    this.auth = new Authenticator(credentialKey, credentials, dispatcher, userAgent);
    if (scheme !== 'probe') this.base = `${scheme}://${host}`;
  }

  /**
   * Insecure hosts are tried over TLS first (without verification) and over plain HTTP when TLS fails, as Docker does;
   * once, however many requests wait for the answer (a base's resolve and a cache's load start together).
   */
  async baseURL(): Promise<string> {
    if (this.base) return this.base;
    this.probing ??= (async () => {
      try {
        const res = await request(`https://${this.host}/v2/`, {
          method: 'GET',
          dispatcher: this.dispatcher,
          headersTimeout: 10_000,
        });
        await res.body.dump();
        return `https://${this.host}`;
      } catch {
        return `http://${this.host}`;
      }
    })();
    this.base = await this.probing;
    return this.base;
  }
  private probing: Promise<string> | undefined;
}

/** All traffic to one registry (as named in references: `docker.io`, `127.0.0.1:5000`). */
export class RegistryTransport {
  private readonly endpoints: Endpoint[];
  private readonly retry: RetryPolicy;
  private readonly debug: (line: string) => void;
  /** warnings the registry sent (`Warning: 299 - "…"`), each once */
  readonly warnings = new Set<string>();

  constructor(
    readonly registry: string,
    agents: { secure: Dispatcher; insecure: Dispatcher },
    options: TransportOptions,
  ) {
    this.retry = options.retry ?? defaultRetry;
    this.debug = options.debug ?? (() => undefined);
    const ua = options.userAgent ?? 'hoist';
    const mk = (host: string, mirror: boolean, key: string, scheme?: 'http') => {
      const insecure = isInsecureHost(host, options.insecureRegistries);
      return new Endpoint(
        host,
        scheme ?? (insecure ? 'probe' : 'https'),
        insecure ? agents.insecure : agents.secure,
        options.credentials,
        key,
        ua,
        mirror,
      );
    };
    const mirrors = registry === 'docker.io' ? (options.mirrors ?? []) : [];
    this.endpoints = [
      ...mirrors.map((m) => {
        const u = new URL(m.includes('://') ? m : `https://${m}`);
        return mk(u.host, true, u.host, u.protocol === 'http:' ? 'http' : undefined);
      }),
      mk(registry === 'docker.io' ? 'registry-1.docker.io' : registry, false, registry),
    ];
  }

  /** Sends a request: to mirrors first for pulls (falling back on any failure), else to the registry itself. */
  async send(req: RegistryRequest): Promise<RegistryResponse> {
    const candidates = req.pull ? this.endpoints : this.endpoints.filter((e) => !e.mirror);
    for (let i = 0; i < candidates.length - 1; i++) {
      try {
        return await this.sendTo(candidates[i], req);
      } catch (e) {
        this.debug(`mirror ${candidates[i].host} failed for ${req.what}: ${(e as Error).message}; trying the next`);
      }
    }
    return this.sendTo(candidates[candidates.length - 1], req);
  }

  private async sendTo(endpoint: Endpoint, req: RegistryRequest): Promise<RegistryResponse> {
    const attempts = req.retry === false ? 1 : this.retry.attempts;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(endpoint, req);
      } catch (e) {
        if (attempt + 1 >= attempts || !isTransient(e)) {
          if (isNetworkError(e)) throw new RegistryConnectionError(this.registry, `${req.method} ${req.what}`, e);
          throw e;
        }
        const wait = backoffMs(this.retry, attempt, (e as { retryAfter?: number }).retryAfter);
        this.debug(
          `${req.method} ${req.what}: ${(e as Error).message}; retry ${attempt + 1} in ${Math.round(wait)} ms`,
        );
        await sleep(wait);
      }
    }
  }

  /** One attempt: authentication round-trips and redirects included. */
  private async once(endpoint: Endpoint, req: RegistryRequest): Promise<RegistryResponse> {
    const base = await endpoint.baseURL();
    let url = new URL(req.path, base);
    let method = req.method;
    let sameHost = true;
    let authRetries = 0;
    for (let redirects = 0; ; ) {
      const headers: Record<string, string> = { 'user-agent': 'hoist', ...req.headers };
      if (sameHost) {
        const auth = await endpoint.auth.header(req.scopes);
        if (auth) headers.authorization = auth;
      }
      const body = method === 'GET' || method === 'HEAD' ? undefined : req.body?.();
      const res = await request(url, { method, headers, body, dispatcher: endpoint.dispatcher });
      this.debug(`${method} ${url.pathname} → ${res.statusCode}`);
      const warning = res.headers.warning;
      for (const w of [warning].flat())
        if (w && /^299 /.test(w)) this.warnings.add(w.replace(/^299\s+-\s+/, '').replace(/^"|"$/g, ''));
      if (res.statusCode === 401 && sameHost && authRetries < 2) {
        await res.body.dump();
        const www = res.headers['www-authenticate'];
        if (
          await endpoint.auth.challenged(Array.isArray(www) ? www.join(', ') : www, req.scopes, headers.authorization)
        ) {
          authRetries++;
          continue;
        }
        throw new RegistryError({ status: 401, registry: this.registry, what: `${req.method} ${req.what}` });
      }
      if (
        [301, 302, 303, 307, 308].includes(res.statusCode) &&
        res.headers.location &&
        !(req.accept ?? []).includes(res.statusCode)
      ) {
        await res.body.dump();
        if (++redirects > 10)
          throw new RegistryError({
            status: res.statusCode,
            registry: this.registry,
            what: req.what,
            hint: 'too many redirects',
          });
        const next = new URL(String(res.headers.location), url);
        // Authorization never crosses to another host (distribution-spec: MUST NOT forward across host boundaries).
        if (next.host !== url.host) sameHost = false;
        url = next;
        if (res.statusCode === 303) method = 'GET';
        continue;
      }
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      if (!ok && !(req.accept ?? []).includes(res.statusCode)) {
        const text =
          method === 'HEAD'
            ? ''
            : await readBounded(res.body, maxErrorBody).then(
                (r) => r.bytes.toString('utf8'),
                () => '',
              );
        if (method === 'HEAD') await res.body.dump();
        const err = new RegistryError({
          status: res.statusCode,
          errors: parseErrorBody(text),
          registry: this.registry,
          what: `${req.method} ${req.what}`,
        });
        const ra = retryAfterMs(header(res, 'retry-after'));
        if (ra !== undefined) Object.assign(err, { retryAfter: ra });
        throw err;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    }
  }
}

export function createAgents(connections = 16): { secure: Dispatcher; insecure: Dispatcher } {
  return {
    secure: httpDispatcher({ connections, keepAliveTimeout: 10_000 }),
    insecure: httpDispatcher({ connections, keepAliveTimeout: 10_000, insecure: true }),
  };
}
