// ADD of a local archive: a tar, plain or compressed with gzip, bzip2, xz or zstd (recognised by content, not by
// name, as Docker does), is unpacked into the destination; any other file is copied as it is. bzip2 and xz (and
// zstd where Node lacks it) are decompressed by the system's own tools.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { decompressing, sniffCompression } from '../layer/compression.js';
import { fsPath } from '../layer/names.js';
import { checksumOk } from '../layer/tar.js';

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
}

function compressionOf(head: Buffer): Exclude<ArchiveKind, 'tar'> | undefined {
  const c = sniffCompression(head);
  return c === 'none' ? undefined : c;
}

/** A decompressing stream of the file (the file itself for a plain tar). */
export function openArchive(file: string, kind: ArchiveKind): Readable {
  const input = createReadStream(fsPath(file));
  const z = zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream };
  if (kind === 'tar') return input;
  if (kind === 'gzip' || (kind === 'zstd' && z.createZstdDecompress)) return decompressing(input, kind);
  const tool = kind === 'bzip2' ? 'bzip2' : kind === 'xz' ? 'xz' : 'zstd';
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.on('error', (e: NodeJS.ErrnoException) =>
    out.destroy(
      new ArchiveError(e.code === 'ENOENT' ? `${tool} is needed to unpack ${file} but is not installed` : e.message),
    ),
  );
  child.on('close', (code) => {
    if (code !== 0) out.destroy(new ArchiveError(`${tool} could not decompress ${file}: ${err.trim()}`));
  });
  input.pipe(child.stdin);
  child.stdout.pipe(out);
  return out;
}

async function firstBytes(s: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const c of s) {
    chunks.push(c as Buffer);
    have += (c as Buffer).length;
    if (have >= n) break;
  }
  s.destroy();
  return Buffer.concat(chunks).subarray(0, n);
}

/** What kind of archive a file is, or undefined when it is not one ADD unpacks. */
export async function archiveKind(file: string): Promise<ArchiveKind | undefined> {
  const fh = await open(fsPath(file));
  let head: Buffer;
  try {
    head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    head = head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const c = compressionOf(head);
  if (!c) return head.length === 512 && checksumOk(head) ? 'tar' : undefined;
  // Compressed: an archive only if what is inside is a tar.
  try {
    const inner = await firstBytes(openArchive(file, c), 512);
    return inner.length === 512 && checksumOk(inner) ? c : undefined;
  } catch {
    return undefined;
  }
}
