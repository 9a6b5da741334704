// Compression of layer streams, recognised by magic bytes (gzip 1f 8b, zstd 28 b5 2f fd) so that a tar is
// read the same whether it was stored compressed or not.
import { PassThrough, type Readable, type Transform } from 'node:stream';
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

/** `a.pipe(b).pipe(c)…` where an error anywhere destroys what comes after it, so the last stream reports it. */
export function chain(first: Readable, ...rest: Transform[]): Readable {
  let cur: Readable = first;
  for (const t of rest) {
    cur.on('error', (e) => t.destroy(e));
    cur = cur.pipe(t);
  }
  return cur;
}

/** The first `n` bytes of a stream (fewer at its end), put back so the stream still yields everything. */
export async function peek(input: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  await new Promise<void>((resolve, reject) => {
    const onReadable = () => {
      let c: Buffer | null;
      while (have < n && (c = input.read() as Buffer | null) !== null) {
        chunks.push(c);
        have += c.length;
      }
      if (have >= n) done();
    };
    const done = () => {
      input.off('readable', onReadable).off('end', done).off('error', fail);
      resolve();
    };
    const fail = (e: Error) => {
      input.off('readable', onReadable).off('end', done);
      reject(e);
    };
    input.on('readable', onReadable).once('end', done).once('error', fail);
  });
  const head = Buffer.concat(chunks);
  if (head.length > 0) input.unshift(head);
  return head.subarray(0, n);
}

/** The uncompressed bytes of a stream that may be gzip, zstd or plain, and which it was. */
export async function decompressed(input: Readable): Promise<{ stream: Readable; compression: Compression }> {
  const compression = detectCompression(await peek(input, 4));
  return { stream: chain(input, decompressor(compression)), compression };
}
