// Tar archives byte by byte, as an attacker writes them: any field any value (a size of "abc", a whiteout of
// "..", a PAX record of megabytes), which no well-behaved writer (ours or GNU tar) would produce.
import { type TarHeader, TarWriter } from '../../src/layer/tar.js';

export interface RawEntry {
  name: string;
  /** the typeflag: '0' file, '5' directory, '2' symlink, '1' hard link, '3' char device, 'x' PAX, 'L' GNU long name… */
  flag?: string;
  body?: Buffer | string;
  /** the size field as written (default: the body's length in octal) */
  size?: string;
  mode?: string;
  uid?: string;
  mtime?: string;
  linkname?: string;
  /** raw PAX records (`key=value`), written as an 'x' header before the entry */
  pax?: Record<string, string | Buffer>;
  /** the checksum as written (default: the right one) */
  checksum?: string;
}

function field(b: Buffer, off: number, len: number, value: string): void {
  b.write(value.slice(0, len), off, len, 'latin1');
}

export function paxRecords(records: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const value = Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
    const rest = Buffer.byteLength(` ${k}=`) + value.length + 1;
    let len = rest + 1;
    while (String(len).length + rest !== len) len = String(len).length + rest;
    parts.push(Buffer.concat([Buffer.from(`${len} ${k}=`), value, Buffer.from('\n')]));
  }
  return Buffer.concat(parts);
}

function header(e: RawEntry, body: Buffer): Buffer {
  const b = Buffer.alloc(512);
  field(b, 0, 100, e.name);
  field(b, 100, 8, e.mode ?? '0000644\0');
  field(b, 108, 8, e.uid ?? '0000000\0');
  field(b, 116, 8, '0000000\0');
  field(b, 124, 12, e.size ?? `${body.length.toString(8).padStart(11, '0')}\0`);
  field(b, 136, 12, e.mtime ?? '14712345670\0');
  b.write('        ', 148, 'latin1');
  field(b, 156, 1, e.flag ?? '0');
  field(b, 157, 100, e.linkname ?? '');
  b.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  field(b, 148, 8, e.checksum ?? `${sum.toString(8).padStart(6, '0')}\0 `);
  return b;
}

const padTo512 = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** One entry's blocks (a PAX header first when it has records). */
export function rawEntry(e: RawEntry): Buffer {
  const parts: Buffer[] = [];
  if (e.pax) {
    const data = paxRecords(e.pax);
    parts.push(header({ name: 'PaxHeaders/x', flag: 'x' }, data), data, padTo512(data.length));
  }
  const body = e.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body);
  parts.push(header(e, body), body, padTo512(body.length));
  return Buffer.concat(parts);
}

/** A whole archive: the entries, then (unless `end` is false) the two zero blocks. */
export function rawTar(entries: RawEntry[], options: { end?: boolean } = {}): Buffer {
  return Buffer.concat([...entries.map(rawEntry), options.end === false ? Buffer.alloc(0) : Buffer.alloc(1024)]);
}

/** A well-formed archive of `entries` from hoist's own TarWriter (uncompressed). */
export async function writeTar(entries: [TarHeader, Buffer?][]): Promise<Buffer> {
  const w = new TarWriter();
  const out: Buffer[] = [];
  w.stream.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((r) => w.stream.on('end', r));
  for (const [h, b] of entries) await w.entry(h, b);
  await w.finish();
  await done;
  return Buffer.concat(out);
}
