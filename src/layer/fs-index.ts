// What the filesystem of an image holds, path by path (type, mode, owner, link target), without unpacking it:
// the layers' tar headers applied in order, whiteouts included. The builder asks it whether a directory exists
// (WORKDIR, COPY destinations) and reads single files (/etc/passwd for --chown names) from the layer that last
// wrote them.
import type { Readable } from 'node:stream';
import { opaqueWhiteout, whiteoutPrefix } from './extract.js';
import { cleanEntryName } from './rooted.js';
import { decompressed } from './compression.js';
import { scanTar, type TarHeader } from './tar.js';

export interface IndexedEntry {
  header: TarHeader;
  /** which layer (index) last wrote it */
  layer: number;
}

interface LayerPass {
  opaque: string[];
  added: Set<string>;
}

export class FsIndex {
  readonly entries = new Map<string, IndexedEntry>();
  /** the paths directly below each directory path (also one that has no entry of its own) */
  private readonly children = new Map<string, Set<string>>();

  clone(): FsIndex {
    const c = new FsIndex();
    for (const [k, v] of this.entries) c.entries.set(k, v);
    for (const [k, v] of this.children) c.children.set(k, new Set(v));
    return c;
  }

  /** The headers of one layer (compressed or not), read whole before any is applied: a layer that fails to read changes nothing. */
  static async readHeaders(blob: Readable): Promise<TarHeader[]> {
    const { stream } = await decompressed(blob);
    const headers: TarHeader[] = [];
    await scanTar(stream, (header) => void headers.push(header));
    return headers;
  }

  /** Applies a layer from its headers, as the builder has them when it has just written the layer. */
  applyHeaders(headers: Iterable<TarHeader>, layer: number): void {
    const pass: LayerPass = { opaque: [], added: new Set() };
    for (const h of headers) this.applyHeader(h, layer, pass);
    this.finish(pass);
  }

  private applyHeader(header: TarHeader, layer: number, pass: LayerPass): void {
    const name = cleanEntryName(header.name);
    if (!name) return;
    const slash = name.lastIndexOf('/');
    const dir = slash < 0 ? '' : name.slice(0, slash);
    const base = name.slice(slash + 1);
    if (base === opaqueWhiteout) {
      pass.opaque.push(dir);
      return;
    }
    if (base.startsWith(whiteoutPrefix)) {
      this.remove(dir ? `${dir}/${base.slice(whiteoutPrefix.length)}` : base.slice(whiteoutPrefix.length));
      return;
    }
    if (header.type !== 'directory' || this.entries.get(name)?.header.type !== 'directory') this.remove(name);
    this.set(name, { header: { ...header, name }, layer });
    pass.added.add(name);
  }

  /** An opaque directory hides what lower layers had below it, whatever its position in the tar. */
  private finish({ opaque, added }: LayerPass): void {
    for (const dir of opaque) {
      for (const p of this.below(dir)) if (!added.has(p)) this.entries.delete(p);
      for (const p of [...this.below(dir)].reverse()) {
        if (!this.entries.has(p) && !this.children.get(p)?.size) {
          this.children.delete(p);
          this.unlink(p);
        }
      }
    }
  }

  private set(p: string, e: IndexedEntry): void {
    this.entries.set(p, e);
    const slash = p.lastIndexOf('/');
    const parent = slash < 0 ? '' : p.slice(0, slash);
    let kids = this.children.get(parent);
    if (!kids) this.children.set(parent, (kids = new Set()));
    kids.add(p);
  }

  /** Forgets `p` as a child of its parent. */
  private unlink(p: string): void {
    const slash = p.lastIndexOf('/');
    this.children.get(slash < 0 ? '' : p.slice(0, slash))?.delete(p);
  }

  /** Every path below `dir`, deepest last. */
  private *below(dir: string): Generator<string> {
    for (const c of [...(this.children.get(dir) ?? [])]) {
      yield c;
      yield* this.below(c);
    }
  }

  /** Removes `p` and everything below it. */
  private remove(p: string): void {
    for (const c of [...this.below(p)]) {
      this.entries.delete(c);
      this.children.delete(c);
    }
    this.children.delete(p);
    this.entries.delete(p);
    this.unlink(p);
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
