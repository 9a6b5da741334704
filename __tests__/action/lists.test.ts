// Input lists read as docker/build-push-action reads them (actions-toolkit's Util.getInputList over csv-parse with
// relaxQuotes, relaxColumnCount, skipEmptyLines): the README's "List" (newline) and "List/CSV" (comma too) types.
import { csvFields, inputBool, inputList } from '../../src/action/lists.js';

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

describe('inputList', () => {
  test.each([
    // List (build-args, labels, secrets, outputs, cache-from, cache-to, annotations): one item per line
    ['List: lines', 'A=1\nB=2\n', false, ['A=1', 'B=2']],
    ['List: a line with commas stays one item', 'type=registry,ref=r/app:cache,mode=max\ntype=gha', false, ['type=registry,ref=r/app:cache,mode=max', 'type=gha']],
    ['List: quotes group, then the fields are joined again', '"MSG=a,b",C=1', false, ['MSG=a,b,C=1']],
    ['List: blank lines and spaces', '\n  A=1  \n\n   \nB=2', false, ['A=1', 'B=2']],
    ['List: CRLF', 'A=1\r\nB=2\r\n', false, ['A=1', 'B=2']],
    // List/CSV (tags, platforms, no-cache-filters, secret-envs, add-hosts): commas split too
    ['CSV: commas', 'r/app:1,r/app:latest', true, ['r/app:1', 'r/app:latest']],
    ['CSV: lines and commas', 'r/app:1\nr/app:2, r/app:3', true, ['r/app:1', 'r/app:2', 'r/app:3']],
    ['CSV: a quoted field with a comma is split anyway when alone', '"linux/amd64,linux/arm64"', true, ['linux/amd64', 'linux/arm64']],
    ['CSV: a quoted field beside others keeps its comma', '"a,b",c', true, ['a,b', 'c']],
    ['CSV: empty items dropped', 'a,,b,', true, ['a', 'b']],
    ['empty input', '', true, []],
  ])('%s', (_name, text, comma, items) => expect(inputList(text, { comma })).toEqual(items));

  test('a comment prefix drops whole lines', () => {
    expect(inputList('# the cache\ntype=gha\n  # off\n', { comma: false, comment: '#' })).toEqual(['type=gha']);
  });
});

test('inputBool: the YAML 1.2 core schema, as @actions/core getBooleanInput; anything else is an error', () => {
  expect(inputBool('push', 'true', false)).toBe(true);
  expect(inputBool('push', 'False', true)).toBe(false);
  expect(inputBool('push', '', true)).toBe(true);
  expect(() => inputBool('push', 'yes', false)).toThrow('input push: "yes" is not a boolean (true or false)');
});
