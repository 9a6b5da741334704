// Input lists read as docker/build-push-action reads them (actions-toolkit's Util.getInputList over csv-parse with
// relaxQuotes, relaxColumnCount, skipEmptyLines): docs/action.md's "List" (newline) and "List/CSV" (comma too) types.
import { csvFields, getList, inputBool } from '../../src/action/lists.js';

describe('csvFields', () => {
  test.each([
    ['a', ['a']],
    ['a,b', ['a', 'b']],
    ['"a,b",c', ['a,b', 'c']],
    ['"say ""hi""",x', ['say "hi"', 'x']],
    ['a"b,c', ['a"b', 'c']], // a quote inside an unquoted field is a character
    ['a, "b,c"', ['a', ' "b', 'c"']], // only a quote that opens the field groups
    ['', ['']],
    ['a,', ['a', '']],
  ])('%j', (line, fields) => expect(csvFields(line)).toEqual(fields));
});

describe('getList: List and List/CSV inputs', () => {
  test.each([
    // List (build-args, labels, secrets, outputs, cache-from, cache-to, annotations): one item per line
    ['List: lines', 'A=1\nB=2\n', false, ['A=1', 'B=2']],
    [
      'List: a line with commas stays one item',
      'type=registry,ref=r/app:cache,mode=max\ntype=gha',
      false,
      ['type=registry,ref=r/app:cache,mode=max', 'type=gha'],
    ],
    ['List: quotes group, then the fields are joined again', '"MSG=a,b",C=1', false, ['MSG=a,b,C=1']],
    ['List: blank lines and spaces', '\n  A=1  \n\n   \nB=2', false, ['A=1', 'B=2']],
    ['List: CRLF', 'A=1\r\nB=2\r\n', false, ['A=1', 'B=2']],
    // List/CSV (tags, platforms, no-cache-filters, secret-envs, add-hosts): commas split too
    ['CSV: commas', 'r/app:1,r/app:latest', true, ['r/app:1', 'r/app:latest']],
    ['CSV: lines and commas', 'r/app:1\nr/app:2, r/app:3', true, ['r/app:1', 'r/app:2', 'r/app:3']],
    [
      'CSV: a quoted field with a comma is split anyway when alone',
      '"linux/amd64,linux/arm64"',
      true,
      ['linux/amd64', 'linux/arm64'],
    ],
    ['CSV: a quoted field beside others keeps its comma', '"a,b",c', true, ['a,b', 'c']],
    ['CSV: empty items dropped', 'a,,b,', true, ['a', 'b']],
    ['empty input', '', true, []],
  ])('%s', (_name, text, comma, items) => expect(getList(text, { ignoreComma: !comma })).toEqual(items));

  test('a comment prefix drops a record that starts with it (metadata-action: comment #, no infix comments)', () => {
    expect(getList('# the cache\ntype=gha\nkeep=a#b\n', { ignoreComma: true, comment: '#' })).toEqual([
      'type=gha',
      'keep=a#b',
    ]);
    // csv-parse keeps the spaces before it in the field: an indented # line is an item
    expect(getList('  # off\n', { ignoreComma: true, comment: '#' })).toEqual(['# off']);
  });
});

// actions-toolkit's own getInputList cases (its __tests__/util.test.ts), as facts: input, options, items.
describe("getList: actions-toolkit's cases", () => {
  const csv = { ignoreComma: false };
  const list = { ignoreComma: true };
  test.each([
    ['single line', 'bar', csv, ['bar']],
    ['empty', '', csv, []],
    ['lines', 'bar\nbaz', csv, ['bar', 'baz']],
    ['empty lines', 'bar\n\nbaz', csv, ['bar', 'baz']],
    ['commas', 'bar,baz', csv, ['bar', 'baz']],
    ['a trailing comma', 'bar,baz,', csv, ['bar', 'baz']],
    ['CRLF', 'bar\r\nbaz', csv, ['bar', 'baz']],
    ['CRLF and commas', 'bar\r\nbaz,bat', csv, ['bar', 'baz', 'bat']],
    [
      'List: commas kept',
      'user/app:cache\ntype=local,src=path/to/dir',
      list,
      ['user/app:cache', 'type=local,src=path/to/dir'],
    ],
    [
      'List: CRLF, commas kept',
      'user/app:cache\r\ntype=local,src=path/to/dir',
      list,
      ['user/app:cache', 'type=local,src=path/to/dir'],
    ],
    ['no comment option: # is a character', 'foo=bar\nbar=qux#baz', csv, ['foo=bar', 'bar=qux#baz']],
    ['comment lines', '# ignore this\nfoo=bar\nbar=qux#baz', { ...list, comment: '#' }, ['foo=bar', 'bar=qux#baz']],
    [
      'quote: false keeps quotes',
      '"env.no_proxy=localhost,127.0.0.1,.mydomain"',
      { ...list, quote: false },
      ['"env.no_proxy=localhost,127.0.0.1,.mydomain"'],
    ],
    [
      'a quoted item alone is split at its commas (CSV)',
      'linux/amd64\n"linux/arm64,linux/arm/v7"',
      csv,
      ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
    ],
    [
      'a quoted value spans lines',
      'GIT_AUTH_TOKEN=abcdefgh,ijklmno=0123456789\n"MYSECRET=aaaaaaaa\nbbbbbbb\nccccccccc"\nFOO=bar',
      list,
      ['GIT_AUTH_TOKEN=abcdefgh,ijklmno=0123456789', 'MYSECRET=aaaaaaaa\nbbbbbbb\nccccccccc', 'FOO=bar'],
    ],
    [
      'a quoted value with an empty line',
      'A=1\n"EMPTYLINE=aaaa\n\nbbbb\nccc"',
      list,
      ['A=1', 'EMPTYLINE=aaaa\n\nbbbb\nccc'],
    ],
    [
      '"" inside quotes',
      '"MYSECRET=aaaaaaaa\nbbbb""bbb\nccccccccc"\nFOO=bar',
      list,
      ['MYSECRET=aaaaaaaa\nbbbb"bbb\nccccccccc', 'FOO=bar'],
    ],
    [
      'without quotes, lines are items',
      'MYSECRET=aaaaaaaa\nbbbbbbb\nFOO=bar',
      list,
      ['MYSECRET=aaaaaaaa', 'bbbbbbb', 'FOO=bar'],
    ],
    [
      'untrimmed (secrets): the trailing line break stays',
      '"PRIVATE_SSH_KEY=TEST\nTEST\n"\n',
      { ...list, trim: false },
      ['PRIVATE_SSH_KEY=TEST\nTEST\n'],
    ],
    [
      'quote: false with quoted names (outputs)',
      'type=image,"name=ghcr.io/a/b,docker.io/a/b",push-by-digest=true,push=true',
      { ...list, quote: false },
      ['type=image,"name=ghcr.io/a/b,docker.io/a/b",push-by-digest=true,push=true'],
    ],
  ] as const)('%s', (_name, text, options, items) => expect(getList(text, options)).toEqual(items));

  test('a quote never closed is an error', () => {
    expect(() => getList('"A=1\nB=2', { ignoreComma: true })).toThrow('a quoted value is not closed');
  });
});

test('inputBool: the YAML 1.2 core schema, as @actions/core getBooleanInput; anything else is an error', () => {
  expect(inputBool('push', 'true', false)).toBe(true);
  expect(inputBool('push', 'False', true)).toBe(false);
  expect(inputBool('push', '', true)).toBe(true);
  expect(() => inputBool('push', 'yes', false)).toThrow('input push: "yes" is not a boolean (true or false)');
});
