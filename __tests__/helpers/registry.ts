// Debian's docker-registry (distribution 2.8) on 127.0.0.1, in the three modes users meet: anonymous, htpasswd
// (Basic) and token auth (with the test token server). Each registry has its own storage and stops with the test.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startTokenServer, type TokenServer } from './token-server.js';

export interface TestRegistry {
  /** host:port, as it appears in references */
  host: string;
  url: string;
  mode: 'anonymous' | 'htpasswd' | 'token';
  users: Record<string, string>;
  token?: TokenServer;
  stop(): Promise<void>;
  /** where it keeps what is pushed (docker/registry/v2/…) */
  storage: string;
  /** killed outright (SIGKILL), its storage kept */
  crash(): Promise<void>;
  /** served again at the same address from the same storage */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitUntilUp(url: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${log()}`);
    try {
      const r = await fetch(`${url}/v2/`);
      if (r.status === 200 || r.status === 401) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not come up at ${url}: ${log()}`);
}

export async function startRegistry(
  mode: TestRegistry['mode'] = 'anonymous',
  options: {
    users?: Record<string, string>;
    tokenGrant?: Parameters<typeof startTokenServer>[0]['grant'];
    tokenExpiresIn?: number;
    /** the address it listens on (127.0.0.1; 0.0.0.0 to be reached by another address too) */
    listen?: string;
  } = {},
): Promise<TestRegistry> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-registry-'));
  const port = await freePort();
  const users = options.users ?? (mode === 'anonymous' ? {} : { alice: 'wonder-land-42' });
  let auth = '';
  let token: TokenServer | undefined;
  if (mode === 'htpasswd') {
    const file = path.join(dir, 'htpasswd');
    writeFileSync(
      file,
      Object.entries(users)
        .map(([u, p]) => `${u}:${bcrypt.hashSync(p, 4)}\n`)
        .join(''),
    );
    auth = `auth:\n  htpasswd:\n    realm: hoist-test\n    path: ${file}\n`;
  } else if (mode === 'token') {
    token = await startTokenServer({ users, grant: options.tokenGrant, expiresIn: options.tokenExpiresIn });
    auth = `auth:\n  token:\n    realm: ${token.realm}\n    service: ${token.service}\n    issuer: ${token.issuer}\n    rootcertbundle: ${token.certFile}\n`;
  }
  const config = path.join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: ${options.listen ?? '127.0.0.1'}:${port}\n${auth}`,
  );
  let stderr = '';
  const url = `http://127.0.0.1:${port}`;
  const serve = async (): Promise<ChildProcess> => {
    const c = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    try {
      await waitUntilUp(url, c, () => stderr);
    } catch (e) {
      c.kill('SIGKILL');
      await token?.stop();
      throw e;
    }
    return c;
  };
  let child = await serve();
  return {
    async crash() {
      child.kill('SIGKILL');
      await new Promise((r) =>
        child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r),
      );
    },
    async restart() {
      child = await serve();
    },
    host: `127.0.0.1:${port}`,
    storage: path.join(dir, 'data'),
    url,
    mode,
    users,
    token,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) =>
        child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r),
      );
      await token?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
