// The one glob syntax (Go's path/filepath.Match, plus ** for .dockerignore), checked against the test vectors of
// Go's own match_test.go: the pattern, the name, whether it matches, and whether Go calls the pattern malformed.
import { GlobError, globToRegExp, hasWildcard } from '../../src/dockerfile/glob.js';

const vectors: [string, string, boolean, boolean?][] = [
  ['abc', 'abc', true],
  ['*', 'abc', true],
  ['*c', 'abc', true],
  ['a*', 'a', true],
  ['a*', 'abc', true],
  ['a*', 'ab/c', false],
  ['a*/b', 'abc/b', true],
  ['a*/b', 'a/c/b', false],
  ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
  ['a*b?c*x', 'abxbbxdbxebxczzx', true],
  ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true],
  ['ab[b-d]', 'abc', true],
  ['ab[e-g]', 'abc', false],
  ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false],
  ['ab[^e-g]', 'abc', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true],
  ['a[^a]b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['*[a-ζ]', 'A', false],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[\\-]', '-', true],
  ['[x\\-]', 'x', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true],
  ['[\\-x]', 'a', false],
  ['[]a]', ']', false, true],
  ['[-]', '-', false, true],
  ['[x-]', 'x', false, true],
  ['[x-]', '-', false, true],
  ['[x-]', 'z', false, true],
  ['[-x]', 'x', false, true],
  ['[-x]', '-', false, true],
  ['[-x]', 'a', false, true],
  ['\\', 'a', false, true],
  ['[a-b-c]', 'a', false, true],
  ['[', 'a', false, true],
  ['[^', 'a', false, true],
  ['[^bc', 'a', false, true],
  ['a[', 'a', false, true],
  ['a[', 'ab', false, true],
  ['a[', 'x', false, true],
  ['a/b[', 'x', false, true],
  ['*x', 'xxx', true],
];

test.each(vectors.map(([p, n, m, bad]) => [p, n, m, bad === true] as const))(
  'filepath.Match(%j, %j) = %j (bad pattern: %j)',
  (pattern, name, matches, bad) => {
    if (bad) {
      expect(() => globToRegExp(pattern)).toThrow(GlobError);
      return;
    }
    expect(globToRegExp(pattern).test(name)).toBe(matches);
  },
);

test('! is no negation in a class, and a class matches / as in Go', () => {
  expect(globToRegExp('[!a]').test('!')).toBe(true);
  expect(globToRegExp('[!a]').test('b')).toBe(false);
  expect(globToRegExp('a[^x]b').test('a/b')).toBe(true);
});

test('** spans directories only when asked (.dockerignore)', () => {
  const ds = { doubleStar: true };
  expect(globToRegExp('**', ds).test('a/b/c')).toBe(true);
  expect(globToRegExp('**/x', ds).test('x')).toBe(true);
  expect(globToRegExp('**/x', ds).test('a/b/x')).toBe(true);
  expect(globToRegExp('a/**', ds).test('a/b/c')).toBe(true);
  expect(globToRegExp('a/**/b', ds).test('a/b')).toBe(true);
  expect(globToRegExp('a/**/b', ds).test('a/x/y/b')).toBe(true);
  expect(globToRegExp('**/x').test('a/b/x')).toBe(false); // in Go, ** is two stars within one component
});

test('a wildcard escaped with \\ is no wildcard', () => {
  expect(hasWildcard('a*b')).toBe(true);
  expect(hasWildcard('a\\*b')).toBe(false);
  expect(hasWildcard('n\\?pe')).toBe(false);
  expect(hasWildcard('[x]')).toBe(true);
});
