// COPY and ADD in two parts. The selection finds what the sources name (the context through .dockerignore, a stage's
// or image's filesystem, downloads, heredoc files): what the step's cache key hashes. The copy then unpacks local
// archives and plans all of it onto the image as BuildKit's copy places it (copy-plan.ts), written as a layer.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { chmod as chmodFile, type FileHandle, lstat, open, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ChmodFn, parseChmod } from '../../dockerfile/chmod.js';
import { cleanPath, IgnoreMatcher, parseDockerignore } from '../../dockerfile/dockerignore.js';
import { type CopyOp, isURL } from '../../dockerfile/translate.js';
import { CompressionError } from '../../layer/compression.js';
import { extractLayer } from '../../layer/extract.js';
import { FsIndex } from '../../layer/fs-index.js';
import { fsPath } from '../../layer/names.js';
import { TarError, type TarHeader } from '../../layer/tar.js';
import { cleanEntryName } from '../../layer/rooted.js';
import { writeLayer } from '../../layer/writer.js';
import { ArchiveError, type ArchiveKind, archiveKind, openArchive } from '../archive.js';
import { BuildContext, ContextError, type ContextPath } from '../context.js';
import { type CopySource, planCopy } from '../copy-plan.js';
import { download } from '../http-source.js';
import { readImageFiles } from '../state.js';
import { needsLookup, type Owner, resolveOwner } from '../users.js';
import { type OpContext, type OpResult, withHint } from './op.js';
import { timed } from '../../profile.js';
import type { FileDigests } from '../../store/file-digests.js';

/** A source as selected: a path (with what is below a directory), or a local archive ADD unpacks. */
interface Selected extends CopySource {
  archive?: ArchiveKind;
  /** a download the server gave no Last-Modified for: it gets the build's time when copied */
  undated?: boolean;
}

/** What a COPY's sources name (heredoc files are not in it: they are written when the step runs, with its time). */
export interface CopySelection {
  sources: Selected[];
  /** the newest modification time of the context's files selected (another stage's do not count) */
  newest: number;
}

export async function selectCopy(op: CopyOp, x: OpContext): Promise<CopySelection> {
  // a named directory context (--build-context) is read as the build context is: owners 0:0, its files' times count
  const fromContext = op.from.kind === 'context' || op.from.kind === 'local';
  const from = op.from.kind === 'context' ? x.context : await x.sourceFiles(op.from);
  const sources: Selected[] = [];
  try {
    for (const s of op.sources) {
      if (isURL(s)) {
        const dir = await x.scratchDir();
        const { file, dated } = await download(s, dir, { checksum: op.checksum });
        sources.push({
          path: (await BuildContext.plain(dir).resolve(path.basename(file)))[0],
          ...(dated ? {} : { undated: true }),
        });
        continue;
      }
      if (op.parents && s.slice(s.indexOf('/./') + 1).includes('**')) {
        sources.push(
          ...(await selectParentsPattern(from, s, !fromContext && op.chown === undefined)).map((x) => ({
            ...x,
            socketsAsFiles: fromContext,
          })),
        );
        continue;
      }
      for (const p of await from.resolve(s)) {
        const archive = op.add && fromContext && p.stats.isFile() ? await archiveKind(p.abs) : undefined;
        if (archive) {
          // Unpacked files keep the archive's owners unless --chown is given (BuildKit's unpack: ChownOpts from it).
          sources.push({ path: p, archive, keepOwner: op.chown === undefined });
          continue;
        }
        const pivot = s.indexOf('/./');
        const parentsPath =
          pivot >= 0
            ? path.posix.relative(cleanPath(s.slice(0, pivot).replace(/^\/+/, '') || '.').replace(/^\.$/, ''), p.rel)
            : undefined;
        // A stage's or image's files keep their owners unless --chown says otherwise (BuildKit copies them with their
        // uid/gid); the context's become 0:0.
        sources.push({
          path: p,
          keepOwner: !fromContext && op.chown === undefined,
          children: p.stats.isDirectory() ? await from.walk(p) : undefined,
          parentsPath,
          socketsAsFiles: fromContext,
        });
      }
    }
  } catch (e) {
    if (e instanceof ContextError && fromContext) throw withHint(e, `the context is ${from.dir}`);
    throw e;
  }
  let newest = 0;
  if (fromContext)
    for (const s of sources)
      if (!s.undated)
        for (const p of [s.path, ...(s.children ?? [])]) newest = Math.max(newest, Math.floor(p.stats.mtimeMs / 1000));
  return { sources, newest };
}

/**
 * `COPY --parents DIR/./PATTERN` where the pattern has `**`: BuildKit copies DIR's contents through an include
 * pattern (dockerfile2llb convert_copy.go: IncludePatterns, matched as .dockerignore patterns are, where `**` is any
 * number of directories), so each path below DIR that the pattern matches is copied with its path kept (a matched
 * directory with all below it, a matched symlink as the link). Without a `/./` pivot DIR is the root. A pattern that
 * matches nothing copies nothing.
 */
async function selectParentsPattern(from: BuildContext, source: string, keepOwner: boolean): Promise<Selected[]> {
  const cut = source.indexOf('/./');
  const matcher = new IgnoreMatcher(
    parseDockerignore(cleanPath((cut >= 0 ? source.slice(cut + 3) : source).replace(/^\/+/, ''))),
  );
  const out: Selected[] = [];
  for (const root of await from.resolve(cut >= 0 ? source.slice(0, cut) || '/' : '/')) {
    if (!root.stats.isDirectory()) continue;
    const below = await from.walk(root);
    const relBelow = (p: ContextPath) => (root.rel ? p.rel.slice(root.rel.length + 1) : p.rel);
    let taken: string | undefined;
    for (const p of below) {
      const rel = relBelow(p);
      if (taken !== undefined && rel.startsWith(`${taken}/`)) continue;
      if (!matcher.excludes(rel)) continue;
      // A matched link is copied as a link, as what lies below the pivot is (walk never follows one).
      const isDir = p.stats.isDirectory();
      if (isDir) taken = rel;
      out.push({
        path: p,
        keepOwner,
        parentsPath: rel,
        children: isDir ? below.filter((c) => c.rel.startsWith(`${p.rel}/`)) : undefined,
      });
    }
  }
  return out;
}

/**
 * The content the selection copies, hashed as the cache key needs it: per path its name, type, mode, link target
 * and a file's sha256, owners where they are kept (a stage's files), never times (BuildKit's content hash leaves
 * them out). With `digests` (the context's, src/store/file-digests.ts), a file whose stat has not changed since it
 * was hashed is not read again.
 */
export async function digestSelection(selection: CopySelection, digests?: FileDigests): Promise<string> {
  const h = createHash('sha256');
  const readAt = Date.now();
  // What is hashed, in order: each source's line, then each path's line and a file's digest. A small file is read
  // on the spot (open, read, close: what a checkout just wrote is in the page cache, and a read through the thread
  // pool costs more than the read itself: 300 source files 30 ms against 5 ms); files up to 1 MiB are read ahead, a
  // window of them at once, and hashed in order; a big one is streamed when its turn comes.
  const items: { text: string; file?: string; stats?: Stats; known?: string; size: number }[] = [];
  const add = (p: ContextPath, keepOwner: boolean) => {
    const st = p.stats;
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : 'other';
    const text = `${JSON.stringify([p.rel, type, st.mode & 0o7777, keepOwner ? [st.uid, st.gid] : null, p.linkname ?? null, type === 'file' ? st.size : 0])}\n`;
    items.push({
      text,
      size: st.size,
      ...(type === 'file' ? { file: p.abs, stats: st, known: digests?.get(st) } : {}),
    });
  };
  for (const s of selection.sources) {
    items.push({
      text: JSON.stringify({ source: s.path.rel, archive: s.archive ?? null, parents: s.parentsPath ?? null }),
      size: 0,
    });
    add(s.path, s.keepOwner === true);
    for (const c of s.children ?? []) add(c, s.keepOwner === true);
  }
  const small = (i: number) =>
    items[i].file !== undefined &&
    items[i].known === undefined &&
    items[i].size > readNowLimit &&
    items[i].size <= readAheadLimit;
  const ahead = new Map<number, Promise<Buffer>>();
  let next = 0;
  const fill = (from: number) => {
    for (next = Math.max(next, from); next < items.length && ahead.size < readAheadWindow; next++) {
      if (!small(next)) continue;
      const read = readRegular(items[next].file as string);
      read.catch(() => undefined); // awaited in its turn
      ahead.set(next, read);
    }
  };
  // Reads on the spot hold the main thread: every few milliseconds the rest of the build (the bases' resolution,
  // which this runs beside) gets its turn.
  let held = performance.now();
  for (let i = 0; i < items.length; i++) {
    if (performance.now() - held > 4) {
      await new Promise((r) => setImmediate(r));
      held = performance.now();
    }
    fill(i + 1);
    const item = items[i];
    h.update(item.text);
    if (item.file === undefined) continue;
    if (item.known !== undefined) {
      h.update(Buffer.from(item.known, 'hex'));
      continue;
    }
    const fh = createHash('sha256');
    const read = ahead.get(i);
    ahead.delete(i);
    if (read) fh.update(await read);
    else if (item.size <= readNowLimit) readNow(item.file, fh);
    else await streamRegular(item.file, fh);
    const sum = fh.digest();
    h.update(sum);
    digests?.set(item.stats as Stats, sum.toString('hex'), readAt);
  }
  return `sha256:${h.digest('hex')}`;
}

/** files read whole ahead of their turn when hashing a selection: up to this size, this many at once */
const readAheadLimit = 1 << 20;
const readAheadWindow = 32;
/** files read on the main thread when their turn comes: up to this size (what they hold now, read to its end) */
const readNowLimit = 64 << 10;
const readNowBuffer = Buffer.allocUnsafe(readNowLimit);

// Every file is opened as the walk saw it: a regular file at that path, not through a link put there since (the last
// component is not followed; the walk resolved the rest inside the root), and never waited on as a FIFO would be.
const regularFlags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** What a file that changed kind after the walk is: a clear error, not an errno. */
function changedKind(file: string, e?: unknown): Error {
  if (e !== undefined && (e as NodeJS.ErrnoException).code !== 'ELOOP') return e as Error;
  const now = e === undefined ? 'is no longer a regular file' : 'is now a symbolic link';
  return new ContextError(
    `${file} ${now}: it changed while the build read the context; build again once nothing is writing to it`,
  );
}

/** Reads a small file into the hash, on the main thread. */
function readNow(file: string, into: Hash): void {
  let fd: number;
  try {
    fd = openSync(fsPath(file), regularFlags);
  } catch (e) {
    throw changedKind(file, e);
  }
  try {
    if (!fstatSync(fd).isFile()) throw changedKind(file);
    for (let n: number; (n = readSync(fd, readNowBuffer, 0, readNowBuffer.length, null)) > 0; )
      into.update(readNowBuffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** The file opened as a regular file (else the error why not), for `use`. */
async function withRegular<T>(file: string, use: (fh: FileHandle) => Promise<T>): Promise<T> {
  const fh = await open(fsPath(file), regularFlags).catch((e: unknown) => {
    throw changedKind(file, e);
  });
  try {
    if (!(await fh.stat()).isFile()) throw changedKind(file);
    return await use(fh);
  } finally {
    await fh.close();
  }
}

const readRegular = (file: string): Promise<Buffer> => withRegular(file, (fh) => fh.readFile());

function streamRegular(file: string, into: Hash): Promise<void> {
  return withRegular(file, async (fh) => {
    for await (const chunk of fh.createReadStream({ autoClose: false })) into.update(chunk as Buffer);
  });
}

export async function execCopy(op: CopyOp, x: OpContext, selected?: CopySelection): Promise<OpResult> {
  const selection = selected ?? (await selectCopy(op, x));
  const sources: CopySource[] = [];
  for (const s of selection.sources) {
    if (s.undated) {
      // A download without a Last-Modified has the build's time so far.
      const t = x.sourceDateEpoch ?? x.time;
      await utimes(fsPath(s.path.abs), t, t);
      sources.push({ ...s, path: { ...s.path, stats: await lstat(fsPath(s.path.abs)) } });
      continue;
    }
    if (!s.archive) {
      sources.push(s);
      continue;
    }
    // A local archive is unpacked into the destination, like `tar -x` (owners and times from the archive).
    const dir = await x.scratchDir();
    const headers: TarHeader[] = [];
    try {
      await extractLayer(openArchive(s.path.abs, s.archive), dir, { whiteouts: 'none', headers });
    } catch (e) {
      if (e instanceof TarError || e instanceof CompressionError || e instanceof ArchiveError)
        throw new ArchiveError(`cannot unpack ${s.path.rel}: ${e.message}`);
      throw e;
    }
    const unpacked = BuildContext.plain(dir);
    const top = (await unpacked.resolve('.'))[0];
    const archived = new Set(headers.map((h) => cleanEntryName(h.name)).filter(Boolean));
    sources.push({
      path: { ...top, rel: '' },
      keepOwner: s.keepOwner,
      children: await unpacked.walk(top),
      unpacked: true,
      archived,
    });
  }
  if (op.inline.length > 0) {
    // Heredoc sources: files named after their delimiter, 0644, with the build's time so far.
    const dir = await x.scratchDir();
    const inlineRoot = BuildContext.plain(dir);
    const mtime = x.sourceDateEpoch ?? x.time;
    for (const f of op.inline) {
      const file = path.join(dir, f.name);
      await writeFile(file, f.data, { mode: 0o644 });
      await chmodFile(file, 0o644);
      await utimes(file, mtime, mtime);
      sources.push({ path: (await inlineRoot.resolve(f.name))[0] });
    }
  }
  // The stage's time is the newest of its inputs: the context's files count, another stage's do not.
  const time = Math.max(x.time, selection.newest);
  const owner = op.chown === undefined ? undefined : await ownerOf(op.chown, x);
  const chmod: ChmodFn | undefined = op.chmod === undefined ? undefined : parseChmod(op.chmod);
  const exclude = op.exclude.length ? new IgnoreMatcher(op.exclude.flatMap((p) => parseDockerignore(p))) : undefined;
  // --link: the layer is made on an empty filesystem, as BuildKit makes it, so it does not depend on the base (and
  // the base's layers need not be fetched). Otherwise the destination is looked up in the image.
  const target = op.link ? new FsIndex() : await x.state.fs(x.store);
  const entries = planCopy(sources, {
    dest: op.dest,
    workdir: op.workdir,
    owner,
    chmod,
    created: x.sourceDateEpoch ?? time,
    fs: target,
    parents: op.parents,
    exclude,
  });
  return {
    layer: await timed('layer', () =>
      writeLayer(x.store, entries, { sourceDateEpoch: x.sourceDateEpoch, level: x.layerLevel }),
    ),
    time,
  };
}

/** --chown (or USER for WORKDIR) as uid/gid: numbers as they are, names from the image's /etc/passwd and /etc/group. */
export async function ownerOf(spec: string | undefined, x: Pick<OpContext, 'state' | 'store'>): Promise<Owner> {
  if (!spec) return { uid: 0, gid: 0 };
  if (!needsLookup(spec)) return resolveOwner(spec, {});
  const files = await readImageFiles(x.state, x.store, ['/etc/passwd', '/etc/group']);
  return resolveOwner(spec, {
    passwd: files.get('/etc/passwd')?.toString('utf8'),
    group: files.get('/etc/group')?.toString('utf8'),
  });
}
