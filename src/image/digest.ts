// Digests (`algorithm:hex`, OCI image-spec descriptor.md): sha256 and sha512, lower-case hex of the exact length.
// Every blob read from anywhere goes through a verifier before anyone uses it.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export type DigestAlgorithm = 'sha256' | 'sha512';

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** `algorithm:hex` */
  text: string;
}

export class DigestError extends Error {
  override readonly name = 'DigestError';
}

/** The content did not hash to the digest it was fetched or stored under. */
export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError';
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly where: string,
  ) {
    super(
      `${where}: content has digest ${actual}, expected ${expected}; the data is corrupt or was changed in transit`,
    );
  }
}

export class SizeMismatchError extends Error {
  override readonly name = 'SizeMismatchError';
  constructor(
    readonly expected: number,
    readonly actual: number,
    readonly where: string,
  ) {
    super(`${where}: content is ${actual} bytes, expected ${expected}`);
  }
}

export function parseDigest(text: string): ParsedDigest {
  const colon = text.indexOf(':');
  if (colon < 0)
    throw new DigestError(
      `invalid digest ${JSON.stringify(text)}: expected algorithm:hex, e.g. sha256:<64 hex digits>`,
    );
  const algorithm = text.slice(0, colon);
  const hex = text.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new DigestError(
      `unsupported digest algorithm ${JSON.stringify(algorithm)} in ${JSON.stringify(text)}: sha256 and sha512 are supported`,
    );
  }
  if (hex.length !== hexLength[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new DigestError(
      `invalid digest ${JSON.stringify(text)}: ${algorithm} needs ${hexLength[algorithm]} lower-case hex digits`,
    );
  }
  return { algorithm, hex, text };
}

export function isDigest(text: string): boolean {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Throws DigestMismatchError unless `data` hashes to `digest`. */
export function verifyBytes(data: Uint8Array, digest: string, where: string): void {
  const { algorithm } = parseDigest(digest);
  const actual = digestOf(data, algorithm);
  if (actual !== digest) throw new DigestMismatchError(digest, actual, where);
}

/**
 * A pass-through stream that hashes what flows through it. With `expected` it fails the stream at the end when the
 * digest or the size differ, so a consumer that reads to the end never accepts corrupt bytes.
 */
export class DigestStream extends Transform {
  private readonly hash: Hash;
  readonly algorithm: DigestAlgorithm;
  size = 0;
  private result: string | undefined;

  constructor(
    private readonly expected?: { digest?: string; size?: number; where?: string },
    algorithm?: DigestAlgorithm,
  ) {
    super();
    this.algorithm = expected?.digest ? parseDigest(expected.digest).algorithm : (algorithm ?? 'sha256');
    this.hash = createHash(this.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    const max = this.expected?.size;
    if (max !== undefined && max >= 0 && this.size > max) {
      done(new SizeMismatchError(max, this.size, this.expected?.where ?? 'blob'));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.result = `${this.algorithm}:${this.hash.digest('hex')}`;
    const e = this.expected;
    const where = e?.where ?? 'blob';
    if (e?.size !== undefined && e.size >= 0 && this.size !== e.size)
      done(new SizeMismatchError(e.size, this.size, where));
    else if (e?.digest !== undefined && this.result !== e.digest)
      done(new DigestMismatchError(e.digest, this.result, where));
    else done();
  }

  /** The digest of everything that passed; only after the stream ended. */
  get digest(): string {
    if (this.result === undefined) throw new Error('DigestStream: digest read before the end of the stream');
    return this.result;
  }
}
