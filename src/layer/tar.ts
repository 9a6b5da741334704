// Tar archives, read and written as streams. The reader understands ustar, PAX extended headers (path, linkpath,
// size, uid/gid, mtime, xattrs as SCHILY.xattr.*) and GNU long names; the writer emits PAX where ustar cannot hold
// a value, with numeric owners and no user names (DESIGN: reproducible layer tars).
import { Readable, Transform, type TransformCallback } from 'node:stream';

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch (fractional from PAX) */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer>;
}

export class TarError extends Error {
  override readonly name = 'TarError';
}

const block = 512;
const typeFlags: Record<string, EntryType> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'directory', '2': 'symlink', '1': 'hardlink', '3': 'char', '4': 'block', '6': 'fifo' };
const flagOf: Record<EntryType, string> = { file: '0', directory: '5', symlink: '2', hardlink: '1', char: '3', block: '4', fifo: '6' };

function readString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function readNumber(buf: Buffer, off: number, len: number): number {
  // GNU base-256 for values that do not fit in octal.
  if (buf[off] & 0x80) {
    let v = buf[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[off + i];
    return v;
  }
  const s = readString(buf, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** Whether a 512-byte block is a tar header with a valid checksum. */
export function checksumOk(h: Buffer): boolean {
  if (h.length < block) return false;
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === readNumber(h, 148, 8);
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.toString('ascii', i, sp), 10);
    if (!(len > 0) || i + len > data.length) throw new TarError('malformed PAX header record');
    const rec = data.subarray(sp + 1, i + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1));
    i += len;
  }
  return out;
}

export interface TarEntry {
  header: TarHeader;
  /** the entry's content; must be consumed (or resumed) before the next entry arrives */
  body: Readable;
}

/**
 * Reads a tar stream entry by entry: `for await (const { header, body } of readTar(stream))`. Each body must be
 * read to its end (or `body.resume()`) before asking for the next entry.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<TarEntry> {
  const it = source[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n && !ended) {
      const r = await it.next();
      if (r.done) ended = true;
      else {
        const v = r.value;
        const b = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
        buf = buf.length === 0 ? b : Buffer.concat([buf, b]);
      }
    }
    return buf.length >= n;
  };
  const take = async (n: number): Promise<Buffer> => {
    if (!(await fill(n))) throw new TarError('unexpected end of tar archive');
    const out = buf.subarray(0, n);
    buf = buf.subarray(n);
    return out;
  };
  let pax = new Map<string, Buffer>();
  let globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    if (!(await fill(block))) {
      if (buf.length === 0) return; // archives cut after the last entry are accepted, as GNU tar does
      throw new TarError('unexpected end of tar archive');
    }
    const h = await take(block);
    if (h.every((b) => b === 0)) {
      // The end. What follows (a second zero block, record padding) is read too, so that a stream that verifies
      // its digest at its end gets to check it.
      buf = Buffer.alloc(0);
      while (!(await it.next()).done);
      return;
    }
    if (!checksumOk(h)) throw new TarError('invalid tar header checksum: the archive is corrupt or not a tar');
    const flag = String.fromCharCode(h[156]);
    let size = readNumber(h, 124, 12);
    const padded = (n: number) => Math.ceil(n / block) * block;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const data = (await take(padded(size))).subarray(0, size);
      if (flag === 'x') pax = new Map([...pax, ...parsePax(data)]);
      else if (flag === 'g') globalPax = new Map([...globalPax, ...parsePax(data)]);
      else if (flag === 'L') longName = readString(data, 0, data.length);
      else longLink = readString(data, 0, data.length);
      continue;
    }
    const all = new Map([...globalPax, ...pax]);
    const prefix = readString(h, 345, 155);
    let name = readString(h, 0, 100);
    if (prefix && h.toString('ascii', 257, 262) === 'ustar') name = `${prefix}/${name}`;
    name = all.get('path')?.toString('utf8') ?? longName ?? name;
    const type = typeFlags[flag];
    if (!type) throw new TarError(`unsupported tar entry type ${JSON.stringify(flag)} for ${JSON.stringify(name)}`);
    if (all.has('size')) size = Number(all.get('size')?.toString());
    const header: TarHeader = {
      name,
      type,
      mode: readNumber(h, 100, 8) & 0o7777,
      uid: all.has('uid') ? Number(all.get('uid')?.toString()) : readNumber(h, 108, 8),
      gid: all.has('gid') ? Number(all.get('gid')?.toString()) : readNumber(h, 116, 8),
      size: type === 'file' ? size : 0,
      mtime: all.has('mtime') ? Number(all.get('mtime')?.toString()) : readNumber(h, 136, 12),
    };
    const link = all.get('linkpath')?.toString('utf8') ?? longLink ?? readString(h, 157, 100);
    if (type === 'symlink' || type === 'hardlink') header.linkname = link;
    if (type === 'char' || type === 'block') {
      header.devmajor = readNumber(h, 329, 8);
      header.devminor = readNumber(h, 337, 8);
    }
    for (const [k, v] of all) {
      if (k.startsWith('SCHILY.xattr.')) (header.xattrs ??= {})[k.slice(13)] = v;
    }
    pax = new Map();
    longName = longLink = undefined;
    // The body: exactly `size` bytes (hard links and directories carry none), pulled only as fast as it is read.
    let remaining = type === 'file' ? size : 0;
    let inflight: Promise<void> | undefined;
    let wanted = false;
    const pull = async () => {
      for (;;) {
        if (remaining === 0) {
          body.push(null);
          return;
        }
        if (buf.length === 0 && !(await fill(1))) throw new TarError(`unexpected end of tar archive inside ${JSON.stringify(name)}`);
        const n = Math.min(remaining, buf.length);
        const chunk = buf.subarray(0, n);
        buf = buf.subarray(n);
        remaining -= n;
        if (!body.push(chunk) || body.destroyed) return;
      }
    };
    // One pull at a time; a read() that arrives while one runs is remembered and served when it ends (dropping
    // it would leave the stream waiting for data nobody fetches).
    const start = () => {
      if (inflight) {
        wanted = true;
        return;
      }
      inflight = pull()
        .catch((e: Error) => void body.destroy(e))
        .finally(() => {
          inflight = undefined;
          if (wanted && !body.destroyed && !body.readableEnded) {
            wanted = false;
            start();
          }
        });
    };
    const body: Readable = new Readable({ read: start });
    yield { header, body };
    // Whatever the consumer left unread is skipped.
    while (inflight) await inflight;
    if (!body.destroyed) body.destroy();
    while (remaining > 0) {
      if (buf.length === 0 && !(await fill(1))) throw new TarError(`unexpected end of tar archive inside ${JSON.stringify(name)}`);
      const n = Math.min(remaining, buf.length);
      buf = buf.subarray(n);
      remaining -= n;
    }
    const pad = padded(header.type === 'file' ? size : 0) - (header.type === 'file' ? size : 0);
    if (pad) await take(pad);
  }
}

function octal(value: number, len: number): string {
  return value.toString(8).padStart(len - 1, '0') + '\0';
}

function paxRecord(key: string, value: string | Buffer): Buffer {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  const rest = Buffer.byteLength(` ${key}=`) + v.length + 1;
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), v, Buffer.from('\n')]);
}

function rawHeader(h: TarHeader, name: string, linkname: string, flag: string, size: number): Buffer {
  const b = Buffer.alloc(block);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(h.mode & 0o7777, 8), 100, 'ascii');
  b.write(octal(Math.min(h.uid, 0o7777777), 8), 108, 'ascii');
  b.write(octal(Math.min(h.gid, 0o7777777), 8), 116, 'ascii');
  b.write(octal(size, 12), 124, 'ascii');
  b.write(octal(Math.max(0, Math.min(Math.floor(h.mtime), 0o77777777777)), 12), 136, 'ascii');
  b.write('        ', 148, 'ascii');
  b.write(flag, 156, 'ascii');
  b.write(linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 'binary');
  b.write(octal(h.devmajor ?? 0, 8), 329, 'ascii');
  b.write(octal(h.devminor ?? 0, 8), 337, 'ascii');
  let sum = 0;
  for (let i = 0; i < block; i++) sum += b[i];
  b.write(octal(sum, 7) + ' ', 148, 'ascii');
  return b;
}

/** The header blocks of one entry: a PAX header first when a value does not fit ustar. */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const size = h.type === 'file' ? h.size : 0;
  const link = h.linkname ?? '';
  const ascii = (s: string) => /^[\x20-\x7e]*$/.test(s);
  if (Buffer.byteLength(h.name) > 100 || !ascii(h.name)) records.push(paxRecord('path', h.name));
  if (Buffer.byteLength(link) > 100 || !ascii(link)) records.push(paxRecord('linkpath', link));
  if (size > 0o77777777777) records.push(paxRecord('size', String(size)));
  if (h.uid > 0o7777777) records.push(paxRecord('uid', String(h.uid)));
  if (h.gid > 0o7777777) records.push(paxRecord('gid', String(h.gid)));
  if (h.mtime !== Math.floor(h.mtime) || h.mtime < 0 || h.mtime > 0o77777777777) records.push(paxRecord('mtime', String(h.mtime)));
  for (const k of Object.keys(h.xattrs ?? {}).sort()) records.push(paxRecord(`SCHILY.xattr.${k}`, (h.xattrs as Record<string, Buffer>)[k]));
  const main = rawHeader(h, truncateUtf8(h.name, 100), truncateUtf8(link, 100), flagOf[h.type], size);
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const paxName = `PaxHeaders/${truncateUtf8(h.name.split('/').filter(Boolean).pop() ?? 'x', 80)}`;
  const paxHeader = rawHeader({ ...h, mode: 0o644, uid: 0, gid: 0, type: 'file' }, paxName, '', 'x', data.length);
  return Buffer.concat([paxHeader, data, Buffer.alloc(pad(data.length)), main]);
}

function truncateUtf8(s: string, bytes: number): string {
  let out = s;
  while (Buffer.byteLength(out) > bytes) out = out.slice(0, -1);
  return out;
}

export function pad(n: number): number {
  return (block - (n % block)) % block;
}

export const tarEnd = Buffer.alloc(block * 2);

/**
 * Writes a tar archive: `entry(header, body?)` in the order given, `finish()` adds the end blocks. The output
 * is a stream with back-pressure: each `entry` resolves when its bytes were accepted downstream.
 */
export class TarWriter {
  readonly stream = new Transform({ transform: (c: Buffer, _e: BufferEncoding, cb: TransformCallback) => cb(null, c) });

  private write(b: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stream.destroyed) return reject(new TarError('tar output closed'));
      if (this.stream.write(b)) resolve();
      else this.stream.once('drain', resolve);
    });
  }

  async entry(header: TarHeader, body?: Buffer | AsyncIterable<Buffer | Uint8Array>): Promise<void> {
    await this.write(encodeHeader(header));
    if (header.type !== 'file') return;
    let written = 0;
    if (body !== undefined) {
      const chunks = Buffer.isBuffer(body) ? [body] : body;
      for await (const c of chunks) {
        written += c.length;
        if (written > header.size) throw new TarError(`${header.name}: more content than its size ${header.size}`);
        await this.write(Buffer.from(c));
      }
    }
    if (written !== header.size) throw new TarError(`${header.name}: ${written} bytes of content, its header says ${header.size}`);
    const p = pad(header.size);
    if (p) await this.write(Buffer.alloc(p));
  }

  async finish(): Promise<void> {
    await this.write(tarEnd);
    this.stream.end();
  }
}
