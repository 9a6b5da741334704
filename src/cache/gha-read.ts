// The read side of the Actions cache, spoken by hoist itself: @actions/cache restores an entry with
// `tar -xf … -P`, which honours absolute and `../` member names, hard links out of the archive, device nodes and
// setuid bits, so a tampered entry (anyone with a job's cache token can write one, and every branch reads the
// default branch's) would write anywhere as root. Here the entry is looked up with the service's own calls
// (../shared/research/actions-cache.md §1.2, §1.5, §1.7: the same key, restore keys and version as the library
// computes, so entries it saved are found), its archive streamed, decompressed and read by hoist's tar reader, and
// each member taken only when it maps into the entry's own directory; what is in it is the caller's to check.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { decompressed } from '../layer/compression.js';
import { cleanEntryName } from '../layer/rooted.js';
import { readTar, type TarHeader } from '../layer/tar.js';

/** What the service answered for a key: the entry's own key (a prefix may match a longer one) and where its archive is. */
export interface EntryHit {
  key: string;
  url: string;
}

let compression: string | undefined;
/** As @actions/cache decides it: zstd when the zstd program answers, else gzip (part of every entry's version). */
function compressionMethod(): string {
  compression ??= (spawnSync('zstd', ['--quiet', '--version'], { encoding: 'utf8' }).stdout ?? '').trim() ? 'zstd-without-long' : 'gzip';
  return compression;
}

/** An entry's version, as @actions/cache computes it from the paths it archived (one directory of ours here). */
export function entryVersion(dir: string): string {
  const parts = [dir, compressionMethod()];
  if (process.platform === 'win32') parts.push('windows-only');
  parts.push('1.0');
  return createHash('sha256').update(parts.join('|')).digest('hex');
}

/** As @actions/cache picks the service: the legacy one on GHES or without ACTIONS_CACHE_SERVICE_V2. */
function serviceVersion(): 'v1' | 'v2' {
  const host = new URL(process.env.GITHUB_SERVER_URL || 'https://github.com').hostname.trimEnd().toUpperCase();
  const ghes = host !== 'GITHUB.COM' && !host.endsWith('.GHE.COM') && !host.endsWith('.LOCALHOST');
  return !ghes && process.env.ACTIONS_CACHE_SERVICE_V2 ? 'v2' : 'v1';
}

/** A service's answer is small; one that is not is no answer. */
const maxAnswer = 1 << 20;

async function dispatcher() {
  const { httpDispatcher } = await import('../registry/proxy.js');
  return httpDispatcher();
}

/** One call to the service, tried again on a 5xx or a dropped connection (as the library does, with less waiting). */
async function call(url: string, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  const { request } = await import('../registry/undici.js');
  const agent = await dispatcher();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await request(url, { ...init, dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000 });
        let body = '';
        for await (const c of r.body) {
          body += (c as Buffer).toString();
          if (body.length > maxAnswer) {
            r.body.destroy();
            throw new Error(`the cache service's answer is over ${maxAnswer} bytes`);
          }
        }
        if (r.statusCode >= 500 && attempt < 3) {
          await new Promise((res) => setTimeout(res, 1000 * attempt));
          continue;
        }
        return { status: r.statusCode, body };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (attempt >= 3 || !/ECONNRESET|UND_ERR_SOCKET|EPIPE|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT/.test(code)) throw e;
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

/** Twirp's error text, or the status (a service's error body is never quoted whole). */
function failure(status: number, body: string, what: string): Error {
  let msg = '';
  try {
    const v = JSON.parse(body) as { msg?: unknown; message?: unknown };
    msg = String(v.msg ?? v.message ?? '').slice(0, 300);
  } catch {}
  return new Error(`the cache service answered ${what} with ${status}${msg ? `: ${msg}` : ''}`);
}

/**
 * Looks up the entry `key` (or, with `prefix`, the newest whose key starts with it) saved from `dir`; undefined
 * when there is none. The service also looks in the default branch's entries.
 */
export async function findEntry(dir: string, key: string, prefix = false): Promise<EntryHit | undefined> {
  // As @actions/cache 6.3 honours ACTIONS_CACHE_MODE: none and write-only read nothing (no request at all).
  const mode = (process.env.ACTIONS_CACHE_MODE ?? '').trim().toLowerCase();
  if (mode === 'none' || mode === 'write-only') return undefined;
  const token = process.env.ACTIONS_RUNTIME_TOKEN ?? '';
  const version = entryVersion(dir);
  if (serviceVersion() === 'v2') {
    const base = process.env.ACTIONS_RESULTS_URL ?? '';
    const url = new URL('/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL', base).href;
    const r = await call(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ key, restore_keys: prefix ? [key] : [], version }) });
    if (r.status !== 200) throw failure(r.status, r.body, 'a lookup');
    const a = parseAnswer(r.body, 'a lookup');
    if (!a.ok) return undefined;
    const found = String(a.matched_key ?? a.matchedKey ?? '');
    const where = String(a.signed_download_url ?? a.signedDownloadUrl ?? '');
    if (!found || !where) throw new Error('the cache service answered a lookup without a key or an address');
    return { key: found, url: where };
  }
  const base = process.env.ACTIONS_CACHE_URL || process.env.ACTIONS_RESULTS_URL || '';
  const url = `${base}_apis/artifactcache/cache?keys=${encodeURIComponent(key)}&version=${version}`;
  const r = await call(url, { method: 'GET', headers: { accept: 'application/json;api-version=6.0-preview.1', authorization: `Bearer ${token}` } });
  if (r.status === 204) return undefined;
  if (r.status !== 200) throw failure(r.status, r.body, 'a lookup');
  const a = parseAnswer(r.body, 'a lookup');
  const found = String(a.cacheKey ?? '');
  const where = String(a.archiveLocation ?? '');
  if (!found || !where) throw new Error('the cache service answered a lookup without a key or an address');
  return { key: found, url: where };
}

/** Why an entry's archive was refused: said once as a warning, and the entry counts as missing. */
export class EntryArchiveError extends Error {
  override readonly name = 'EntryArchiveError';
}

/**
 * The name a member of an entry's archive has inside the entry's directory `dir`, or undefined when it is not in it.
 * @actions/cache names members relative to the workspace of the run that saved them (`../../tmp/hoist-gha-0/…`,
 * or absolute), so a member is in `dir` when what follows its leading `..`s is a tail of `dir`'s path followed by
 * its name inside; `''` is the directory itself.
 */
export function memberName(dir: string, name: string): string | undefined {
  const own = dir.split('/').filter((p) => p !== '');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  while (parts[0] === '..') parts.shift();
  for (let from = 0; from < own.length; from++) {
    const tail = own.slice(from);
    if (tail.length > parts.length || !tail.every((p, i) => parts[i] === p)) continue;
    const rest = parts.slice(tail.length);
    if (rest.includes('..')) return undefined;
    return rest.join('/');
  }
  return undefined;
}

export interface Member {
  /** its name inside the entry's directory */
  name: string;
  header: TarHeader;
  body: AsyncIterable<Buffer> & { resume(): void };
}

/**
 * Downloads the entry's archive and hands each member inside the entry's directory `dir` to `take` (the directory
 * itself is skipped); a member elsewhere fails the whole entry. `maxBytes` caps the download.
 */
export async function readEntry(hit: EntryHit, dir: string, maxBytes: number, take: (m: Member) => Promise<void>): Promise<void> {
  const { request } = await import('../registry/undici.js');
  const agent = await dispatcher();
  try {
    const r = await request(hit.url, { method: 'GET', dispatcher: agent, headersTimeout: 60_000, bodyTimeout: 120_000 });
    if (r.statusCode !== 200) {
      r.body.destroy();
      throw new Error(`the entry's archive answered ${r.statusCode}`);
    }
    const length = Number(r.headers['content-length'] ?? -1);
    if (length > maxBytes) {
      r.body.destroy();
      throw new EntryArchiveError(`entry ${hit.key} is ${length} bytes, more than the ${maxBytes} expected of it`);
    }
    let got = 0;
    const capped = Readable.from(
      (async function* () {
        for await (const c of r.body) {
          got += (c as Buffer).length;
          if (got > maxBytes) throw new EntryArchiveError(`entry ${hit.key} is more than the ${maxBytes} bytes expected of it`);
          yield c as Buffer;
        }
        if (length >= 0 && got !== length) throw new Error(`the entry's archive ended after ${got} of ${length} bytes`);
      })(),
    );
    const { stream } = await decompressed(capped);
    for await (const { header, body } of readTar(stream)) {
      const name = memberName(dir, header.name);
      if (name === undefined) {
        body.resume();
        throw new EntryArchiveError(`entry ${hit.key} holds ${JSON.stringify(header.name.slice(0, 200))}, which is not in its directory`);
      }
      if (name === '' && header.type === 'directory') {
        body.resume();
        continue;
      }
      await take({ name, header, body });
    }
  } finally {
    await agent.close().catch(() => undefined);
  }
}

/** A member's name as written, for an error (never a host path: it is the archive's text). */
export const memberText = (m: Member): string => JSON.stringify(cleanEntryName(m.name).slice(0, 200));
