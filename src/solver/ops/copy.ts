// COPY and ADD: the sources (the context through .dockerignore, a stage's or image's filesystem, downloads, local
// archives unpacked, heredocs) planned onto the image as BuildKit's copy places them (copy-plan.ts), written as a
// layer.
import { chmod as chmodFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ChmodFn, parseChmod } from '../../dockerfile/chmod.js';
import { cleanPath, IgnoreMatcher, parseDockerignore } from '../../dockerfile/dockerignore.js';
import { type CopyOp, isURL } from '../../dockerfile/translate.js';
import { CompressionError } from '../../layer/compression.js';
import { extractLayer } from '../../layer/extract.js';
import { FsIndex } from '../../layer/fs-index.js';
import { TarError } from '../../layer/tar.js';
import { writeLayer } from '../../layer/writer.js';
import { ArchiveError, archiveKind, openArchive } from '../archive.js';
import { BuildContext, ContextError } from '../context.js';
import { type CopySource, planCopy } from '../copy-plan.js';
import { download } from '../http-source.js';
import { readImageFile } from '../state.js';
import { needsLookup, type Owner, resolveOwner } from '../users.js';
import { type OpContext, type OpResult, withHint } from './op.js';

export async function execCopy(op: CopyOp, x: OpContext): Promise<OpResult> {
  const fromContext = op.from.kind === 'context';
  const from = fromContext ? x.context : BuildContext.plain(await x.rootfs(op.from as Exclude<CopyOp['from'], { kind: 'context' }>));
  const sources: CopySource[] = [];
  try {
    for (const s of op.sources) {
      if (isURL(s)) {
        const dir = await x.scratchDir();
        const file = await download(s, dir, { checksum: op.checksum, fallbackTime: x.sourceDateEpoch ?? x.time });
        sources.push({ path: (await BuildContext.plain(dir).resolve(path.basename(file)))[0] });
        continue;
      }
      for (const p of await from.resolve(s)) {
        const kind = op.add && fromContext && p.stats.isFile() ? await archiveKind(p.abs) : undefined;
        if (kind) {
          // A local archive is unpacked into the destination, like `tar -x` (owners and times from the archive).
          const dir = await x.scratchDir();
          try {
            await extractLayer(openArchive(p.abs, kind), dir, { whiteouts: 'none' });
          } catch (e) {
            if (e instanceof TarError || e instanceof CompressionError || e instanceof ArchiveError) throw new ArchiveError(`cannot unpack ${p.rel}: ${e.message}`);
            throw e;
          }
          const unpacked = BuildContext.plain(dir);
          const top = (await unpacked.resolve('.'))[0];
          sources.push({ path: { ...top, rel: '' }, keepOwner: true, children: await unpacked.walk(top) });
          continue;
        }
        const pivot = s.indexOf('/./');
        const parentsPath = pivot >= 0 ? path.posix.relative(cleanPath(s.slice(0, pivot).replace(/^\/+/, '') || '.').replace(/^\.$/, ''), p.rel) : undefined;
        // A stage's or image's files keep their owners unless --chown says otherwise (BuildKit copies them with their
        // uid/gid); the context's become 0:0.
        sources.push({ path: p, keepOwner: !fromContext && op.chown === undefined, children: p.stats.isDirectory() ? await from.walk(p) : undefined, parentsPath });
      }
    }
  } catch (e) {
    if (e instanceof ContextError && fromContext) throw withHint(e, `the context is ${x.context.dir}`);
    throw e;
  }
  if (op.inline.length > 0) {
    // Heredoc sources: files named after their delimiter, 0644.
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
  let time = x.time;
  if (fromContext) for (const s of sources) for (const p of [s.path, ...(s.children ?? [])]) time = Math.max(time, Math.floor(p.stats.mtimeMs / 1000));
  const owner = op.chown === undefined ? undefined : await ownerOf(op.chown, x);
  const chmod: ChmodFn | undefined = op.chmod === undefined ? undefined : parseChmod(op.chmod);
  const exclude = op.exclude.length ? new IgnoreMatcher(op.exclude.flatMap((p) => parseDockerignore(p))) : undefined;
  // --link: the layer is made on an empty filesystem, as BuildKit makes it, so it does not depend on the base (and
  // the base's layers need not be fetched). Otherwise the destination is looked up in the image.
  const target = op.link ? new FsIndex() : await x.state.fs(x.store);
  const entries = planCopy(sources, { dest: op.dest, workdir: op.workdir, owner, chmod, created: x.sourceDateEpoch ?? time, fs: target, parents: op.parents, exclude });
  return { layer: await writeLayer(x.store, entries, { sourceDateEpoch: x.sourceDateEpoch }), time };
}

/** --chown (or USER for WORKDIR) as uid/gid: numbers as they are, names from the image's /etc/passwd and /etc/group. */
export async function ownerOf(spec: string | undefined, x: Pick<OpContext, 'state' | 'store'>): Promise<Owner> {
  if (!spec) return { uid: 0, gid: 0 };
  if (!needsLookup(spec)) return resolveOwner(spec, {});
  const read = async (f: string) => (await readImageFile(x.state, x.store, f))?.toString('utf8');
  return resolveOwner(spec, { passwd: await read('/etc/passwd'), group: await read('/etc/group') });
}
