import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../src/registry/client.js';
import { parseReference } from '../../src/image/reference.js';
import { backoffMs, isInsecureHost, isTransient, retryAfterMs } from '../../src/registry/transport.js';
import { RegistryError } from '../../src/registry/errors.js';
import { formatBytes, parseBytes, relativeTime } from '../../src/cli/format.js';

test('plain HTTP only for loopback and hosts named insecure', () => {
  expect(isInsecureHost('localhost:5000')).toBe(true);
  expect(isInsecureHost('127.0.0.1')).toBe(true);
  expect(isInsecureHost('127.8.9.10:443')).toBe(true);
  expect(isInsecureHost('[::1]:5000')).toBe(true);
  expect(isInsecureHost('ghcr.io')).toBe(false);
  expect(isInsecureHost('128.0.0.1')).toBe(false);
  expect(isInsecureHost('localhost.evil.com')).toBe(false);
  expect(isInsecureHost('reg.internal:5000', ['reg.internal:5000'])).toBe(true);
  expect(isInsecureHost('reg.internal:5000', ['reg.internal'])).toBe(true);
});

test('a loopback registry is probed over TLS once, however many requests start together; then plain HTTP', async () => {
  let tlsAttempts = 0;
  let heads = 0;
  const server = createServer((_req, res) => {
    heads++;
    res
      .writeHead(200, {
        'docker-content-digest': `sha256:${'a'.repeat(64)}`,
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': '2',
      })
      .end();
  });
  server.on('clientError', (_e, socket) => {
    tlsAttempts++; // a TLS ClientHello is no HTTP request
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new RegistryClient({ retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
  try {
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const resolved = await Promise.all(
      ['a:1', 'b:2', 'c:3'].map((r) => client.resolve(parseReference(`${host}/${r}`))),
    );
    expect(resolved.map((r) => r.digest)).toEqual(Array(3).fill(`sha256:${'a'.repeat(64)}`));
    expect(tlsAttempts).toBe(1);
    expect(heads).toBe(3);
  } finally {
    await client.close();
    server.close();
  }
});

test('Retry-After in seconds or as a date; backoff grows, jitters and is capped', () => {
  expect(retryAfterMs('3')).toBe(3000);
  expect(retryAfterMs(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
  expect(retryAfterMs('soon')).toBeUndefined();
  const policy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
  for (let i = 0; i < 50; i++) {
    expect(backoffMs(policy, 0)).toBeGreaterThanOrEqual(50);
    expect(backoffMs(policy, 0)).toBeLessThanOrEqual(100);
    expect(backoffMs(policy, 10)).toBeLessThanOrEqual(1000);
  }
  expect(backoffMs(policy, 0, 120_000)).toBe(60_000);
});

test('what is worth retrying', () => {
  const e = (status: number) => new RegistryError({ status, registry: 'r', what: 'x' });
  expect(isTransient(e(503))).toBe(true);
  expect(isTransient(e(429))).toBe(true);
  expect(isTransient(e(500))).toBe(true);
  expect(isTransient(e(501))).toBe(false);
  expect(isTransient(e(404))).toBe(false);
  expect(isTransient(e(401))).toBe(false);
  expect(isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
  expect(isTransient(new Error('plain'))).toBe(false);
});

test('sizes and times print as the docker CLI prints them', () => {
  expect(formatBytes(0)).toBe('0B');
  expect(formatBytes(7_800_000)).toBe('7.80MB');
  expect(formatBytes(123_456_789)).toBe('123MB');
  expect(parseBytes('10GB')).toBe(10 * 1000 ** 3);
  expect(parseBytes('512MiB')).toBe(512 * 1024 ** 2);
  expect(parseBytes('1g')).toBe(1024 ** 3);
  expect(parseBytes('1000')).toBe(1000);
  expect(() => parseBytes('ten')).toThrow(RangeError);
  const now = Date.parse('2026-11-23T12:00:00Z');
  expect(relativeTime('2026-11-23T10:00:00Z', now)).toBe('2 hours ago');
  expect(relativeTime('2026-11-20T12:00:00Z', now)).toBe('3 days ago');
});
