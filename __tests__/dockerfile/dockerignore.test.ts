// .dockerignore matching as Docker does it: last matching line wins, parents count, ** spans directories.
import { cleanPath, dockerignoreCandidates, DockerignoreError, IgnoreMatcher } from '../../src/dockerfile/index.js';

const m = (text: string) => IgnoreMatcher.fromText(text);

test('globs, exceptions and the last matching line', () => {
  const ig = m('# docs\n*.md\n!README.md\nREADME*.md\n!README-keep.md\n');
  expect(ig.excludes('CHANGES.md')).toBe(true);
  expect(ig.excludes('README.md')).toBe(true);
  expect(ig.excludes('README-keep.md')).toBe(false);
  expect(ig.excludes('docs/a.md')).toBe(false); // * does not cross /
  expect(ig.excludes('# docs')).toBe(false);
  expect(ig.hasExceptions).toBe(true);
});

test('a directory pattern excludes everything below it; an exception can bring one file back', () => {
  const ig = m('node_modules/\n/build\n!build/keep.txt\n');
  expect(ig.excludes('node_modules')).toBe(true);
  expect(ig.excludes('node_modules/x/y.js')).toBe(true);
  expect(ig.excludes('src/node_modules/x')).toBe(false);
  expect(ig.excludes('build/out.o')).toBe(true);
  expect(ig.excludes('build/keep.txt')).toBe(false);
});

test('** matches any number of directories', () => {
  const ig = m('**/*.log\ntmp/**\n**/cache\na/**/z\n');
  expect(ig.excludes('x.log')).toBe(true);
  expect(ig.excludes('deep/er/x.log')).toBe(true);
  expect(ig.excludes('tmp/a/b')).toBe(true);
  expect(ig.excludes('p/q/cache/f')).toBe(true);
  expect(ig.excludes('a/z')).toBe(true);
  expect(ig.excludes('a/b/c/z')).toBe(true);
  expect(ig.excludes('b/z')).toBe(false);
});

test("? never matches /; classes are Go's: [^…] negates, and ! is a character like any other (patternmatcher)", () => {
  const ig = m('file?.txt\n[a-c]x\n[!0-9]y\n[^0-9]z\n');
  expect(ig.excludes('file1.txt')).toBe(true);
  expect(ig.excludes('file/.txt')).toBe(false);
  expect(ig.excludes('bx')).toBe(true);
  expect(ig.excludes('dx')).toBe(false);
  expect(ig.excludes('1y')).toBe(true);
  expect(ig.excludes('!y')).toBe(true);
  expect(ig.excludes('ay')).toBe(false);
  expect(ig.excludes('az')).toBe(true);
  expect(ig.excludes('1z')).toBe(false);
});

test('patterns are cleaned; escapes make characters literal', () => {
  const ig = m('./a/../b/\nstar\\*\n  spaced  \n');
  expect(ig.patterns.map((p) => p.pattern)).toEqual(['b', 'star\\*', 'spaced']);
  expect(ig.excludes('b/c')).toBe(true);
  expect(ig.excludes('star*')).toBe(true);
  expect(ig.excludes('starx')).toBe(false);
  expect(ig.excludes('spaced')).toBe(true);
});

test('bad lines are errors with their line number', () => {
  expect(() => m('a\n!\n')).toThrow(DockerignoreError);
  expect(() => m('a\n!\n')).toThrow('illegal exclusion pattern');
  try {
    m('ok\n[unclosed\n');
  } catch (e) {
    expect((e as DockerignoreError).line).toBe(2);
  }
});

test('cleanPath is Go path.Clean', () => {
  expect(['', '.', 'a/', '/a/../..', 'a//b/./c/..', '../x/..', '/'].map(cleanPath)).toEqual([
    '.',
    '.',
    'a',
    '/',
    'a/b',
    '..',
    '/',
  ]);
});

test('<Dockerfile>.dockerignore beside the Dockerfile comes before the context one', () => {
  expect(dockerignoreCandidates('build/app.Dockerfile', 'ctx/')).toEqual([
    'build/app.Dockerfile.dockerignore',
    'ctx/.dockerignore',
  ]);
});

test('an excluded directory is looked into only where a ! line could bring something back', () => {
  const allow = m('**\n!src\n!docs/*.md\n!**/keep\nsubdir/a\n!subdir/a/b/c\n');
  expect(allow.mayIncludeBelow('node_modules')).toBe(true); // !**/keep could match anywhere
  const plain = m('**\n!src\n!docs/*.md\nsubdir/a\n!subdir/a/b/c\n');
  expect(plain.mayIncludeBelow('node_modules')).toBe(false);
  expect(plain.mayIncludeBelow('docs')).toBe(true);
  expect(plain.mayIncludeBelow('docs/old')).toBe(false);
  expect(plain.mayIncludeBelow('subdir/a')).toBe(true);
  expect(plain.mayIncludeBelow('subdir/a/b')).toBe(true);
  expect(plain.mayIncludeBelow('subdir/a/x')).toBe(false);
  expect(m('a\n').mayIncludeBelow('a')).toBe(false);
});
