// The digests of the context's files, remembered by what their stat says (BuildKit's contenthash keeps the same
// kind of cache, fed by the changes fsutil reports). A rebuild over an unchanged context then lstat()s its files
// (walking the context does that already) and reads none of them again: 20,000 files / 1 GB were 2 s of reading and
// hashing a rebuild.
//
// A remembered digest is taken only for the same file (device and inode) with the same size, modification time
// and change time. The change time is the kernel's: every write, truncate, rename onto, chmod or utimes moves it,
// and no caller can set it back, so a file whose content changed never matches. What the kernel cannot tell apart
// is two writes within one tick of its clock (a few ms): a digest is remembered only for a file whose change time
// is two seconds older than the moment it was read (git's "racily clean" index entries, the same cure), so a write
// after the read always has a later change time than the one remembered.
//
// What the kernel does not move either: a write through a shared memory map may leave both times as they were
// (tmpfs does, until the map is synced); a build whose context is written that way passes --no-cache, which reads
// every file again (docs/cache.md, "What a rebuild trusts").
//
// The file lives in the store, this machine's own (never exported to a cache, where a pull request could write
// it); a damaged or foreign file is ignored whole (the files are read again). Two builds saving at once: the last
// one's entries are kept (written to a temporary file and renamed, never half written).
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** [size, mtimeMs, ctimeMs, sha256 hex] */
type Entry = [number, number, number, string];

const version = 1;
/** a file is remembered only when its last change is this much older than its read */
export const racyMs = 2000;
/** past this many entries, only those of the last build are kept */
const maxEntries = 200_000;

export class FileDigests {
  private readonly used = new Map<string, Entry>();
  private dirty = false;

  private constructor(
    private readonly file: string,
    private readonly known: Map<string, Entry>,
  ) {}

  static fileIn(storeRoot: string): string {
    return path.join(storeRoot, 'file-digests.json');
  }

  /**
   * The digests remembered in a store (none when the file is missing, damaged or of another version); with `reread`
   * (--no-cache) none is taken and every file is read again, and what is read then is remembered afresh.
   */
  static async load(storeRoot: string, options: { reread?: boolean } = {}): Promise<FileDigests> {
    const file = FileDigests.fileIn(storeRoot);
    return new FileDigests(file, options.reread ? new Map() : parse(await readFile(file, 'utf8').catch(() => '')));
  }

  /** The remembered sha256 (hex) of the file these stats are of, if it is still the file that was hashed. */
  get(stats: Stats): string | undefined {
    const id = idOf(stats);
    const e = this.known.get(id);
    if (!e || e[0] !== stats.size || e[1] !== stats.mtimeMs || e[2] !== stats.ctimeMs) return undefined;
    this.used.set(id, e);
    return e[3];
  }

  /** Remembers a file's digest, read at `readAt` (ms) with these stats taken before the read. */
  set(stats: Stats, hex: string, readAt: number): void {
    if (!stats.isFile() || stats.ctimeMs > readAt - racyMs || stats.mtimeMs > readAt - racyMs) return;
    const id = idOf(stats);
    const e: Entry = [stats.size, stats.mtimeMs, stats.ctimeMs, hex];
    this.known.set(id, e);
    this.used.set(id, e);
    this.dirty = true;
  }

  /** Writes what changed (whole: a temporary file renamed over the old one). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const keep = this.known.size > maxEntries ? this.used : this.known;
    const tmp = `${this.file}.${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, JSON.stringify({ version, entries: Object.fromEntries(keep) }));
      await rename(tmp, this.file);
      this.dirty = false;
    } finally {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

const idOf = (st: Stats) => `${st.dev}:${st.ino}`;

function parse(text: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  if (!text) return out;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return out;
  }
  if (typeof v !== 'object' || v === null || (v as { version?: unknown }).version !== version) return out;
  const entries = (v as { entries?: unknown }).entries;
  if (typeof entries !== 'object' || entries === null) return out;
  for (const [id, e] of Object.entries(entries as Record<string, unknown>)) {
    const ok =
      /^\d+:\d+$/.test(id) &&
      Array.isArray(e) &&
      e.length === 4 &&
      e.slice(0, 3).every((n) => typeof n === 'number' && Number.isFinite(n)) &&
      typeof e[3] === 'string' &&
      /^[0-9a-f]{64}$/.test(e[3]);
    if (!ok) return new Map(); // a damaged file is not trusted in part
    out.set(id, e as Entry);
  }
  return out;
}
