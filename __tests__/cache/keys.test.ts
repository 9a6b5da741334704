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
  const scratch = baseKey({ kind: 'scratch' });
  expect(scratch).toBe('sha256:74f24b5f22dd1d984a75565d1dff6fca652dfde96c1850cbfa01f2b991e37cf8');
  expect(baseKey({ kind: 'scratch' }, 1000)).toBe('sha256:379a4f95d41138a6fd196819c58360def3a1fc707bc29d65fcd4347de81d3e8a');
  expect(baseKey({ kind: 'image', manifest: `sha256:${'a'.repeat(64)}` })).toBe('sha256:056c7218f8d1bf92501d18f01146e2bb88da2ed3e719d1e7fa4c18b900ee248b');
  expect(stepKey(scratch, { op: { kind: 'mkdir', path: '/app' } })).toBe('sha256:e1dd76581b1fd34860e59cf6c191b6c38c011ff2fb6ea0ba0ef0febdbe1a18e9');
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
