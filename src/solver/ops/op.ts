// What an op may use of the build while it runs (the solver provides it), and what it gives back. An op never
// changes the stage's state itself: the solver applies its result (a layer or none, and the time it carries).
import type { StageSource } from '../../dockerfile/plan.js';
import type { LayerInProgress, WrittenLayer } from '../../layer/writer.js';
import type { RegistryClient } from '../../registry/client.js';
import type { Store } from '../../store/store.js';
import type { BuildContext } from '../context.js';
import type { ImageState } from '../state.js';
import type { SecretSource } from '../../exec/mounts.js';
import type { SshAgents } from '../../exec/ssh.js';
import type { SecretMask } from '../../exec/mask.js';

import type { Platform } from '../../image/platform.js';
import type { Executor } from '../../exec/executor.js';

import type { RunSandbox } from '../../exec/sandbox.js';

export interface OpContext {
  readonly store: Store;
  readonly client: RegistryClient;
  /** seconds; clamps file times */
  readonly sourceDateEpoch?: number;
  /** the deflate level of this stage's layers (layer/writer.ts LayerOptions.level); undefined: gzip's default */
  readonly layerLevel?: number;
  readonly context: BuildContext;
  /** the stage's image so far (its layers and filesystem index) */
  readonly state: ImageState;
  /** the stage's newest input time so far (seconds) */
  readonly time: number;
  readonly stageIndex: number;
  /** a fresh directory in the build's temp dir (removed when the build ends) */
  scratchDir(): Promise<string>;
  /**
   * What COPY --from and a mount's from= read: a stage's or an image's filesystem (a read-only directory), or a named
   * directory context (--build-context NAME=DIR), each with paths resolved inside it
   */
  sourceFiles(from: StageSource): Promise<BuildContext>;
  /** the build's executor of RUN steps (chosen at its first use) */
  executor(): Promise<Executor>;
  readonly secrets: ReadonlyMap<string, SecretSource>;
  readonly ssh: SshAgents;
  /** secret values handed to steps, masked in what they print */
  readonly mask: SecretMask;
  /** a line the step printed */
  output(line: string): void;
  /** a warning for the build's log (something of the store dropped, not the step's fault) */
  warn(message: string): void;
  /**
   * A RUN is about to mount the cache directory `dir` (made just now when `created`): a new one is filled from a
   * cache backend that keeps cache mounts, and the build notes what it held, to save it after the build if changed.
   */
  cacheMount(m: { name: string; id: string; dir: string; created: boolean }): Promise<void>;
  /** aborted when another step of the build failed: a running process is killed, nothing new starts */
  readonly signal: AbortSignal;
  /** the stage's platform (what its RUN steps run as: natively, or emulated) */
  readonly platform: Platform;
  /** register an emulator for a foreign platform's RUN when none is (--emulate) */
  readonly emulate: boolean;
  /** what every RUN gets (--add-host, --network, --shm-size, --ulimit) */
  readonly sandbox: RunSandbox;
}

export interface OpResult {
  /**
   * the layer written, or hashed with its blob still being written (a RUN's: compressed while the next steps run);
   * none: the step changed nothing (an empty_layer history entry)
   */
  layer?: WrittenLayer | LayerInProgress;
  /** the stage's newest input time after the step */
  time: number;
}

/** An error of a step with a hint for the user (the solver prints it under the Dockerfile line). */
export function withHint<E extends Error>(e: E, hint: string): E {
  (e as E & { hint?: string }).hint = hint;
  return e;
}
