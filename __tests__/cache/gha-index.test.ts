// What the Actions cache gives back is input: an index naming entries by keys that are not hoist's (a path, another
// scheme) has those entries dropped; a pack's table is read with bounds and must account for every byte.
import { decodeIndex, packTable, readPackTable } from '../../src/cache/gha.js';

const hex = 'a'.repeat(64);
const d = `sha256:${hex}`;

test('an index keeps only entries of well-formed keys for well-formed digests', () => {
  const text = JSON.stringify({
    version: 2,
    records: [],
    entries: {
      [d]: `hoist-blob-2-${hex}`,
      'sha256:x': 'hoist-blob-2-../../../victim',
      [`sha256:${'b'.repeat(64)}`]: `hoist-pack-2-${hex}/..`,
      [`sha256:${'c'.repeat(64)}`]: `hoist-blob-1-${hex}`,
      '../x': `hoist-blob-2-${hex}`,
    },
  });
  expect(decodeIndex(text, 'test').entries).toEqual({ [d]: `hoist-blob-2-${hex}` });
  expect(() => decodeIndex(JSON.stringify({ version: 1, records: [] }), 'entry k')).toThrow(
    /entry k: index of another version/,
  );
  expect(() => decodeIndex('[]', 'entry k')).toThrow(/entry k: not an index/);
});

test('a pack: its table, then its blobs; a table that lies or is no table is refused', () => {
  const blobs = [
    { mediaType: 'x', digest: d, size: 3 },
    { mediaType: 'x', digest: `sha256:${'b'.repeat(64)}`, size: 2 },
  ];
  const table = packTable(blobs);
  const pack = Buffer.concat([table, Buffer.from('abc'), Buffer.from('de')]);
  const read = readPackTable(pack, pack.length, 'p');
  expect(pack.subarray(read.get(d)!.start, read.get(d)!.start + 3).toString()).toBe('abc');
  expect(read.get(`sha256:${'b'.repeat(64)}`)).toEqual({ start: table.length + 3, size: 2 });
  expect(() => readPackTable(pack, pack.length + 1, 'p')).toThrow(/p: its table says \d+ bytes, the entry has \d+/);
  expect(() => readPackTable(Buffer.from('no newline'), 10, 'p')).toThrow(/not a pack of hoist's/);
  expect(() => readPackTable(Buffer.from('{"a":1}\n'), 8, 'p')).toThrow(/its table/);
  expect(() => readPackTable(Buffer.from('[["sha256:zz",1]]\n'), 19, 'p')).toThrow(/a row of its table/);
  expect(() => readPackTable(Buffer.from(`[["${d}",-1]]\n`), 100, 'p')).toThrow(/a row of its table/);
});
