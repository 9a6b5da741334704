// Compression of layer streams, recognised by magic bytes (gzip 1f 8b, zstd 28 b5 2f fd) so that a tar is
// read the same whether it was stored compressed or not.
import { availableParallelism } from 'node:os';
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, pipeline as pipelineCb, Readable, Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import type { Compression } from '../image/media-types.js';

export class CompressionError extends Error {
  override readonly name = 'CompressionError';
}

/** What compressed a stream, by its magic bytes (the first 6 are enough); 'none' when nothing known did. */
export function sniffCompression(head: Uint8Array): Compression | 'bzip2' | 'xz' {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2'; // "BZh"
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  return 'none';
}

/** A layer's compression: gzip, zstd or none (what OCI layers may use; bzip2 and xz are not layer formats). */
export function detectCompression(head: Uint8Array): Compression {
  const c = sniffCompression(head);
  return c === 'gzip' || c === 'zstd' ? c : 'none';
}

type ZstdZlib = { createZstdDecompress?: () => Transform; createZstdCompress?: () => Transform };

export function decompressor(c: Compression): Duplex {
  if (c === 'gzip') return described(zlib.createGunzip({ chunkSize: 256 * 1024 }), 'gzip');
  if (c === 'zstd') {
    const z = zlib as unknown as ZstdZlib;
    return z.createZstdDecompress ? described(z.createZstdDecompress(), 'zstd') : zstdProgram();
  }
  return new PassThrough();
}

/**
 * zstd where Node's zlib has none (before 22.15): the zstd program. Its output
 * ends only once it has exited well; a failure is the stream's error, never a short stream taken as whole.
 */
export function zstdProgram(): Duplex {
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let said = '';
  child.stderr.on('data', (d: Buffer) => void (said = (said + d.toString()).slice(-500)));
  child.stdout.pipe(out, { end: false });
  child.stdin.on('error', () => undefined); // zstd stopped reading: its exit says why
  const d = Duplex.from({ writable: child.stdin, readable: out });
  child.on('error', (e) =>
    d.destroy(new CompressionError(`zstd data needs Node 22.15 or later, or the zstd program (${e.message})`)),
  );
  child.on('close', (code) => {
    if (code === 0) out.end();
    else
      out.destroy(
        new CompressionError(`the zstd data is corrupt or truncated (${said.trim() || `zstd exited with ${code}`})`),
      );
  });
  const destroy = d._destroy.bind(d);
  d._destroy = (err, callback) => {
    if (child.exitCode === null) child.kill();
    destroy(err, callback);
  };
  return d;
}

/**
 * zlib's own errors ("unexpected end of file", "incorrect header check", with an errno but no file) become
 * CompressionErrors that say the data is truncated or corrupt: the error a stream's reader fails with is the
 * one its _destroy passes on.
 */
function described(t: Transform, kind: string): Transform {
  const destroy = t._destroy.bind(t);
  t._destroy = (err: Error | null, callback: (error?: Error | null) => void) => {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    const zlibError = err && !(err instanceof CompressionError) && typeof code === 'string' && /^(Z_|ZSTD_)/.test(code);
    destroy(
      zlibError
        ? new CompressionError(
            `the ${kind} data is ${code === 'Z_BUF_ERROR' ? 'truncated' : 'corrupt'} (${err.message})`,
          )
        : err,
      callback,
    );
  };
  return t;
}

export function compressor(c: Compression, level?: number): Transform {
  if (c === 'gzip') return new ParallelGzip(level);
  if (c === 'zstd') {
    const z = zlib as unknown as ZstdZlib;
    if (!z.createZstdCompress)
      throw new CompressionError(`zstd compression needs Node 22.15 or later (this is ${process.version})`);
    return z.createZstdCompress();
  }
  return new PassThrough();
}

/**
 * `a.pipe(b).pipe(c)…` with pipeline's error handling: an error anywhere destroys every stream, and the last one
 * (what the caller reads) fails with it. No stream is left emitting an error nobody listens to.
 */
export function chain(first: Readable, ...rest: Duplex[]): Readable {
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

/**
 * Joins small chunks into ones of at least `size` bytes. zlib pays per call: an HTTP body arrives in 16–64 KiB
 * pieces, and the 94 MB gzip of a Debian base took 1.6 s of CPU to inflate fed 16 KiB at a time, 0.56 s fed 1 MiB.
 */
export class Coalesce extends Transform {
  private parts: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly size = 1 << 20) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.parts.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.size) this.release();
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.bytes > 0) this.release();
    done();
  }

  private release(): void {
    this.push(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.bytes));
    this.parts = [];
    this.bytes = 0;
  }
}

/** `input` decompressed (as it was compressed: gzip, zstd or none), fed to the decompressor in big pieces. */
export function decompressing(input: Readable, c: Compression): Readable {
  return c === 'none' ? input : chain(input, new Coalesce(), decompressor(c));
}

/** The uncompressed bytes of a stream that may be gzip, zstd or plain, and which it was. */
export async function decompressed(input: Readable): Promise<{ stream: Readable; compression: Compression }> {
  const { head, stream } = await peek(input, 4);
  const compression = detectCompression(head);
  return { stream: decompressing(stream, compression), compression };
}

/**
 * Whether a block's bytes look random: the Shannon entropy of their byte frequencies (every fourth byte counted) at
 * 7.99 bits a byte or more. deflate gains under 0.2 % on such a block at any level — short of exact repeats within
 * its 32 KiB window, which a byte count cannot see (the rare price: such a block is stored, not shrunk).
 */
export function incompressible(block: Buffer): boolean {
  if (block.length < 65536) return false;
  const counts = new Uint32Array(256);
  let n = 0;
  for (let i = 0; i < block.length; i += 4, n++) counts[block[i]]++;
  let bits = 0;
  for (const c of counts) if (c > 0) bits -= (c / n) * Math.log2(c / n);
  return bits >= 7.99;
}

const deflateRaw = promisify<zlib.InputType, zlib.ZlibOptions, Buffer>(zlib.deflateRaw);
const gzipBlock = 1 << 20;
const window = 32 * 1024;

/**
 * gzip on every core, as pigz does it: the input is cut into 1 MiB blocks, each deflated on its own (in libuv's
 * thread pool) with the previous block's last 32 KiB as its dictionary and ended by a sync flush, so that the
 * pieces join into one ordinary deflate stream in one gzip member (RFC 1951 §3.2.3, RFC 1952). Block boundaries
 * are fixed, so the same input always gives the same bytes. A single zlib stream managed ~30 MB/s and made
 * gzip the slowest part of writing a layer.
 */
export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly inFlight: Promise<Buffer>[] = [];
  private readonly parallel = Math.max(2, availableParallelism());
  private crc = 0;
  private size = 0;
  private tail: Buffer = Buffer.alloc(0);
  private started = false;

  constructor(private readonly level = zlib.constants.Z_DEFAULT_COMPRESSION) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drainBlocks().then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    (async () => {
      await this.drainBlocks();
      const last = Buffer.concat(this.pending);
      this.pending = [];
      this.start(last, zlib.constants.Z_FINISH);
      while (this.inFlight.length > 0) this.emitOldest(await (this.inFlight.shift() as Promise<Buffer>));
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.size % 2 ** 32, 4);
      this.push(trailer);
    })().then(() => done(), done);
  }

  /** Starts every full block, waiting for the oldest while as many as there are cores are under way. */
  private async drainBlocks(): Promise<void> {
    if (this.pendingBytes < gzipBlock) return;
    // Joined once and cut without copying again (a big chunk would otherwise be copied once per block).
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const whole = all.length - (all.length % gzipBlock);
    this.pending = whole < all.length ? [all.subarray(whole)] : [];
    this.pendingBytes = all.length - whole;
    for (let off = 0; off < whole; off += gzipBlock) {
      this.start(all.subarray(off, off + gzipBlock), zlib.constants.Z_SYNC_FLUSH);
      if (this.inFlight.length >= this.parallel) this.emitOldest(await (this.inFlight.shift() as Promise<Buffer>));
    }
  }

  private start(block: Buffer, flush: number): void {
    this.crc = zlib.crc32(block, this.crc);
    this.size += block.length;
    // A block that deflate cannot shrink (random bytes, what is already compressed: archives, images, packed
    // binaries) is stored as it is: deflate's search through it costs 22 ms a MiB here and wins nothing, storing
    // costs 2 ms. Decided by the block's bytes alone, so the same input still gives the same output.
    const level = this.level !== 0 && incompressible(block) ? 0 : this.level;
    const options: zlib.ZlibOptions = { level, finishFlush: flush };
    if (this.tail.length > 0) options.dictionary = this.tail;
    const promise = deflateRaw(block, options);
    promise.catch(() => undefined); // awaited in order later; never an unhandled rejection meanwhile
    this.inFlight.push(promise);
    this.tail = Buffer.from(block.subarray(Math.max(0, block.length - window)));
  }

  private emitOldest(deflated: Buffer): void {
    if (!this.started) {
      this.started = true;
      // magic, deflate, no flags, no mtime, no extra flags, OS unix
      this.push(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]));
    }
    this.push(deflated);
  }
}
