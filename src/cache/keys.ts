// Cache keys (shared/DESIGN.md, "cache key"): what a step's result depends on, hashed. A key is the sha256 of the
// canonical JSON (object keys sorted, no whitespace) of a description that names the scheme's version, the key
// of what the step builds on, and the step's own description: so two different descriptions can never encode to
// the same bytes (kaniko's collisions came from joining strings), and a change of scheme changes every key.
import { createHash } from 'node:crypto';

/** Bumped whenever what goes into a key changes: an old record is then never taken for a hit. */
export const cacheKeyVersion = 'hoist.cache.v3';

/** JSON with object keys sorted at every level and `undefined` members left out: one value, one encoding. */
export function canonicalJSON(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonicalJSON: not a finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJSON(v))).join(',')}]`;
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJSON(v)}`).join(',')}}`;
}

export function digestOfDescription(description: unknown): string {
  return `sha256:${createHash('sha256')
    .update(canonicalJSON({ v: cacheKeyVersion, ...(description as object) }))
    .digest('hex')}`;
}

/**
 * The key a stage starts from: an empty filesystem, or an image by the manifest digest its tag resolved to; and
 * SOURCE_DATE_EPOCH when set, which changes every layer's file times (a stage from a stage has it in its parent).
 * An empty filesystem is the same for every platform (v2; v1 named the platform here): a stage FROM scratch that
 * only copies files is built once for all the platforms of a build, and a RUN names its platform in its own key.
 */
export function baseKey(
  base: { kind: 'scratch' } | { kind: 'image'; manifest: string },
  sourceDateEpoch?: number,
): string {
  return digestOfDescription({ base, sourceDateEpoch });
}

/** A step's key: the key it builds on and what the step is (its op's description, its inputs' keys or contents). */
export function stepKey(parent: string, step: object): string {
  return digestOfDescription({ parent, step });
}
