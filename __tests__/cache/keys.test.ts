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

test('golden keys (scheme ' + cacheKeyVersion + ')', () => {
  const scratch = baseKey({ kind: 'scratch', platform: 'linux/amd64' });
  expect(scratch).toBe('sha256:e8d252a3074f3f0fe91a80ab4f4b1fa15158781334eb73f666366ce017acb756');
  expect(baseKey({ kind: 'scratch', platform: 'linux/amd64' }, 1000)).toBe('sha256:2bf3c03d3a7afb1200bc47405807ff37c52d10b97d065a3b8e8d63bc85451f54');
  expect(baseKey({ kind: 'image', manifest: `sha256:${'a'.repeat(64)}` })).toBe('sha256:e2cbef7b08f3fa10b44d2176175fa854fd04722a2b672f42c8c058c186f73a35');
  expect(stepKey(scratch, { op: { kind: 'mkdir', path: '/app' } })).toBe('sha256:eec96b4d2acba78c4191b28c267679a13a1f7b50f6dd05102e81d3d6c3f4a0c1');
});

test('a key depends on its parent, its step and the scheme', () => {
  const a = baseKey({ kind: 'scratch', platform: 'linux/amd64' });
  const b = baseKey({ kind: 'scratch', platform: 'linux/arm64' });
  expect(stepKey(a, { op: 1 })).not.toBe(stepKey(b, { op: 1 }));
  expect(stepKey(a, { op: 1 })).not.toBe(stepKey(a, { op: 2 }));
  expect(digestOfDescription({ x: 1 })).not.toBe(`sha256:${createHash('sha256').update('{"x":1}').digest('hex')}`);
});
