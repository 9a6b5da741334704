// ADD from a URL, as BuildKit's HTTP source does it: the file is named after the URL's last path segment
// (`__unnamed__` when there is none), written with mode 0600, its mtime from Last-Modified, never unpacked, and
// checked against --checksum when one is given. Redirects are followed.
import { createWriteStream } from 'node:fs';
import { chmod, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestStream, parseDigest } from '../image/digest.js';
import { httpDispatcher } from '../registry/proxy.js';

export class HttpSourceError extends Error {
  override readonly name = 'HttpSourceError';
}

export function isURL(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * The file name of a URL as BuildKit takes it (path.Base of the decoded path, else `__unnamed__`): decoded first, so
 * that `..%2f..%2fetc` is the name `etc`, never a path that climbs out of the directory it is downloaded into.
 */
export function urlFileName(url: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(new URL(url).pathname);
  } catch {
    return '__unnamed__';
  }
  const base = path.posix.basename(decoded);
  return base && base !== '/' && base !== '.' && base !== '..' && !base.includes('\0') ? base : '__unnamed__';
}

/**
 * Downloads `url` into `dir`; answers the file's path and whether the server said when it was modified (the file
 * then has that time; else the caller gives it the build's).
 */
export async function download(
  url: string,
  dir: string,
  options: { checksum?: string },
): Promise<{ file: string; dated: boolean }> {
  // the environment's proxy (registry/proxy.ts), for this download alone
  const dispatcher = httpDispatcher();
  try {
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      // undici's fetch, loaded when a download is asked for (src/registry/undici.ts)
      const { fetch } = await import('undici');
      res = await fetch(url, { redirect: 'follow', headers: { 'user-agent': 'hoist' }, dispatcher });
    } catch (e) {
      throw new HttpSourceError(
        `failed to download ${url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`,
      );
    }
    if (!res.ok || !res.body) throw new HttpSourceError(`failed to download ${url}: ${res.status} ${res.statusText}`);
    const file = path.join(dir, urlFileName(url));
    const check = options.checksum
      ? new DigestStream({ digest: parseDigest(options.checksum).text, where: `ADD ${url} --checksum` })
      : new DigestStream();
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      check,
      createWriteStream(file),
    );
    await chmod(file, 0o600);
    const lm = Date.parse(res.headers.get('last-modified') ?? '');
    if (!Number.isNaN(lm)) await utimes(file, Math.floor(lm / 1000), Math.floor(lm / 1000));
    return { file, dated: !Number.isNaN(lm) };
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}
