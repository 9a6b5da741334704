// What the filesystem of an image holds, path by path (type, mode, owner, link target), without unpacking it:
// the layers' tar headers applied in order, whiteouts included. The builder asks it whether a directory exists
// (WORKDIR, COPY destinations) and reads single files (/etc/passwd for --chown names) from the layer that last
// wrote them.
import type { Readable } from 'node:stream';
import { cleanEntryName, opaqueWhiteout, whiteoutPrefix } from '../layer/extract.js';
import { decompressed } from '../layer/compression.js';
import { readTar, type TarHeader } from '../layer/tar.js';

export interface IndexedEntry {
  header: TarHeader;
  /** which layer (index) last wrote it */
  layer: number;
}

export class FsIndex {
  readonly entries = new Map<string, IndexedEntry>();

  clone(): FsIndex {
    const c = new FsIndex();
    for (const [k, v] of this.entries) c.entries.set(k, v);
    return c;
  }

  /** Applies one layer (compressed or not) on top. */
  async apply(blob: Readable, layer: number): Promise<void> {
    const { stream } = await decompressed(blob);
    const opaque: string[] = [];
    const added = new Set<string>();
    for await (const { header, body } of readTar(stream)) {
      body.resume();
      const name = cleanEntryName(header.name);
      if (!name) continue;
      const slash = name.lastIndexOf('/');
      const dir = slash < 0 ? '' : name.slice(0, slash);
      const base = name.slice(slash + 1);
      if (base === opaqueWhiteout) {
        opaque.push(dir);
        continue;
      }
      if (base.startsWith(whiteoutPrefix)) {
        this.remove(dir ? `${dir}/${base.slice(whiteoutPrefix.length)}` : base.slice(whiteoutPrefix.length));
        continue;
      }
      if (header.type !== 'directory' || this.entries.get(name)?.header.type !== 'directory') this.remove(name);
      this.entries.set(name, { header: { ...header, name }, layer });
      added.add(name);
    }
    // An opaque directory hides what lower layers had below it, whatever its position in the tar.
    for (const dir of opaque) {
      for (const p of [...this.entries.keys()]) {
        if (p.startsWith(dir ? `${dir}/` : '') && p !== dir && !added.has(p)) this.entries.delete(p);
      }
    }
  }

  private remove(p: string): void {
    this.entries.delete(p);
    const prefix = `${p}/`;
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.entries.delete(k);
  }

  /** The entry at an absolute or relative path, following symlinks in its parents (not the last component). */
  lookup(p: string): IndexedEntry | undefined {
    return this.entries.get(this.resolve(p));
  }

  /** The path with symlinked parents resolved inside the image (as extraction would), without the leading '/'. */
  resolve(p: string, followLast = false): string {
    const pending = cleanEntryName(p).split('/').filter(Boolean);
    const done: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === '..') {
        done.pop();
        continue;
      }
      const here = [...done, part].join('/');
      const e = this.entries.get(here);
      if (e?.header.type === 'symlink' && (pending.length > 0 || followLast) && hops++ < 40) {
        const target = e.header.linkname ?? '';
        if (target.startsWith('/')) done.length = 0;
        pending.unshift(...target.split('/').filter(Boolean));
        continue;
      }
      done.push(part);
    }
    return done.join('/');
  }

  isDirectory(p: string): boolean {
    return this.entries.get(this.resolve(p, true))?.header.type === 'directory';
  }
}
