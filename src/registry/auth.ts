// Registry authentication for one endpoint: anonymous, Basic (htpasswd registries, ECR) and the Docker token
// flow (distribution docs spec/auth/token.md, oauth.md). A token is reused until shortly before it expires and
// covers the union of the scopes asked so far, so a push that mounts from another repository asks once for
// `repository:dst:pull,push repository:src:pull`. Tokens and passwords live only in this object's fields.
import { type Dispatcher, request } from './undici.js';
import { type Challenge, parseChallenges } from './challenge.js';
import type { Credential, CredentialSource } from './credentials.js';
import { maxErrorBody, readBounded } from './body.js';
import { RegistryError, parseErrorBody } from './errors.js';

interface Token {
  value: string;
  scopes: Set<string>;
  expiresAt: number;
}

/** `repository:a/b:pull,push` → ['repository:a/b:pull', 'repository:a/b:push'] (resource names may hold a ':'). */
export function splitScope(scope: string): string[] {
  const last = scope.lastIndexOf(':');
  if (last < 0) return [scope];
  const resource = scope.slice(0, last);
  return scope
    .slice(last + 1)
    .split(',')
    .filter(Boolean)
    .map((a) => `${resource}:${a}`);
}

/** Merges single-action scopes back into `type:name:a,b` entries, one per resource, sorted. */
export function joinScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const s of scopes) {
    for (const one of splitScope(s)) {
      const last = one.lastIndexOf(':');
      const r = one.slice(0, last);
      const set = byResource.get(r) ?? new Set();
      set.add(one.slice(last + 1));
      byResource.set(r, set);
    }
  }
  return [...byResource].sort(([a], [b]) => (a < b ? -1 : 1)).map(([r, a]) => `${r}:${[...a].sort().join(',')}`);
}

const renewBeforeMs = 15_000;
const maxResources = 8;

export class Authenticator {
  private scheme: 'none' | 'basic' | 'bearer' | undefined;
  private realm = '';
  private service = '';
  private token: Token | undefined;
  private credential: Credential | undefined;
  private credentialLoaded = false;
  private refreshToken: string | undefined;

  constructor(
    /** the registry name credentials are looked up under */
    private readonly registry: string,
    private readonly credentials: CredentialSource | undefined,
    private readonly dispatcher: Dispatcher,
    private readonly userAgent: string,
  ) {}

  private async cred(): Promise<Credential | undefined> {
    if (!this.credentialLoaded) {
      this.credential = await this.credentials?.get(this.registry);
      this.refreshToken = this.credential?.identityToken;
      this.credentialLoaded = true;
    }
    return this.credential;
  }

  /** The Authorization header for a request needing `scopes`, or undefined before the registry asked for any. */
  async header(scopes: readonly string[]): Promise<string | undefined> {
    if (this.scheme === 'basic') {
      const c = await this.cred();
      return c?.username !== undefined ? basic(c.username, c.password ?? '') : undefined;
    }
    if (this.scheme !== 'bearer') return undefined;
    const want = scopes.flatMap(splitScope);
    const valid = () => {
      const t = this.token;
      return t !== undefined && Date.now() < t.expiresAt - renewBeforeMs && want.every((s) => t.scopes.has(s));
    };
    if (!valid()) await this.serially(async () => (valid() ? undefined : this.fetchToken(want)));
    return this.token ? `Bearer ${this.token.value}` : undefined;
  }

  private queue: Promise<unknown> = Promise.resolve();

  /** Token requests run one at a time, so parallel blob uploads share one token instead of each fetching one. */
  private serially<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Learns from a 401 to a request that carried `sent` as its Authorization. Returns true when a retry can
   * succeed: the scheme is new to us, another request has meanwhile got a better header, or the token lacked
   * scopes the challenge names.
   */
  async challenged(
    wwwAuthenticate: string | undefined,
    scopes: readonly string[],
    sent: string | undefined,
  ): Promise<boolean> {
    const challenges = parseChallenges(wwwAuthenticate ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) return this.bearerChallenge(bearer, scopes, sent);
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = 'basic';
      const c = await this.cred();
      return c?.username !== undefined && sent !== basic(c.username, c.password ?? '');
    }
    return false;
  }

  private async bearerChallenge(c: Challenge, scopes: readonly string[], sent: string | undefined): Promise<boolean> {
    this.scheme = 'bearer';
    this.realm = c.params.realm ?? '';
    this.service = c.params.service ?? '';
    if (!this.realm) return false;
    const asked = (c.params.scope ?? '').split(' ').filter(Boolean).flatMap(splitScope);
    const want = [...new Set([...scopes.flatMap(splitScope), ...asked])];
    const stale = sent?.slice(7);
    await this.serially(async () => {
      const t = this.token;
      // Another request already replaced the token that failed: try with that one first.
      if (t && t.value !== stale && want.every((s) => t.scopes.has(s))) return;
      await this.fetchToken(want);
    });
    // The same token again for the same scopes would fail the same way.
    return this.token !== undefined && this.token.value !== stale;
  }

  private async fetchToken(want: string[]): Promise<void> {
    const c = await this.cred();
    if (c?.registryToken) {
      this.token = { value: c.registryToken, scopes: new Set(want), expiresAt: Number.MAX_SAFE_INTEGER };
      return;
    }
    // Ask for everything this endpoint needed so far, so one token serves a whole push; bounded for long copies.
    let scopes = new Set([...(this.token?.scopes ?? []), ...want]);
    if (new Set([...scopes].map((s) => s.slice(0, s.lastIndexOf(':')))).size > maxResources) scopes = new Set(want);
    const scopeList = joinScopes(scopes);
    const realm = new URL(this.realm);
    const refresh = this.refreshToken;
    let res: Dispatcher.ResponseData;
    if (refresh) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: refresh,
        service: this.service,
        client_id: 'hoist',
        scope: scopeList.join(' '),
      });
      res = await request(realm, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.userAgent },
        body: form.toString(),
      });
    } else {
      if (this.service) realm.searchParams.set('service', this.service);
      for (const s of scopeList) realm.searchParams.append('scope', s);
      const headers: Record<string, string> = { 'user-agent': this.userAgent };
      if (c?.username !== undefined) {
        headers.authorization = basic(c.username, c.password ?? '');
        realm.searchParams.set('account', c.username);
      }
      res = await request(realm, { method: 'GET', dispatcher: this.dispatcher, headers });
    }
    const { bytes, cut } = await readBounded(res.body, res.statusCode === 200 ? maxTokenResponse : maxErrorBody);
    const text = bytes.toString('utf8');
    if (res.statusCode === 200 && cut)
      throw new RegistryError({
        status: 200,
        registry: this.registry,
        what: `token response from ${realm.origin}`,
        hint: `it is larger than ${maxTokenResponse} bytes, which no token is`,
      });
    if (res.statusCode !== 200) {
      const hint =
        res.statusCode === 401 || res.statusCode === 403
          ? c
            ? `the token service rejected the credentials for ${this.registry}: check the username and password or token`
            : `the token service wants credentials: run "hoist login ${this.registry}"`
          : undefined;
      throw new RegistryError({
        status: res.statusCode,
        errors: parseErrorBody(text),
        registry: this.registry,
        what: `token request to ${realm.origin}${realm.pathname}`,
        hint,
      });
    }
    let body: { token?: string; access_token?: string; expires_in?: number; refresh_token?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RegistryError({
        status: 200,
        registry: this.registry,
        what: `token response from ${realm.origin}`,
        hint: 'the token service answered with something that is not JSON',
      });
    }
    const value = body.token || body.access_token;
    if (!value)
      throw new RegistryError({
        status: 200,
        registry: this.registry,
        what: `token response from ${realm.origin}`,
        hint: 'it holds no token',
      });
    const lifetime = Math.max(60, Number(body.expires_in) || 60);
    if (body.refresh_token) this.refreshToken = body.refresh_token;
    this.token = { value, scopes: new Set(scopeList.flatMap(splitScope)), expiresAt: Date.now() + lifetime * 1000 };
  }
}

/** a token response is a few KiB (a JWT, its lifetime); Docker Hub's are under 8 KiB */
const maxTokenResponse = 1024 * 1024;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
