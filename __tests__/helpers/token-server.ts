// A token server for the registry's `auth.token` mode (distribution docs spec/auth/token.md): RS256 JWTs whose
// header carries the signing certificate (x5c), and an OAuth2 POST endpoint for refresh tokens. Users and what
// they may do are the test's choice; every request is counted so tests can see tokens being reused.
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from './tools.js';

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** every token request, in order: method, scopes asked, who asked */
  requests: { method: string; scopes: string[]; account: string | undefined; grant?: string }[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startTokenServer(options: {
  users: Record<string, string>;
  /** which actions a user (undefined: anonymous) gets on a repository */
  grant?: (user: string | undefined, repository: string, actions: string[]) => string[];
  expiresIn?: number;
}): Promise<TokenServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-token-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=hoist-test-token',
  ]);
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw.toString('base64');
  const service = 'hoist-test-registry';
  const issuer = 'hoist-test-issuer';
  const grant = options.grant ?? ((user, _r, actions) => (user ? actions : actions.filter((a) => a === 'pull')));
  const refreshTokens = new Map<string, string>();
  const requests: TokenServer['requests'] = [];

  const issue = (user: string | undefined, scopes: string[]) => {
    const access = scopes.flatMap((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop()?.split(',') ?? [];
      const name = rest.join(':');
      if (type !== 'repository') return [];
      return [{ type, name, actions: grant(user, name, actions) }];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer] }));
    const claims = b64url(
      JSON.stringify({
        iss: issuer,
        sub: user ?? '',
        aud: service,
        exp: now + (options.expiresIn ?? 300),
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      }),
    );
    const signature = b64url(sign('sha256', Buffer.from(`${header}.${claims}`), key));
    return `${header}.${claims}.${signature}`;
  };

  const body = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let s = '';
      req.on('data', (d: Buffer) => (s += d.toString()));
      req.on('end', () => resolve(s));
    });

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const reply = (status: number, value: object) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (req.method === 'POST') {
      const form = new URLSearchParams(await body(req));
      const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const grantType = form.get('grant_type') ?? '';
      let user: string | undefined;
      if (grantType === 'refresh_token') user = refreshTokens.get(form.get('refresh_token') ?? '');
      else if (grantType === 'password' && options.users[form.get('username') ?? ''] === form.get('password'))
        user = form.get('username') ?? undefined;
      requests.push({ method: 'POST', scopes, account: user, grant: grantType });
      if (!user) return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad refresh token or password' }] });
      const refresh = randomUUID();
      refreshTokens.set(refresh, user);
      return reply(200, {
        access_token: issue(user, scopes),
        expires_in: options.expiresIn ?? 300,
        refresh_token: refresh,
      });
    }
    const scopes = url.searchParams.getAll('scope');
    let user: string | undefined;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      if (options.users[u] !== p.join(':')) {
        requests.push({ method: 'GET', scopes, account: u });
        return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication failed' }] });
      }
      user = u;
    }
    requests.push({ method: 'GET', scopes, account: user });
    const out: Record<string, unknown> = {
      token: issue(user, scopes),
      expires_in: options.expiresIn ?? 300,
      issued_at: new Date().toISOString(),
    };
    if (user && url.searchParams.get('offline_token') === 'true') {
      const refresh = randomUUID();
      refreshTokens.set(refresh, user);
      out.refresh_token = refresh;
    }
    reply(200, out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    stop: () => new Promise((r) => server.close(() => r())),
  };
}
