// Compression of layer streams, recognised by magic bytes (gzip 1f 8b, zstd 28 b5 2f fd) so that a tar is
// read the same whether it was stored compressed or not.
import { PassThrough, pipeline as pipelineCb, Readable, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import type { Compression } from '../image/media-types.js';

export class CompressionError extends Error {
  override readonly name = 'CompressionError';
}

export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

type ZstdZlib = { createZstdDecompress?: () => Transform; createZstdCompress?: () => Transform };

export function decompressor(c: Compression): Transform {
  if (c === 'gzip') return zlib.createGunzip();
  if (c === 'zstd') {
    const z = zlib as unknown as ZstdZlib;
    if (!z.createZstdDecompress) throw new CompressionError(`zstd layers need Node 22.15 or later (this is ${process.version})`);
    return z.createZstdDecompress();
  }
  return new PassThrough();
}

export function compressor(c: Compression, level?: number): Transform {
  if (c === 'gzip') return zlib.createGzip(level === undefined ? {} : { level });
  if (c === 'zstd') {
    const z = zlib as unknown as ZstdZlib;
    if (!z.createZstdCompress) throw new CompressionError(`zstd compression needs Node 22.15 or later (this is ${process.version})`);
    return z.createZstdCompress();
  }
  return new PassThrough();
}

/**
 * `a.pipe(b).pipe(c)…` with pipeline's error handling: an error anywhere destroys every stream, and the last one
 * (what the caller reads) fails with it. No stream is left emitting an error nobody listens to.
 */
export function chain(first: Readable, ...rest: Transform[]): Readable {
  if (rest.length === 0) return first;
  return pipelineCb([first, ...rest], () => undefined) as unknown as Readable;
}

/**
 * The first `n` bytes of a stream (fewer when it is shorter) and a stream of all of it, head included: the
 * original is read through one iterator, so nothing is lost or read twice.
 */
export async function peek(input: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | Uint8Array | string>;
  const chunks: Buffer[] = [];
  let have = 0;
  while (have < n) {
    const r = await it.next();
    if (r.done) break;
    const c = Buffer.from(r.value as Uint8Array);
    chunks.push(c);
    have += c.length;
  }
  const head = Buffer.concat(chunks);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value as Uint8Array);
    }
  }
  return { head: head.subarray(0, n), stream: Readable.from(all(), { objectMode: false }) };
}

/** The uncompressed bytes of a stream that may be gzip, zstd or plain, and which it was. */
export async function decompressed(input: Readable): Promise<{ stream: Readable; compression: Compression }> {
  const { head, stream } = await peek(input, 4);
  const compression = detectCompression(head);
  return { stream: chain(stream, decompressor(compression)), compression };
}
