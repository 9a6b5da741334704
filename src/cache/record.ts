// A cache record: a step's key and its result, as BuildKit's records carry a result and its createdAt. The config
// and history are not in it: the translation replays them, so there is one source of truth for them.
import { isDigest } from '../image/digest.js';
import { layerCompression } from '../image/media-types.js';

export interface CacheRecord {
  key: string;
  /**
   * the layer the step wrote; absent for a step that changed nothing. `stored`: its blob holds the tar in stored
   * deflate blocks (a stage no image of its build held: layer/writer.ts LayerOptions.level), compressed again
   * before any image or cache publishes it; only the store's own records carry it
   */
  layer?: { mediaType: string; digest: string; size: number; diffID: string; stored?: true };
  /** the stage's newest input time after the step (seconds): the history's `created` comes from it */
  time: number;
  /**
   * the step's other keys with the same result (a COPY --from's content key beside its stage key): a build that
   * finds the step by this key exports those too, so that a rerun leaves a cache as good as the one it read
   */
  also?: string[];
}

const maxTime = 253402300799;

/** A record as stored or received, checked field by field; undefined when it is not one (never a half record). */
export function parseRecord(value: unknown): CacheRecord | undefined {
  const r = value as Partial<CacheRecord> | null;
  // A time a date can hold (up to 9999-12-31): one that cannot be written as `created` would fail the build.
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.key !== 'string' ||
    !isDigest(r.key) ||
    typeof r.time !== 'number' ||
    !Number.isFinite(r.time) ||
    r.time < 0 ||
    r.time > maxTime
  )
    return undefined;
  const also = Array.isArray(r.also)
    ? r.also.filter((k): k is string => typeof k === 'string' && isDigest(k) && k !== r.key).slice(0, 4)
    : [];
  const extra = also.length ? { also } : {};
  if (r.layer !== undefined) {
    const l = r.layer;
    if (
      typeof l !== 'object' ||
      l === null ||
      typeof l.mediaType !== 'string' ||
      layerCompression(l.mediaType) === undefined ||
      !isDigest(l.digest) ||
      !isDigest(l.diffID) ||
      !Number.isSafeInteger(l.size) ||
      l.size < 0
    )
      return undefined;
    return {
      key: r.key,
      time: r.time,
      layer: {
        mediaType: l.mediaType,
        digest: l.digest,
        size: l.size,
        diffID: l.diffID,
        ...(l.stored === true ? { stored: true as const } : {}),
      },
      ...extra,
    };
  }
  return { key: r.key, time: r.time, ...extra };
}
