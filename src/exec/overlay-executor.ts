// RUN in the OCI runtime over an overlay (the executor where mounts are allowed): the image's layers, each an EROFS
// index of its tar mounted read-only (erofs-mount.ts; where that cannot be, unpacked once into the store as a
// snapshot directory with overlay whiteouts), stacked under a fresh upper dir; the upper dir is the step's layer,
// and becomes that layer's snapshot (nothing is unpacked twice).
import path from 'node:path';
import type { FsIndex } from '../layer/fs-index.js';
import { removeInside } from '../layer/pinned.js';
import type { Layer } from '../layer/layer.js';
import type { Platform } from '../image/platform.js';
import { ensureEmulation } from './emulation.js';
import { hashLayer, writeLayer } from '../layer/writer.js';
import { xattrTool, xattrToolMissing } from '../layer/xattr.js';
import { settleAll } from '../registry/limit.js';
import type { ImageState } from '../solver/state.js';
import type { ErofsLower, Snapshot, Store } from '../store/store.js';
import { upperDirEntries } from './diff.js';
import type { Executor, ProcessSpec, StepLayer, StepRoot } from './executor.js';
import { erofsChoice, ErofsMounts, ErofsUnavailableError, prestartHelper } from './erofs-mount.js';
import { ExecError, mountOverlay } from './overlay.js';
import { runContainer } from './runc.js';
import { runSpec } from './spec.js';
import { removedSource, stageInside, viewOf } from './staging.js';
import { extractState } from './unpack.js';

export class OverlayExecutor implements Executor {
  readonly name = 'runc';
  /** whether read-only overlays can be mounted here (undefined: not tried yet) */
  private overlayViews: boolean | undefined;
  readonly stage = stageInside;
  readonly viewOf = viewOf;

  constructor(
    private readonly store: Store,
    /** runc or crun */
    private readonly runtime: string,
  ) {
    // Opaque directories live in an xattr that only python3 or the attr tools read and write here; without them a
    // layer would silently bring back what a step deleted. Said when the executor is chosen, before any work.
    if (!xattrTool()) throw new ExecError(xattrToolMissing);
  }

  emulation(platform: Platform, register: boolean): Promise<string | undefined> {
    return ensureEmulation(platform, register);
  }

  /** RUN's lowers as EROFS indexes (erofs-mount.ts), or undefined: unpacked directories */
  private erofs: ErofsMounts | undefined;
  /** a kind HOIST_LOWERS forced: no falling back from it */
  private forced: string | undefined;
  private log: ((line: string) => void) | undefined;
  /** the mount of each layer's index (by diffID), for as long as the executor lives */
  private readonly mountedIndexes = new Map<string, Promise<string>>();

  /** Chooses the lowers' kind (EROFS indexes where they can be mounted), once, from what the kernel has. */
  prepare(scratch: string, log?: (line: string) => void): this {
    const choice = erofsChoice();
    this.log = log;
    this.forced = choice.forced;
    if (choice.mode)
      this.erofs = new ErofsMounts(choice.mode, path.join(scratch, `${process.pid}-erofs-${Date.now()}`));
    else log?.(`RUN's base layers are unpacked into directories: ${choice.why}`);
    return this;
  }

  private lower(l: Layer): Promise<Snapshot | ErofsLower> {
    return this.erofs ? this.store.lowerLayer(l) : this.store.snapshotLayer(l);
  }

  warm(layers: readonly Layer[]): Promise<unknown>[] {
    prestartHelper();
    return layers.map((l) => this.lower(l).catch(() => undefined));
  }

  /**
   * The lower dirs of an image's layers, bottom first: each layer's EROFS index mounted (once per build), or its
   * snapshot directory. A layer that comes again higher up (RUN steps that change nothing alike, the same COPY twice)
   * is one directory, and overlayfs refuses a directory twice among its lower dirs; its lower copy is left out,
   * which shows the same tree: the upper copy applies again all that layer holds (its files, whiteouts and opaque
   * directories) over whatever came between.
   */
  private async snapshots(state: ImageState): Promise<string[]> {
    try {
      return await this.lowerDirs(state);
    } catch (e) {
      if (!(e instanceof ErofsUnavailableError) || this.forced) throw e;
      // Confirmed by the first mount: no index can be mounted here. The layers are unpacked from now on (a step of
      // another stage may have found it out first).
      const gone = this.erofs;
      if (gone) {
        this.log?.(`RUN's base layers are unpacked into directories: ${e.message}`);
        this.erofs = undefined;
        this.mountedIndexes.clear();
        await gone.close();
      }
      return this.lowerDirs(state);
    }
  }

  private async lowerDirs(state: ImageState): Promise<string[]> {
    const lowers = await settleAll(state.layers.map((l) => this.lower(l)));
    const fresh: { diffID: string; lower: ErofsLower; done: (p: Promise<string>) => void }[] = [];
    const paths = lowers.map((lower, i) => {
      if ('path' in lower) return Promise.resolve(lower.path);
      const { diffID } = state.layers[i];
      let known = this.mountedIndexes.get(diffID);
      if (!known) {
        known = new Promise<string>((resolve, reject) =>
          fresh.push({ diffID, lower, done: (p) => p.then(resolve, reject) }),
        );
        known.catch(() => undefined);
        this.mountedIndexes.set(diffID, known);
      }
      return known;
    });
    if (fresh.length) {
      const mounting = (this.erofs as ErofsMounts).mount(fresh.map((f) => f.lower));
      mounting.catch(() => {
        for (const f of fresh) this.mountedIndexes.delete(f.diffID);
      });
      for (const [i, f] of fresh.entries()) f.done(mounting.then((dirs) => dirs[i]));
    }
    const out = await settleAll(paths);
    return out.filter((dir, i) => out.indexOf(dir, i + 1) < 0);
  }

  /** A read-only overlay of the snapshots; where overlayfs cannot be mounted, every layer unpacked into `dir`. */
  async view(state: ImageState, dir: string): Promise<{ path: string; release?: () => Promise<void> }> {
    if (state.layers.length > 0 && this.overlayViews !== false) {
      try {
        const m = await mountOverlay(await this.snapshots(state), dir, { readOnly: true });
        this.overlayViews = true;
        return { path: m.merged, release: () => m.release() };
      } catch (e) {
        if (!(e instanceof ExecError)) throw e;
        this.overlayViews = false;
      }
    }
    await extractState(this.store, state.layers, dir);
    return { path: dir };
  }

  async root(state: ImageState, _stage: number, scratch: string): Promise<StepRoot> {
    const mount = await mountOverlay(await this.snapshots(state), scratch);
    const store = this.store;
    return {
      path: mount.merged,
      run: async (spec: ProcessSpec, onOutput, signal) => {
        const mounts = spec.mounts.map((m) =>
          m.type === 'tmpfs'
            ? {
                destination: m.destination,
                type: 'tmpfs',
                source: 'tmpfs',
                options: ['nosuid', 'nodev', ...(m.size ? [`size=${m.size}`] : [])],
              }
            : {
                destination: m.destination,
                type: 'bind',
                source: m.source,
                options: ['rbind', m.readonly ? 'ro' : 'rw'],
              },
        );
        const result = await runContainer(
          this.runtime,
          runSpec({ ...spec, root: mount.merged, mounts }),
          scratch,
          onOutput,
          signal,
        );
        if (result.exitCode !== 0 && !signal.aborted) {
          const removed = removedSource(spec.mounts.flatMap((m) => (m.source ? [m.source] : [])));
          if (removed !== undefined)
            throw new ExecError(
              `a mount source, /${removed}, was removed by another step while this one started (a cache mount shared with a step that deletes it?); nothing of it was mounted`,
            );
        }
        return result;
      },
      async layer(
        lower: FsIndex,
        targets: readonly string[],
        options: { sourceDateEpoch?: number; level?: number },
      ): Promise<StepLayer> {
        const { entries, dropped } = await upperDirEntries(mount.upper, lower, targets);
        // A RUN that changes nothing still gets its (empty) layer, as current BuildKit's exporter keeps it
        // (testExportedHistory: RUN ["ls"] is a diff ID with empty_layer false); Docker 20.10's dropped it.
        if (entries.length === 0) return writeLayer(store, [], options);
        // Kept as a tar in stored blocks (a stage no image holds: level 0), nothing is left to compress: the tar is
        // hashed and stored in one pass. Else the tar is hashed now (its diffID names the snapshot, its headers index
        // it); compressing it is most of the work of writing a layer, and it goes on while the next steps run (as
        // BuildKit compresses lazily).
        const stored = options.level === 0 ? await writeLayer(store, entries, options) : undefined;
        const { diffID, headers } = stored ?? (await hashLayer(entries, options));
        // The upper dir, less what the layer leaves out, is already this layer unpacked in overlay form: it becomes
        // the layer's snapshot. Like BuildKit's snapshots, it keeps what only the exported tar drops (other xattrs;
        // times before SOURCE_DATE_EPOCH).
        await mount.unmount();
        // (the mount stubs the layer leaves out, removed through descriptors: nothing on the way is followed)
        for (const d of dropped.sort().reverse()) removeInside(mount.upper, d);
        // (its index first: no snapshot is ever there without what `hoist store check` holds it to)
        await store.keepLayerIndex(diffID, headers);
        await store.adoptSnapshot(diffID, mount.upper);
        if (stored) return stored;
        // The blob is written from the snapshot (the same files, where the upper dir went), checked against the diffID.
        const snapshot = store.snapshotPath(diffID);
        const moved = entries.map((e) =>
          e.content && 'path' in e.content
            ? { ...e, content: { path: path.join(snapshot, path.relative(mount.upper, e.content.path)) } }
            : e,
        );
        const written = writeLayer(store, moved, { ...options, diffID });
        written.catch(() => undefined); // the solver awaits it
        return { diffID, headers, written };
      },
      release: () => mount.release(),
    };
  }

  async close(): Promise<void> {
    this.mountedIndexes.clear();
    await this.erofs?.close();
  }
}
