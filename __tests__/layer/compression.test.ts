// The parallel gzip writer: one gzip member whatever the size, read back by zlib and by GNU gzip, the same bytes
// every time for the same input (layer digests must be reproducible).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import {
  chain,
  Coalesce,
  compressor,
  decompressing,
  incompressible,
  ParallelGzip,
  zstdProgram,
} from '../../src/layer/compression.js';

async function gzip(input: Buffer, piece = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += piece) parts.push(input.subarray(i, i + piece));
  const out: Buffer[] = [];
  for await (const c of chain(Readable.from(parts), new ParallelGzip())) out.push(c as Buffer);
  return Buffer.concat(out);
}

const MiB = 1 << 20;
const text = (n: number) =>
  Buffer.from(
    Array.from({ length: Math.ceil(n / 40) }, (_, i) => `line ${i} of some compressible text ..\n`).join(''),
  ).subarray(0, n);

describe('parallel gzip', () => {
  test.each([
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('x')],
    ['exactly one block', randomBytes(MiB)],
    ['one block and one byte', randomBytes(MiB + 1)],
    ['several blocks of random bytes', randomBytes(3 * MiB + 12345)],
    ['several blocks of text', text(5 * MiB + 7)],
  ])('%s: zlib and GNU gzip read it back whole', async (_name, input) => {
    const z = await gzip(input);
    expect(gunzipSync(z).equals(input)).toBe(true);
    const gnu = spawnSync('gzip', ['-dc'], { input: z, maxBuffer: 64 * MiB });
    expect(gnu.status).toBe(0);
    expect(gnu.stdout.equals(input)).toBe(true);
  });

  test('the same bytes for the same input, however it is cut into chunks', async () => {
    const input = text(3 * MiB + 99);
    const a = await gzip(input, 4096);
    const b = await gzip(input, 1_000_003);
    expect(a.equals(b)).toBe(true);
    const whole = await gzip(input, input.length);
    expect(a.equals(whole)).toBe(true);
  });

  test('compressible data shrinks as much as with one zlib stream (blocks share their history)', async () => {
    const input = text(4 * MiB);
    const ours = await gzip(input);
    const single = spawnSync('gzip', ['-6', '-c'], { input, maxBuffer: 64 * MiB }).stdout;
    expect(ours.length).toBeLessThan(single.length * 1.05);
  });

  test('blocks of random bytes are stored, not deflated; text beside them is still shrunk, and all reads back', async () => {
    expect(incompressible(randomBytes(MiB))).toBe(true);
    expect(incompressible(text(MiB))).toBe(false);
    expect(incompressible(Buffer.alloc(MiB))).toBe(false);
    expect(incompressible(randomBytes(1000))).toBe(false); // too short to tell
    // bytes of a few values only (a bitmap, say): low entropy though spread out
    expect(incompressible(Buffer.from(Array.from({ length: MiB }, (_, i) => (i * 7919) % 16)))).toBe(false);
    const random = randomBytes(2 * MiB + 100_000);
    const input = Buffer.concat([text(MiB + 500), random, text(MiB)]);
    const z = await gzip(input);
    expect(gunzipSync(z).equals(input)).toBe(true);
    expect(spawnSync('gzip', ['-dc'], { input: z, maxBuffer: 64 * MiB }).stdout.equals(input)).toBe(true);
    expect(z.length).toBeLessThan(random.length + 200_000); // the 2 MiB of text shrank
    expect((await gzip(input)).equals(z)).toBe(true);
    // random blocks come out as level 0 writes them: stored
    const stored: Buffer[] = [];
    for await (const c of chain(Readable.from([random]), new ParallelGzip(0))) stored.push(c as Buffer);
    expect((await gzip(random)).equals(Buffer.concat(stored))).toBe(true);
  });

  test('compressor("gzip") is this writer', () => {
    expect(compressor('gzip')).toBeInstanceOf(ParallelGzip);
  });
});

describe('decompressing', () => {
  test('small pieces reach zlib joined into big ones, in order, and come out whole', async () => {
    const input = text(3 * MiB + 99);
    const z = await gzip(input);
    const pieces: Buffer[] = [];
    for (let i = 0; i < z.length; i += 1000) pieces.push(z.subarray(i, i + 1000));
    const sizes: number[] = [];
    const joined: Buffer[] = [];
    for await (const c of chain(Readable.from(pieces), new Coalesce())) {
      sizes.push((c as Buffer).length);
      joined.push(c as Buffer);
    }
    expect(Buffer.concat(joined).equals(z)).toBe(true);
    expect(sizes.slice(0, -1).every((n) => n >= MiB)).toBe(true);
    const out: Buffer[] = [];
    for await (const c of decompressing(Readable.from(pieces), 'gzip')) out.push(c as Buffer);
    expect(Buffer.concat(out).equals(input)).toBe(true);
  });

  test('cut gzip data is still a clear error', async () => {
    const z = await gzip(text(MiB));
    const read = async () => {
      for await (const _ of decompressing(Readable.from([z.subarray(0, z.length - 100)]), 'gzip'));
    };
    await expect(read()).rejects.toThrow(/gzip data is truncated/);
  });
});

(spawnSync('sh', ['-c', 'command -v zstd']).status === 0 ? describe : describe.skip)(
  'zstd through the zstd program (Node before 22.15 has none in zlib)',
  () => {
    const zstd = (input: Buffer) => spawnSync('zstd', ['-q', '-c'], { input }).stdout;
    const read = async (bytes: Buffer) => {
      const out: Buffer[] = [];
      for await (const c of chain(Readable.from([bytes]), zstdProgram())) out.push(c as Buffer);
      return Buffer.concat(out);
    };

    test('reads back what zstd wrote, whole', async () => {
      const input = text(3 * MiB + 5);
      expect((await read(zstd(input))).equals(input)).toBe(true);
    });

    test('a truncated or corrupt stream is an error, never a short stream', async () => {
      const z = zstd(randomBytes(MiB));
      await expect(read(z.subarray(0, z.length - 100))).rejects.toThrow(/the zstd data is corrupt or truncated/);
      await expect(read(Buffer.concat([z.subarray(0, 4), Buffer.alloc(1000, 7)]))).rejects.toThrow(
        /the zstd data is corrupt or truncated/,
      );
    });
  },
);
