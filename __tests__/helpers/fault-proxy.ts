// A proxy in front of the real registry that injects the faults a real registry cannot be made to produce on
// demand: 503s, 429s with Retry-After, a connection dropped in the middle of an upload body or of a download, a
// corrupted blob, a download that trickles (to interrupt it midway), a manifest refused for a blob unknown.
// Everything else is forwarded untouched (the Host header too, so the registry's Locations point at the proxy).
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | '503'
  | '429'
  | '413'
  | 'blob-unknown'
  | 'reset-mid-body'
  | 'drop-mid-body'
  | 'corrupt-body'
  | 'redirect'
  | 'slow-body';

export interface FaultRule {
  match: (req: IncomingMessage) => boolean;
  fault: Fault;
  /** how many matching requests get the fault (then it is spent) */
  times: number;
}

export interface FaultProxy {
  host: string;
  rules: FaultRule[];
  /** every request seen: method, path, and the fault injected if any */
  /** every request: its method, path, Range header (when it asked for part of a blob) and the fault it met */
  log: { method: string; path: string; range?: string; fault?: Fault }[];
  stop(): Promise<void>;
}

/** For 'redirect': where a blob GET is sent (another host), given the request path. */
export type RedirectTarget = (path: string) => string;

export async function startFaultProxy(upstream: string, redirectTo?: RedirectTarget): Promise<FaultProxy> {
  const [uhost, uport] = upstream.split(':');
  const rules: FaultRule[] = [];
  const log: FaultProxy['log'] = [];
  const forward = (req: IncomingMessage, res: ServerResponse, corrupt: boolean, slow = false, drop = false) => {
    const up = request(
      { host: uhost, port: Number(uport), method: req.method, path: req.url, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        let flipped = !corrupt;
        let sent = 0;
        ur.on('data', (c: Buffer) => {
          // Half the body, then the connection is gone.
          if (drop && (sent += c.length) > Number(ur.headers['content-length'] ?? 0) / 2) {
            ur.destroy();
            res.socket?.destroy();
            return;
          }
          if (!flipped && c.length > 0) {
            c = Buffer.from(c);
            c[0] ^= 0xff;
            flipped = true;
          }
          res.write(c);
          // About 1 MB/s: the upstream waits a little after every chunk.
          if (slow) {
            ur.pause();
            setTimeout(() => ur.resume(), Math.ceil(c.length / 1000));
          }
        });
        ur.on('end', () => res.end());
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  };
  const server: Server = createServer((req, res) => {
    const rule = rules.find((r) => r.times > 0 && r.match(req));
    log.push({
      method: req.method ?? '',
      path: req.url ?? '',
      ...(req.headers.range ? { range: req.headers.range } : {}),
      fault: rule?.fault,
    });
    if (!rule) return forward(req, res, false);
    rule.times--;
    switch (rule.fault) {
      case '503':
        req.resume();
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAVAILABLE","message":"injected 503"}]}');
        return;
      case '429':
        req.resume();
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"injected 429"}]}');
        return;
      case '413':
        req.resume();
        res.writeHead(413, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"SIZE_INVALID","message":"injected: request entity too large"}]}');
        return;
      case 'blob-unknown':
        // what distribution answers a manifest put that names a blob whose link it found empty (another push of the
        // same blob rewriting it): the race is the registry's, and cannot be had on demand
        req.resume();
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          `{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:${'0'.repeat(64)}"}]}`,
        );
        return;
      case 'redirect':
        req.resume();
        res.writeHead(307, { location: redirectTo ? redirectTo(req.url ?? '/') : '/' });
        res.end();
        return;
      case 'reset-mid-body':
        req.once('data', () => req.socket.destroy());
        req.once('end', () => req.socket.destroy());
        return;
      case 'corrupt-body':
        forward(req, res, true);
        return;
      case 'slow-body':
        forward(req, res, false, true);
        return;
      case 'drop-mid-body':
        forward(req, res, false, false, true);
        return;
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    rules,
    log,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
