// Response bodies read whole (an error, a token, a manifest), each only up to a bound.
import type { Readable } from 'node:stream';

/**
 * At most `limit` bytes of a response body; past that the body is dropped (`cut`). A registry's or token service's
 * answer is small: an endless one must not be read until memory runs out.
 */
export async function readBounded(body: Readable, limit: number): Promise<{ bytes: Buffer; cut: boolean }> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    const b = c as Buffer;
    if (n + b.length > limit) {
      chunks.push(b.subarray(0, limit - n));
      body.destroy();
      return { bytes: Buffer.concat(chunks), cut: true };
    }
    n += b.length;
    chunks.push(b);
  }
  return { bytes: Buffer.concat(chunks), cut: false };
}

/** the most of an error body that is read (its message is shown cut to a few hundred characters anyway) */
export const maxErrorBody = 64 * 1024;
