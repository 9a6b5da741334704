// File names that are not UTF-8 (layer/names.ts): carried with each byte UTF-8 cannot read escaped, given back as
// exactly those bytes; names that are UTF-8 (every script, astral characters) are the strings they always were.
import fc from 'fast-check';
import { fsPath, nameFromBytes, nameToBytes } from '../../src/layer/names.js';

test.each([
  ['plain ASCII', Buffer.from('app/main.go')],
  ['UTF-8 of several scripts and an astral character', Buffer.from('café/日本語/😀.txt')],
  ['Latin-1', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])],
  ['a cut UTF-8 sequence', Buffer.from([0x61, 0xe6, 0x97, 0x62])],
  ['an overlong encoding and a UTF-16 surrogate in UTF-8', Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80])],
  ['every high byte', Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i))],
])('%s: back to the same bytes', (_name, bytes) => {
  const name = nameFromBytes(bytes);
  expect(nameToBytes(name).equals(bytes)).toBe(true);
  const p = fsPath(name);
  expect(Buffer.isBuffer(p) ? p.equals(bytes) : Buffer.from(p).equals(bytes)).toBe(true);
});

test('a UTF-8 name is the string it spells, and a path of one stays a string', () => {
  expect(nameFromBytes(Buffer.from('café 😀'))).toBe('café 😀');
  expect(fsPath('/ctx/café 😀')).toBe('/ctx/café 😀');
  expect(fsPath(`/ctx/${nameFromBytes(Buffer.from([0xe9]))}`)).toEqual(
    Buffer.from([0x2f, 0x63, 0x74, 0x78, 0x2f, 0xe9]),
  );
});

test('any bytes survive the round trip', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) =>
      nameToBytes(nameFromBytes(Buffer.from(b))).equals(Buffer.from(b)),
    ),
  );
});
