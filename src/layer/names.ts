// File names are bytes, and nearly all of them UTF-8. One that is not (a Latin-1 `café.txt` from an old archive or
// checkout) is carried in a JS string with each byte UTF-8 cannot read as a lone surrogate U+DC80+byte (Python's
// "surrogateescape"), and turned back into exactly those bytes for every system call and every archive entry: the
// build sees, copies and writes the name the disk has, as docker build does (Node's own decoding would replace the
// bytes with U+FFFD and then name a file that does not exist).
import { readdirSync, readlinkSync } from 'node:fs';

const strict = new TextDecoder('utf-8', { fatal: true });
/** a lone low surrogate in the escape range: not the second half of a pair */
const escaped = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** A name's bytes as a string: UTF-8 where it is, each other byte escaped. */
export function nameFromBytes(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    // byte by byte below
  }
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i];
    const n = c < 0x80 ? 1 : (c & 0xe0) === 0xc0 ? 2 : (c & 0xf0) === 0xe0 ? 3 : (c & 0xf8) === 0xf0 ? 4 : 0;
    if (n > 0 && i + n <= bytes.length) {
      try {
        out += strict.decode(bytes.subarray(i, i + n));
        i += n;
        continue;
      } catch {
        // not a whole character: the byte is escaped
      }
    }
    out += String.fromCharCode(0xdc00 + c);
    i++;
  }
  return out;
}

/** The bytes a name (as nameFromBytes made it) stands for. */
export function nameToBytes(name: string): Buffer {
  if (!escaped.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const u = name.charCodeAt(i);
    const lone =
      u >= 0xdc80 && u <= 0xdcff && !(i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff);
    if (!lone) {
      run += name[i];
      continue;
    }
    if (run) parts.push(Buffer.from(run, 'utf8'));
    run = '';
    parts.push(Buffer.from([u - 0xdc00]));
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path for a system call: the string itself, or its bytes when it holds an escaped one. */
export function fsPath(p: string): string | Buffer {
  return escaped.test(p) ? nameToBytes(p) : p;
}

/** A directory's entries, each name as its bytes are. */
export function readdirNames(dir: string): string[] {
  return readdirSync(fsPath(dir), { encoding: 'buffer' }).map(nameFromBytes);
}

/** A symlink's target, as its bytes are. */
export function readlinkName(p: string): string {
  return nameFromBytes(readlinkSync(fsPath(p), { encoding: 'buffer' }));
}
