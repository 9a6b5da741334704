// The Actions cache service, spoken by hoist itself: entries are bytes as they are (a layer blob, an index's JSON, a
// packed cache mount), never a tar + zstd archive of a directory (what @actions/cache makes of every entry). A layer
// is compressed and content-addressed already; BuildKit's own gha backend stores raw blobs too. And an archive
// restored with @actions/cache's `tar -xf … -P` honours absolute and `../` member names, links and devices: a
// tampered entry (anyone with a job's cache token can write one) could write anywhere.
//
// The two protocols, as ../shared/research/actions-cache.md §1 has them:
//   v2 (github.com: ACTIONS_CACHE_SERVICE_V2 and ACTIONS_RESULTS_URL): Twirp `CreateCacheEntry{key,version}` → a
//      signed URL that speaks Azure Blob's Put Blob (one request up to 64 MiB here) or Put Block + Put Block List
//      (32 MiB blocks, 4 at once); then `FinalizeCacheEntryUpload{key,version,size_bytes}`. A lookup is
//      `GetCacheEntryDownloadURL{key,restore_keys,version}`; the download a plain GET of the signed URL.
//   v1 (GHES, ACTIONS_CACHE_URL): `POST _apis/artifactcache/caches` {key,version,cacheSize} → cacheId, `PATCH
//      caches/{id}` with Content-Range chunks, `POST caches/{id}` {size}; lookup `GET cache?keys=&version=`.
// An entry's version is ours alone (the service only matches it): entries of @actions/cache are never ours.
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

/** What the service answered for a key: the entry's own key (a prefix may match a longer one) and where its bytes are. */
export interface EntryHit {
  key: string;
  url: string;
}

/** The version of every entry hoist writes (the service matches it; a new encoding of entries gets a new one). */
export const entryVersion = createHash('sha256').update('hoist raw entries 2').digest('hex');

/** As @actions/cache picks the service: the legacy one on GHES or without ACTIONS_CACHE_SERVICE_V2. */
function serviceVersion(): 'v1' | 'v2' {
  const host = new URL(process.env.GITHUB_SERVER_URL || 'https://github.com').hostname.trimEnd().toUpperCase();
  const ghes = host !== 'GITHUB.COM' && !host.endsWith('.GHE.COM') && !host.endsWith('.LOCALHOST');
  return !ghes && process.env.ACTIONS_CACHE_SERVICE_V2 ? 'v2' : 'v1';
}

/** A service's answer is small; one that is not is no answer. */
const maxAnswer = 1 << 20;
/** bytes sent in one request: Put Blob up to this, else blocks (v2) or chunks (v1) of `chunk` */
const singleShot = 64 << 20;
const chunk = 32 << 20;
const parallelChunks = 4;

async function dispatcher() {
  const { httpDispatcher } = await import('../registry/proxy.js');
  return httpDispatcher();
}

type Body = string | (() => Readable);

/**
 * One request, tried again on a 5xx or a dropped connection (three times in all, a second apart, then two): a body
 * is made afresh for each attempt.
 */
async function call(
  url: string,
  init: { method: 'GET' | 'POST' | 'PUT' | 'PATCH'; headers: Record<string, string>; body?: Body },
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const { request } = await import('../registry/undici.js');
  const agent = await dispatcher();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const body = typeof init.body === 'function' ? init.body() : init.body;
        const r = await request(url, {
          method: init.method,
          headers: init.headers,
          ...(body !== undefined ? { body } : {}),
          dispatcher: agent,
          headersTimeout: 60_000,
          bodyTimeout: 60_000,
        });
        let text = '';
        for await (const c of r.body) {
          text += (c as Buffer).toString();
          if (text.length > maxAnswer) {
            r.body.destroy();
            throw new Error(`the cache service's answer is over ${maxAnswer} bytes`);
          }
        }
        if (r.statusCode >= 500 && attempt < 3) {
          await new Promise((res) => setTimeout(res, 1000 * attempt));
          continue;
        }
        return { status: r.statusCode, body: text, headers: r.headers };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (
          attempt >= 3 ||
          !/ECONNRESET|UND_ERR_SOCKET|EPIPE|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT|UND_ERR_REQ_CONTENT_LENGTH_MISMATCH/.test(
            code,
          )
        )
          throw e;
        await new Promise((res) => setTimeout(res, 1000 * attempt));
      }
    }
  } finally {
    await agent.close().catch(() => undefined);
  }
}

function parseAnswer(body: string, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw new Error(`the cache service's answer to ${what} is not a JSON object`);
}

/** Twirp's (or v1's) error text, or the status (a service's error body is never quoted whole). */
function failure(status: number, body: string, what: string): Error {
  let msg = '';
  try {
    const v = JSON.parse(body) as { msg?: unknown; message?: unknown };
    msg = String(v.msg ?? v.message ?? '').slice(0, 300);
  } catch {}
  return new Error(`the cache service answered ${what} with ${status}${msg ? `: ${msg}` : ''}`);
}

/** The service refused to create an entry (a 429, a token that may only read, the quota): no more uploads. */
export class GhaRefusedError extends Error {
  override readonly name = 'GhaRefusedError';
}

const token = () => process.env.ACTIONS_RUNTIME_TOKEN ?? '';
const twirp = (method: string) =>
  new URL(`/twirp/github.actions.results.api.v1.CacheService/${method}`, process.env.ACTIONS_RESULTS_URL ?? '').href;
const v1Base = () => `${process.env.ACTIONS_CACHE_URL || process.env.ACTIONS_RESULTS_URL || ''}_apis/artifactcache/`;
const v1Headers = () => ({ accept: 'application/json;api-version=6.0-preview.1', authorization: `Bearer ${token()}` });

/**
 * Looks up the entry `key` (or, with `prefix`, the newest whose key starts with it); undefined when there is none.
 * The service also looks in the default branch's entries.
 */
export async function findEntry(key: string, prefix = false): Promise<EntryHit | undefined> {
  // As @actions/cache 6.3 honours ACTIONS_CACHE_MODE: none and write-only read nothing (no request at all).
  const mode = (process.env.ACTIONS_CACHE_MODE ?? '').trim().toLowerCase();
  if (mode === 'none' || mode === 'write-only') return undefined;
  if (serviceVersion() === 'v2') {
    const r = await call(twirp('GetCacheEntryDownloadURL'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` },
      body: JSON.stringify({ key, restore_keys: prefix ? [key] : [], version: entryVersion }),
    });
    if (r.status !== 200) throw failure(r.status, r.body, 'a lookup');
    const a = parseAnswer(r.body, 'a lookup');
    if (!a.ok) return undefined;
    const found = String(a.matched_key ?? a.matchedKey ?? '');
    const where = String(a.signed_download_url ?? a.signedDownloadUrl ?? '');
    if (!found || !where) throw new Error('the cache service answered a lookup without a key or an address');
    return { key: found, url: where };
  }
  const r = await call(`${v1Base()}cache?keys=${encodeURIComponent(key)}&version=${entryVersion}`, {
    method: 'GET',
    headers: v1Headers(),
  });
  if (r.status === 204) return undefined;
  if (r.status !== 200) throw failure(r.status, r.body, 'a lookup');
  const a = parseAnswer(r.body, 'a lookup');
  const found = String(a.cacheKey ?? '');
  const where = String(a.archiveLocation ?? '');
  if (!found || !where) throw new Error('the cache service answered a lookup without a key or an address');
  return { key: found, url: where };
}

/** Why an entry's bytes were refused: said once as a warning, and the entry counts as missing. */
export class EntryBytesError extends Error {
  override readonly name = 'EntryBytesError';
}

/** An entry's bytes as they arrive, failing beyond `maxBytes` or short of the length the server announced. */
export async function downloadEntry(hit: EntryHit, maxBytes: number): Promise<Readable> {
  const { request } = await import('../registry/undici.js');
  const agent = await dispatcher();
  let r: Awaited<ReturnType<typeof request>>;
  try {
    r = await request(hit.url, { method: 'GET', dispatcher: agent, headersTimeout: 60_000, bodyTimeout: 120_000 });
  } catch (e) {
    await agent.close().catch(() => undefined);
    throw e;
  }
  const body = r.body;
  if (r.statusCode !== 200) {
    body.destroy();
    await agent.close().catch(() => undefined);
    throw new Error(`the entry's download answered ${r.statusCode}`);
  }
  const length = Number(r.headers['content-length'] ?? -1);
  if (length > maxBytes) {
    body.destroy();
    await agent.close().catch(() => undefined);
    throw new EntryBytesError(`entry ${hit.key} is ${length} bytes, more than the ${maxBytes} expected of it`);
  }
  return Readable.from(
    (async function* () {
      let got = 0;
      try {
        for await (const c of body) {
          got += (c as Buffer).length;
          if (got > maxBytes)
            throw new EntryBytesError(`entry ${hit.key} is more than the ${maxBytes} bytes expected of it`);
          yield c as Buffer;
        }
        if (length >= 0 && got !== length)
          throw new Error(`the entry's download ended after ${got} of ${length} bytes`);
      } finally {
        body.destroy();
        await agent.close().catch(() => undefined);
      }
    })(),
  );
}

/**
 * Creates the entry `key` of `size` bytes, read from `open(start, end)` (inclusive; a range may be asked for again
 * on a retry). Answers false when the entry exists already (another job wrote it meanwhile); throws GhaRefusedError
 * when the service refuses creations.
 */
export async function createEntry(
  key: string,
  size: number,
  open: (start: number, end: number) => Readable,
): Promise<boolean> {
  return serviceVersion() === 'v2' ? createV2(key, size, open) : createV1(key, size, open);
}

function refusal(status: number, body: string): Error | 'exists' {
  const e = failure(status, body, 'a new entry');
  if (status === 409 || /already.exists/i.test(e.message)) return 'exists';
  if (status === 429 || status === 403 || /write denied|rate|quota|exhausted/i.test(e.message))
    return new GhaRefusedError(e.message.replace(/^the cache service answered a new entry with /, ''));
  return e;
}

async function createV2(key: string, size: number, open: (start: number, end: number) => Readable): Promise<boolean> {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${token()}` };
  const r = await call(twirp('CreateCacheEntry'), {
    method: 'POST',
    headers,
    body: JSON.stringify({ key, version: entryVersion }),
  });
  const a = r.status === 200 ? parseAnswer(r.body, 'a new entry') : undefined;
  if (!a?.ok) {
    const why = refusal(
      r.status === 200 ? 403 : r.status,
      r.status === 200 ? JSON.stringify({ msg: String(a?.message ?? 'refused') }) : r.body,
    );
    if (why === 'exists') return false;
    throw why;
  }
  const url = String(a.signed_upload_url ?? a.signedUploadUrl ?? '');
  if (!url) throw new Error('the cache service answered a new entry without an address');
  const azure = { 'x-ms-version': '2020-04-08' };
  const sep = url.includes('?') ? '&' : '?';
  if (size <= singleShot) {
    const put = await call(url, {
      method: 'PUT',
      headers: { ...azure, 'x-ms-blob-type': 'BlockBlob', 'content-length': String(size) },
      body: () => (size === 0 ? Readable.from([]) : open(0, size - 1)),
    });
    if (put.status !== 201) throw failure(put.status, put.body, "an entry's bytes");
  } else {
    // Block ids all of one length (Azure's rule), base64 of a fixed-width name.
    const ids: string[] = [];
    const parts = ranges(size);
    await inParallel(parts, async ([start, end], i) => {
      const id = Buffer.from(`hoist-block-${String(i).padStart(8, '0')}`).toString('base64');
      ids[i] = id;
      const put = await call(`${url}${sep}comp=block&blockid=${encodeURIComponent(id)}`, {
        method: 'PUT',
        headers: { ...azure, 'content-length': String(end - start + 1) },
        body: () => open(start, end),
      });
      if (put.status !== 201) throw failure(put.status, put.body, "an entry's block");
    });
    const list = `<?xml version="1.0" encoding="utf-8"?><BlockList>${ids.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;
    const put = await call(`${url}${sep}comp=blocklist`, {
      method: 'PUT',
      headers: { ...azure, 'content-type': 'application/xml' },
      body: list,
    });
    if (put.status !== 201) throw failure(put.status, put.body, "an entry's block list");
  }
  const done = await call(twirp('FinalizeCacheEntryUpload'), {
    method: 'POST',
    headers,
    body: JSON.stringify({ key, version: entryVersion, size_bytes: String(size) }),
  });
  if (done.status !== 200 || !parseAnswer(done.body, 'a finished entry').ok)
    throw failure(done.status, done.body, 'a finished entry');
  return true;
}

async function createV1(key: string, size: number, open: (start: number, end: number) => Readable): Promise<boolean> {
  const json = { ...v1Headers(), 'content-type': 'application/json' };
  const r = await call(`${v1Base()}caches`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ key, version: entryVersion, cacheSize: size }),
  });
  if (r.status !== 201 && r.status !== 200) {
    const why = refusal(r.status, r.body);
    if (why === 'exists') return false;
    throw why;
  }
  const id = Number(parseAnswer(r.body, 'a new entry').cacheId);
  if (!Number.isSafeInteger(id)) throw new Error('the cache service answered a new entry without its id');
  await inParallel(ranges(size), async ([start, end]) => {
    const put = await call(`${v1Base()}caches/${id}`, {
      method: 'PATCH',
      headers: {
        ...v1Headers(),
        'content-type': 'application/octet-stream',
        'content-range': `bytes ${start}-${end}/*`,
        'content-length': String(end - start + 1),
      },
      body: () => open(start, end),
    });
    if (put.status !== 204 && put.status !== 200) throw failure(put.status, put.body, "an entry's bytes");
  });
  const done = await call(`${v1Base()}caches/${id}`, { method: 'POST', headers: json, body: JSON.stringify({ size }) });
  if (done.status !== 204 && done.status !== 200) throw failure(done.status, done.body, 'a finished entry');
  return true;
}

/** [start, end] (inclusive) of each chunk of `size` bytes. */
function ranges(size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = 0; start < size; start += chunk) out.push([start, Math.min(size, start + chunk) - 1]);
  return out;
}

async function inParallel<T>(items: readonly T[], f: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const worker = async () => {
    while (next < items.length && failures.length === 0) {
      const i = next++;
      await f(items[i], i).catch((e) => void failures.push(e));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelChunks, items.length) }, worker));
  if (failures.length) throw failures[0];
}

/** A name for a temp file of this process (a pack being read). */
export const tempName = () => `hoist-gha-${process.pid}-${randomUUID()}`;
