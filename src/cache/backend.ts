// Caches beside the store (--cache-from / --cache-to, buildx's syntax): where records are looked up when the store
// lacks them, and where this build's records go. A cache is never a reason for a build to fail: one that cannot be
// read is a warning and the steps run; a blob it holds that does not match its digest makes its steps run again.
import { splitCSV } from '../dockerfile/plan.js';
import type { BlobSource, Layer } from '../layer/layer.js';
import type { Store } from '../store/store.js';
import type { MountBlob, MountsToSave, UsedCacheMount } from './mounts.js';
import type { CacheRecord } from './record.js';

/**
 * A cache backend (a registry repository, a directory, the Actions cache): `load` reads its records, for lookups,
 * and where to fetch the layers they name; `save` writes a build's records and their layers.
 */
export interface CacheBackend {
  /** for progress and warnings: `registry example.com/app:cache`, `local ./cache` */
  readonly name: string;
  load(): Promise<CacheSource>;
  save(records: readonly CacheRecord[], from: CacheLayers): Promise<CacheSaveReport>;
}

/** What a save needs of a build: its store, and the layers its records name (with their sources). */
export interface CacheLayers {
  store: Store;
  layer(digest: string): Layer | undefined;
  /** the cache mounts the build used (a backend that keeps them saves the changed ones) */
  mounts?: readonly UsedCacheMount[];
  /** for a registry or local cache: the mounts' blobs (an unchanged one by reference), packed once per build */
  keptMounts?(maxBytes: number): Promise<MountsToSave>;
}

/** a cache mount bigger than this is not saved, unless mount-max-size says otherwise */
export const defaultMountMax = 1024 ** 3;

export interface CacheSaveReport {
  uploadedBytes: number;
  /** for the log: `3 blobs uploaded, 1 mounted, 2 already there` */
  summary: string;
}

/** A loaded cache: its records, and where the layers they name can be fetched. */
export interface CacheSource {
  readonly name: string;
  /** what a step's result is in the progress and the metadata when found here */
  readonly kind: 'registry' | 'inline' | 'local' | 'gha';
  lookup(key: string): CacheRecord | undefined;
  readonly blobs: BlobSource;
  /** fills the new, empty cache-mount directory `dir` with the kept copy of cache `name` (at most `maxBytes`); false when none */
  restoreMount?(name: string, dir: string, maxBytes: number): Promise<boolean>;
  /** the blob that holds cache mount `name` here (registry and local caches) */
  mountBlob?(name: string): MountBlob | undefined;
}

/** A cache's blob that could not be had (unreachable, or its bytes do not match its digest). */
export class CacheBlobError extends Error {
  override readonly name = 'CacheBlobError';
  constructor(
    message: string,
    readonly digest: string,
  ) {
    super(message);
  }
}

/** A cache's blobs: any failure to fetch one is a CacheBlobError, which the solver answers by running the steps. */
export function cacheBlobSource(name: string, inner: BlobSource): BlobSource {
  return {
    name,
    cache: true,
    ...(inner.repository ? { repository: inner.repository } : {}),
    ...(inner.local ? { local: true } : {}),
    async fetch(desc, sink) {
      try {
        await inner.fetch(desc, sink);
      } catch (e) {
        throw new CacheBlobError(`cache ${name}: blob ${desc.digest}: ${(e as Error).message}`, desc.digest);
      }
    },
  };
}

export class CacheSpecError extends Error {
  override readonly name = 'CacheSpecError';
}

/** `type=gha` attributes (buildx's, and max-size): the scope defaults to the image, platform and target. */
export interface GhaSpec {
  type: 'gha';
  scope?: string;
  url?: string;
  token?: string;
}

export type CacheFromSpec = { type: 'registry'; ref: string } | { type: 'local'; src: string } | GhaSpec;
export type CacheToSpec =
  | { type: 'registry'; ref: string; mode: 'min' | 'max'; mountMaxSize?: number }
  | { type: 'inline' }
  | { type: 'local'; dest: string; mode: 'min' | 'max'; mountMaxSize?: number }
  | (GhaSpec & { mode: 'min' | 'max'; maxSize?: number; mountMaxSize?: number });

function fields(text: string, flag: string): Map<string, string> {
  const f = new Map<string, string>();
  for (const part of splitCSV(text)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new CacheSpecError(`${flag} ${text}: expected key=value fields (type=registry,ref=NAME)`);
    f.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return f;
}

const mode = (f: Map<string, string>, text: string, flag: string): 'min' | 'max' => {
  const m = f.get('mode') ?? 'min';
  if (m !== 'min' && m !== 'max') throw new CacheSpecError(`${flag} ${text}: mode must be min or max`);
  return m;
};

/** The type=gha attributes both flags take; unknown ones are errors (a typo would silently change the scope). */
function ghaSpec(f: Map<string, string>, text: string, flag: string, extra: readonly string[]): GhaSpec {
  for (const k of f.keys()) {
    if (!['type', 'scope', 'url', 'url_v2', 'token', ...extra].includes(k))
      throw new CacheSpecError(
        `${flag} ${text}: type=gha takes scope, url, token${extra.length ? `, ${extra.join(', ')}` : ''}; not ${k}`,
      );
  }
  const spec: GhaSpec = { type: 'gha' };
  const scope = f.get('scope');
  if (scope !== undefined) {
    if (scope === '') throw new CacheSpecError(`${flag} ${text}: scope is empty`);
    spec.scope = scope;
  }
  const url = f.get('url_v2') ?? f.get('url');
  if (url) spec.url = url;
  const token = f.get('token');
  if (token) spec.token = token;
  return spec;
}

/** `1g`, `500m`, `2048k`, `123` (bytes) */
function byteSize(key: string, value: string, text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim());
  if (!m) throw new CacheSpecError(`${flag} ${text}: ${key} ${JSON.stringify(value)} is not a size (like 2g or 500m)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[
    m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'
  ];
  return Math.floor(Number(m[1]) * unit);
}

/** `mount-max-size=SIZE`: how big a cache mount may be to be saved */
function mountMax(f: Map<string, string>, text: string): { mountMaxSize?: number } {
  const v = f.get('mount-max-size');
  return v === undefined ? {} : { mountMaxSize: byteSize('mount-max-size', v, text, '--cache-to') };
}

/** `--cache-from`: `type=registry,ref=REF` (or a bare REF), `type=local,src=DIR`, `type=gha[,scope=S]`. */
function parseCacheFromText(text: string): CacheFromSpec {
  if (!text.includes('=')) return { type: 'registry', ref: text };
  const f = fields(text, '--cache-from');
  const type = f.get('type') ?? 'registry';
  if (type === 'registry') {
    const ref = f.get('ref');
    if (!ref) throw new CacheSpecError(`--cache-from ${text}: type=registry needs ref=NAME`);
    return { type, ref };
  }
  if (type === 'local') {
    const src = f.get('src');
    if (!src) throw new CacheSpecError(`--cache-from ${text}: type=local needs src=DIR`);
    return { type, src };
  }
  if (type === 'gha') return ghaSpec(f, text, '--cache-from', []);
  throw new CacheSpecError(`--cache-from ${text}: unknown type ${JSON.stringify(type)} (registry, local, gha)`);
}

/**
 * `--cache-to`: `type=registry,ref=REF[,mode=max]`, `type=inline`, `type=local,dest=DIR[,mode=max]`,
 * `type=gha[,scope=S][,mode=max][,max-size=SIZE]`.
 */
function parseCacheToText(text: string): CacheToSpec {
  const f = fields(text, '--cache-to');
  const type = f.get('type');
  if (type === 'registry') {
    const ref = f.get('ref');
    if (!ref) throw new CacheSpecError(`--cache-to ${text}: type=registry needs ref=NAME`);
    return { type, ref, mode: mode(f, text, '--cache-to'), ...mountMax(f, text) };
  }
  if (type === 'inline') return { type };
  if (type === 'local') {
    const dest = f.get('dest');
    if (!dest) throw new CacheSpecError(`--cache-to ${text}: type=local needs dest=DIR`);
    return { type, dest, mode: mode(f, text, '--cache-to'), ...mountMax(f, text) };
  }
  if (type === 'gha') {
    const spec: CacheToSpec = {
      ...ghaSpec(f, text, '--cache-to', ['mode', 'ignore-error', 'max-size', 'mount-max-size']),
      mode: mode(f, text, '--cache-to'),
      ...mountMax(f, text),
    };
    const max = f.get('max-size');
    if (max !== undefined) spec.maxSize = byteSize('max-size', max, text, '--cache-to');
    // ignore-error: a cache is never a reason for a build to fail, so it is always so here.
    return spec;
  }
  throw new CacheSpecError(`--cache-to ${text}: unknown type ${JSON.stringify(type)} (registry, inline, local, gha)`);
}

/** An error about a flag's value never shows a token= given in it. */
function masked<T>(text: string, parse: (text: string) => T): T {
  try {
    return parse(text);
  } catch (e) {
    if (e instanceof CacheSpecError)
      e.message = e.message.split(text).join(text.replace(/((?:^|,)\s*token=)[^,]*/gi, '$1***'));
    throw e;
  }
}

export const parseCacheFrom = (text: string): CacheFromSpec => masked(text, parseCacheFromText);
export const parseCacheTo = (text: string): CacheToSpec => masked(text, parseCacheToText);

/** Records by key, for a CacheSource's lookup. */
export function recordsByKey(records: readonly CacheRecord[]): (key: string) => CacheRecord | undefined {
  const map = new Map(records.map((r) => [r.key, r]));
  return (key) => map.get(key);
}
