// Cache keys: canonical, versioned, and pinned. A change to what goes into a key must bump cacheKeyVersion (so that
// no old record is ever taken for a hit); these golden values fail first when the encoding changes by accident.
import { createHash } from 'node:crypto';
import { baseKey, cacheKeyVersion, canonicalJSON, digestOfDescription, stepKey } from '../../src/cache/keys.js';

test('canonical JSON: object keys sorted at every level, undefined members left out, one encoding per value', () => {
  expect(canonicalJSON({ b: [1, { d: 2, c: undefined, a: 'x' }], a: null })).toBe('{"a":null,"b":[1,{"a":"x","d":2}]}');
  expect(canonicalJSON({ x: 1, y: 2 })).toBe(canonicalJSON({ y: 2, x: 1 }));
  // Values that a joined string would confuse stay apart.
  expect(canonicalJSON({ a: 'b,c' })).not.toBe(canonicalJSON({ a: 'b', c: undefined, d: 'c' }));
  expect(digestOfDescription({ args: ['a b'] })).not.toBe(digestOfDescription({ args: ['a', 'b'] }));
  expect(() => canonicalJSON({ n: Number.NaN })).toThrow();
});

test(`golden keys (scheme ${cacheKeyVersion})`, () => {
  const scratch = baseKey({ kind: 'scratch' });
  expect(scratch).toBe('sha256:40c7b33fdc196062593849c495b47333caa143f49fc63f5db0c042f51d4ebce8');
  expect(baseKey({ kind: 'scratch' }, 1000)).toBe(
    'sha256:8262fd348fec56f7e207b09b0320bc828e2870c0dfbd30c6e3d27b946b09ca0c',
  );
  expect(baseKey({ kind: 'image', manifest: `sha256:${'a'.repeat(64)}` })).toBe(
    'sha256:a2bc0e2946c3a2907248750cf8662711b0f3a506bfd9443e813b022be7541d47',
  );
  expect(stepKey(scratch, { op: { kind: 'mkdir', path: '/app' } })).toBe(
    'sha256:d794a6c227d1a8beb441cc98cf3aea9906a907f78a3ac45c2bfaaf21fc2e78c3',
  );
});

test('a key depends on its parent, its step and the scheme', () => {
  const a = baseKey({ kind: 'scratch' });
  const b = baseKey({ kind: 'image', manifest: `sha256:${'a'.repeat(64)}` });
  expect(stepKey(a, { op: 1 })).not.toBe(stepKey(b, { op: 1 }));
  expect(stepKey(a, { op: 1 })).not.toBe(stepKey(a, { op: 2 }));
  // a RUN names its platform (the solver puts it in the step): the same step on another platform is another key
  expect(stepKey(a, { op: 1, platform: 'linux/amd64' })).not.toBe(stepKey(a, { op: 1, platform: 'linux/arm64' }));
  expect(digestOfDescription({ x: 1 })).not.toBe(`sha256:${createHash('sha256').update('{"x":1}').digest('hex')}`);
});
