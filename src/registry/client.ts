// The registry client: manifests and blobs of repositories, over the transports of their registries.
// Pull: manifests by tag or digest with every manifest type in Accept; blobs streamed and verified.
// Push: HEAD first, cross-repository mount, monolithic PUT with chunked PATCH as the fallback; the caller pushes
// manifests only after their blobs.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from './undici.js';
import { DigestMismatchError, DigestStream, digestOf, parseDigest } from '../image/digest.js';
import { type Descriptor, type ParsedManifest, parseManifest } from '../image/manifest.js';
import { manifestAccept } from '../image/media-types.js';
import { type Reference, type Repository, familiarReference, referenceTarget } from '../image/reference.js';
import { chain } from '../layer/compression.js';
import { RegistryError } from './errors.js';
import { Limiter } from './limit.js';
import {
  type RegistryResponse,
  RegistryTransport,
  type TransportOptions,
  backoffMs,
  createAgents,
  defaultRetry,
  header,
  isTransient,
  restartError,
} from './transport.js';
import { readBounded } from './body.js';

export interface RegistryClientOptions extends TransportOptions {
  /** parallel blob transfers across the client (default 4) */
  concurrency?: number;
  /** 'auto': monolithic PUT, chunked PATCH when the registry refuses it */
  uploadMode?: 'auto' | 'monolithic' | 'chunked';
  /** chunk size of chunked uploads (default 5 MiB; the registry's OCI-Chunk-Min-Length wins when larger) */
  chunkSize?: number;
}

export type Repo = Repository;

export interface ResolvedManifest {
  digest: string;
  mediaType: string;
  size: number;
}

export type BlobPushResult = 'exists' | 'mounted' | 'uploaded';

const pull = (r: Repo) => `repository:${r.repository}:pull`;
const pushPull = (r: Repo) => `repository:${r.repository}:pull,push`;

const maxManifestBytes = 8 * 1024 * 1024;
/** the most bytes of a blob pushed under the small blobs' limit (RegistryClient.smallLimiter) */
const smallBlob = 256 * 1024;

async function readLimited(body: Readable, limit: number, what: string, registry: string): Promise<Buffer> {
  const { bytes, cut } = await readBounded(body, limit);
  if (cut)
    throw new RegistryError({
      status: 200,
      registry,
      what,
      hint: `it is larger than ${limit} bytes, more than hoist reads of one`,
    });
  return bytes;
}

export class RegistryClient {
  private readonly transports = new Map<string, RegistryTransport>();
  private readonly agents: { secure: Dispatcher; insecure: Dispatcher };
  readonly limiter: Limiter;
  /**
   * Blobs of up to `smallBlob` bytes (a config, a RUN step's layer of a few files): pushed 16 at once, beside the
   * big ones' limit. Each is three short requests (HEAD, POST, PUT) that a transfer limit only lines up: fourteen
   * of them took four rounds, 0.15–0.2 s of a twelve-step build's push to a local registry.
   */
  private readonly smallLimiter = new Limiter(16);

  constructor(readonly options: RegistryClientOptions = {}) {
    this.agents = createAgents();
    this.limiter = new Limiter(options.concurrency ?? 4);
  }

  transport(registry: string): RegistryTransport {
    let t = this.transports.get(registry);
    if (!t) {
      t = new RegistryTransport(registry, this.agents, this.options);
      this.transports.set(registry, t);
    }
    return t;
  }

  /** The registry's Warning headers seen so far. */
  warnings(): string[] {
    return [...this.transports.values()].flatMap((t) => [...t.warnings]);
  }

  async close(): Promise<void> {
    await Promise.all([this.agents.secure.close(), this.agents.insecure.close()]);
  }

  /** `GET /v2/`: the registry answers and accepts the credentials (what `login` checks). */
  async ping(registry: string): Promise<void> {
    const res = await this.transport(registry).send({
      method: 'GET',
      path: '/v2/',
      scopes: [],
      what: `registry ${registry}`,
      retry: true,
    });
    await res.body.dump();
  }

  /** Tag or digest → descriptor of the manifest, by HEAD (which Docker Hub does not count as a pull). */
  async resolve(ref: Reference): Promise<ResolvedManifest> {
    const target = referenceTarget(ref);
    const res = await this.transport(ref.registry).send({
      method: 'HEAD',
      path: `/v2/${ref.repository}/manifests/${target}`,
      headers: { accept: manifestAccept },
      scopes: [pull(ref)],
      what: `manifest ${familiarReference(ref)}`,
      pull: true,
      retry: true,
    });
    await res.body.dump();
    const digest = header(res, 'docker-content-digest');
    const mediaType = header(res, 'content-type')?.split(';')[0].trim();
    const size = Number(header(res, 'content-length'));
    if (digest && mediaType && Number.isFinite(size) && (!ref.digest || digest === ref.digest))
      return { digest, mediaType, size };
    const m = await this.getManifest(ref);
    return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
  }

  /** The manifest or index a reference names, verified against the digest when it was asked by digest. */
  async getManifest(ref: Reference, target = referenceTarget(ref)): Promise<ParsedManifest> {
    const what = `manifest ${familiarReference(ref)}${target !== referenceTarget(ref) ? ` (${target})` : ''}`;
    const res = await this.transport(ref.registry).send({
      method: 'GET',
      path: `/v2/${ref.repository}/manifests/${target}`,
      headers: { accept: manifestAccept },
      scopes: [pull(ref)],
      what,
      pull: true,
      retry: true,
    });
    const bytes = await readLimited(res.body, maxManifestBytes, what, ref.registry);
    if (target.includes(':')) {
      const actual = digestOf(bytes, parseDigest(target).algorithm);
      if (actual !== target) throw new DigestMismatchError(target, actual, what);
    }
    return parseManifest(bytes, header(res, 'content-type'));
  }

  /** Stores manifest bytes under a tag or digest; returns the digest, checked against the registry's. */
  async putManifest(ref: Repo, target: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const digest = digestOf(bytes);
    const what = `manifest ${familiarReference({ ...ref, ...(target.includes(':') ? { digest: target } : { tag: target }) })}`;
    const res = await this.transport(ref.registry).send({
      method: 'PUT',
      path: `/v2/${ref.repository}/manifests/${target}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
      scopes: [pushPull(ref)],
      what,
      retry: true,
    });
    await res.body.dump();
    const theirs = header(res, 'docker-content-digest');
    if (theirs && theirs !== digest) throw new DigestMismatchError(digest, theirs, `${what}: the registry stored`);
    return digest;
  }

  /** The blob's size when the repository has it, else undefined. */
  async blobExists(ref: Repo, digest: string): Promise<number | undefined> {
    const res = await this.transport(ref.registry).send({
      method: 'HEAD',
      path: `/v2/${ref.repository}/blobs/${digest}`,
      scopes: [pull(ref)],
      what: `blob ${digest} in ${familiarReference(ref)}`,
      accept: [404],
      retry: true,
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    const n = Number(header(res, 'content-length'));
    return Number.isFinite(n) ? n : 0;
  }

  /** The first `n` bytes of a blob (a ranged GET; a registry that ignores Range is read only that far). */
  async blobPrefix(ref: Repo, digest: string, n: number): Promise<Buffer> {
    const res = await this.transport(ref.registry).send({
      method: 'GET',
      path: `/v2/${ref.repository}/blobs/${digest}`,
      headers: { range: `bytes=0-${n - 1}` },
      scopes: [pull(ref)],
      what: `blob ${digest} of ${familiarReference(ref)}`,
      pull: true,
      retry: true,
    });
    return (await readBounded(res.body, n)).bytes;
  }

  /**
   * A blob's bytes as a stream that fails at its end unless they hash to the descriptor's digest and size.
   * Consumers must read to the end before trusting what they read.
   */
  async openBlob(ref: Repo, desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    const what = `blob ${desc.digest} of ${familiarReference(ref)}`;
    const res = await this.transport(ref.registry).send({
      method: 'GET',
      path: `/v2/${ref.repository}/blobs/${desc.digest}`,
      scopes: [pull(ref)],
      what,
      pull: true,
      retry: true,
    });
    return chain(
      res.body,
      new DigestStream({ digest: desc.digest, size: desc.size >= 0 ? desc.size : undefined, where: what }),
    );
  }

  /** A small blob (a config) read whole and verified, with retries. */
  async fetchBlob(ref: Repo, desc: Pick<Descriptor, 'digest' | 'size'>, limit = 64 * 1024 * 1024): Promise<Buffer> {
    return this.retrying(`blob ${desc.digest}`, async () =>
      readLimited(await this.openBlob(ref, desc), limit, `blob ${desc.digest}`, ref.registry),
    );
  }

  /** Streams a blob to `sink`, retried from the start on transient failures (the sink is reopened). */
  async downloadBlob(
    ref: Repo,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    sink: () => NodeJS.WritableStream | Promise<NodeJS.WritableStream>,
  ): Promise<void> {
    await this.limiter.run(() =>
      this.retrying(`blob ${desc.digest}`, async () => {
        await pipeline(await this.openBlob(ref, desc), await sink());
      }),
    );
  }

  /** Runs `attempt` again from the start (with backoff) when it fails transiently. */
  async retrying<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    const policy = this.options.retry ?? defaultRetry;
    for (let i = 0; ; i++) {
      try {
        return await attempt();
      } catch (e) {
        if (i + 1 >= policy.attempts || !(isTransient(e) || isTransient((e as { cause?: unknown }).cause))) throw e;
        this.options.debug?.(`${what}: ${(e as Error).message}; starting again`);
        await new Promise((r) => setTimeout(r, backoffMs(policy, i, (e as { retryAfter?: number }).retryAfter)));
      }
    }
  }

  /**
   * Makes a blob present in a repository: nothing when it is there, a mount when one of `mountFrom` (same registry)
   * has it, else an upload of `open()`. A transient failure starts the upload again from the beginning.
   */
  async pushBlob(
    ref: Repo,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    open: () => Readable | Promise<Readable>,
    mountFrom: readonly Repo[] = [],
  ): Promise<BlobPushResult> {
    return (desc.size <= smallBlob ? this.smallLimiter : this.limiter).run(() =>
      this.retrying(`upload of ${desc.digest}`, async () => {
        if ((await this.blobExists(ref, desc.digest)) !== undefined) return 'exists';
        let location: URL | undefined;
        for (const from of mountFrom) {
          if (from.registry !== ref.registry || from.repository === ref.repository) continue;
          const res = await this.post(ref, new URLSearchParams({ mount: desc.digest, from: from.repository }), [
            pushPull(ref),
            pull(from),
          ]);
          if (res.status === 201) return 'mounted';
          location = this.location(res);
          break;
        }
        location ??= this.location(await this.post(ref, new URLSearchParams(), [pushPull(ref)]));
        await this.upload(ref, desc, open, location);
        return 'uploaded';
      }),
    );
  }

  private async post(ref: Repo, query: URLSearchParams, scopes: string[]): Promise<RegistryResponse> {
    const q = query.toString();
    const res = await this.transport(ref.registry).send({
      method: 'POST',
      path: `/v2/${ref.repository}/blobs/uploads/${q ? `?${q}` : ''}`,
      headers: { 'content-length': '0' },
      scopes,
      what: `upload to ${familiarReference(ref)}`,
      accept: [201, 202],
      retry: false,
    });
    await res.body.dump();
    if (res.status !== 201 && !header(res, 'location')) {
      throw new RegistryError({
        status: res.status,
        registry: ref.registry,
        what: `upload to ${familiarReference(ref)}`,
        hint: 'the registry opened an upload without a Location',
      });
    }
    return res;
  }

  private location(res: RegistryResponse): URL {
    return new URL(String(header(res, 'location')), res.url);
  }

  private async upload(
    ref: Repo,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    open: () => Readable | Promise<Readable>,
    location: URL,
  ): Promise<void> {
    const mode = this.options.uploadMode ?? 'auto';
    const what = `upload of ${desc.digest} to ${familiarReference(ref)}`;
    const t = this.transport(ref.registry);
    const finish = (url: URL, size: number, body?: () => Readable) => {
      url.searchParams.set('digest', desc.digest);
      return t.send({
        method: 'PUT',
        path: url.href,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body,
        scopes: [pushPull(ref)],
        what,
        retry: false,
      });
    };
    if (mode !== 'chunked') {
      const stream = await open();
      let used = false;
      try {
        const res = await finish(new URL(location), desc.size, () => {
          if (used) throw restartError('the registry asked for the upload body twice');
          used = true;
          return chain(stream, new DigestStream({ digest: desc.digest, size: desc.size, where: what }));
        });
        await res.body.dump();
        this.checkStored(res, desc.digest, what);
        return;
      } catch (e) {
        stream.destroy();
        await this.cancel(ref, location);
        // Registries that refuse one large PUT say so with 413/416/400/405; anything else is not ours to hide.
        if (
          mode === 'monolithic' ||
          !(e instanceof RegistryError) ||
          ![400, 405, 413, 416].includes(e.status) ||
          e.code === 'DIGEST_INVALID'
        )
          throw e;
        this.options.debug?.(`${what}: monolithic upload refused (${e.status}); uploading in chunks`);
        location = this.location(await this.post(ref, new URLSearchParams(), [pushPull(ref)]));
      }
    }
    await this.uploadChunked(ref, desc, await open(), location, finish);
  }

  private async uploadChunked(
    ref: Repo,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    stream: Readable,
    start: URL,
    finish: (url: URL, size: number) => Promise<RegistryResponse>,
  ): Promise<void> {
    const what = `upload of ${desc.digest} to ${familiarReference(ref)}`;
    const t = this.transport(ref.registry);
    const chunkSize = this.options.chunkSize ?? 5 * 1024 * 1024;
    const verify = new DigestStream({ digest: desc.digest, size: desc.size, where: what });
    let location = start;
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let done = false;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const chunk = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      const res = await t.send({
        method: 'PATCH',
        path: location.href,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.length),
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: () => chunk,
        scopes: [pushPull(ref)],
        what,
        accept: [201, 202],
        retry: false,
      });
      await res.body.dump();
      offset += chunk.length;
      if (res.status === 201) done = true; // ECR may finish the upload on PATCH and then refuse the PUT
      if (header(res, 'location')) location = this.location(res);
    };
    try {
      for await (const c of chain(stream, verify)) {
        pending.push(c as Buffer);
        pendingBytes += (c as Buffer).length;
        if (pendingBytes >= chunkSize) await flush();
      }
      await flush();
      if (done) return;
      const res = await finish(new URL(location), 0);
      await res.body.dump();
      this.checkStored(res, desc.digest, what);
    } catch (e) {
      stream.destroy();
      await this.cancel(ref, location);
      throw e;
    }
  }

  private checkStored(res: RegistryResponse, digest: string, what: string): void {
    const theirs = header(res, 'docker-content-digest');
    if (theirs && theirs !== digest) throw new DigestMismatchError(digest, theirs, `${what}: the registry stored`);
  }

  /** Abandons an upload session; failures do not matter (the registry expires it). */
  private async cancel(ref: Repo, location: URL): Promise<void> {
    try {
      const res = await this.transport(ref.registry).send({
        method: 'DELETE',
        path: location.href,
        scopes: [pushPull(ref)],
        what: 'cancel upload',
        accept: [404],
        retry: false,
      });
      await res.body.dump();
    } catch {
      // ignored
    }
  }

  /** Every tag of a repository, following `Link: <…>; rel="next"` pages. */
  async listTags(ref: Repo): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${ref.repository}/tags/list`;
    while (path) {
      const res: RegistryResponse = await this.transport(ref.registry).send({
        method: 'GET',
        path,
        scopes: [pull(ref)],
        what: `tags of ${familiarReference(ref)}`,
        pull: true,
        retry: true,
      });
      let body: { tags?: string[] | null };
      try {
        body = JSON.parse(
          (await readLimited(res.body, maxManifestBytes, `tags of ${familiarReference(ref)}`, ref.registry)).toString(
            'utf8',
          ),
        ) as typeof body;
      } catch (e) {
        if (e instanceof RegistryError) throw e;
        throw new RegistryError({
          status: 200,
          registry: ref.registry,
          what: `tags of ${familiarReference(ref)}`,
          hint: 'the answer is not JSON',
        });
      }
      tags.push(...(body.tags ?? []));
      const link = header(res, 'link');
      const next = link?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
      path = next ? new URL(next[1], res.url).href : undefined;
    }
    return tags;
  }

  /** A manifest's descriptor the way it was resolved, to copy manifests by digest. */
  static descriptorOf(m: ParsedManifest): Descriptor {
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }
}

export function readableOf(bytes: Uint8Array): Readable {
  return Readable.from([Buffer.from(bytes)]);
}
