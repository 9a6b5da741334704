// What the Actions cache gives back is input: an index naming entries by keys that would lead a path out of our
// directory (`hoist-blob-1-../../x`) has those entries dropped, and no such key becomes a path.
import { decodeIndex, entryDir } from '../../src/cache/gha.js';

const hex = 'a'.repeat(64);

test('only hoist keys of hex names become paths under the root', () => {
  expect(entryDir('/r', `hoist-blob-1-${hex}`)).toBe(`/r/blob/${hex}`);
  expect(entryDir('/r', `hoist-pack-1-${hex}`)).toBe(`/r/pack/${hex}`);
  expect(entryDir('/r', 'hoist-index-1-0123456789abcdef-000001764547200000')).toBe('/r/index/0123456789abcdef');
  expect(entryDir('/r', `hoist-mount-1-0123456789abcdef-${'b'.repeat(32)}-`)).toBe(`/r/mount/0123456789abcdef-${'b'.repeat(32)}`);
  for (const bad of ['hoist-blob-1-../../etc', `hoist-blob-1-${hex}/../../x`, 'hoist-index-1-../../../tmp-', `hoist-pack-1-${'A'.repeat(64)}`, 'other']) {
    expect(() => entryDir('/r', bad)).toThrow(/not an entry key of hoist/);
  }
});

test('an index keeps only entries of well-formed keys', () => {
  const d = `sha256:${hex}`;
  const text = JSON.stringify({ version: 1, records: [], entries: { [d]: `hoist-blob-1-${hex}`, 'sha256:x': 'hoist-blob-1-../../../victim', other: `hoist-pack-1-${hex}/..` } });
  expect(decodeIndex(text, 'test').entries).toEqual({ [d]: `hoist-blob-1-${hex}` });
  expect(() => decodeIndex(JSON.stringify({ version: 2, records: [] }), 'entry k')).toThrow(/entry k: index of another version/);
});
