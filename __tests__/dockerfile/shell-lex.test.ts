// Word expansion beyond BuildKit's vector files: the pattern operators, error messages, raw modes and the
// bookkeeping of which variables were used.
import { ExpansionError, ShellLex } from '../../src/dockerfile/index.js';

const lex = new ShellLex('\\');
const env = { PATH_LIKE: 'a/b/c.tar.gz', EMPTY: '', NAME: 'world', SPACED: 'x  y' };
const x = (w: string) => lex.processWord(w, env);

describe('pattern operators', () => {
  test.each([
    ['${PATH_LIKE#*/}', 'b/c.tar.gz'],
    ['${PATH_LIKE##*/}', 'c.tar.gz'],
    ['${PATH_LIKE%.*}', 'a/b/c.tar'],
    ['${PATH_LIKE%%.*}', 'a/b/c'],
    ['${PATH_LIKE#a?b}', '/c.tar.gz'],
    ['${PATH_LIKE#x}', 'a/b/c.tar.gz'],
    ['${PATH_LIKE%\\*}', 'a/b/c.tar.gz'],
    ['${UNSET#*}', ''],
    ['${PATH_LIKE/\\//-}', 'a-b/c.tar.gz'],
    ['${PATH_LIKE//\\//-}', 'a-b-c.tar.gz'],
    ['${PATH_LIKE//./_}', 'a/b/c_tar_gz'],
    ['${PATH_LIKE/*./X}', 'Xgz'],
    ['${NAME/o/0}', 'w0rld'],
    ['${NAME//[or]/_}', 'world'],
  ])('%s → %s', (word, expected) => {
    expect(x(word)).toBe(expected);
  });

  test('an invalid escape in a pattern is an error', () => {
    expect(() => x('${NAME#\\a}')).toThrow("invalid escape '\\a'");
  });
});

describe('defaults and errors', () => {
  test('${VAR?msg} and ${VAR:?msg} say which variable and why, with the message expanded', () => {
    expect(() => x('${UNSET?}')).toThrow('UNSET: is not allowed to be unset');
    expect(() => x('${EMPTY:?}')).toThrow('EMPTY: is not allowed to be empty');
    expect(() => x('${UNSET:?say $NAME}')).toThrow('UNSET: say world');
    expect(x('${EMPTY?}')).toBe('');
  });

  test('errors are ExpansionErrors naming the word', () => {
    expect(() => x('"open')).toThrow(ExpansionError);
    expect(() => x('"open')).toThrow('failed to process "\\"open"');
    expect(() => x('${NAME')).toThrow("missing '}'");
  });
});

describe('words', () => {
  test('expanded values split on white space, quoted ones do not', () => {
    expect(lex.processWords('a $SPACED "$SPACED"', env)).toEqual(['a', 'x', 'y', 'x  y']);
  });

  test('the backtick escape token', () => {
    const tick = new ShellLex('`');
    expect(tick.processWord('a`$NAME `` "b`"c"', env)).toBe('a$NAME ` b"c');
  });
});

describe('options', () => {
  test('skipUnsetEnv leaves references to unset variables as written', () => {
    const keep = lex.with({ skipUnsetEnv: true });
    expect(keep.processWord('$NAME $UNSET ${UNSET} ${UNSET:-d} ${UNSET/a/b}', env)).toBe(
      'world $UNSET ${UNSET} ${UNSET:-d} ${UNSET/a/b}',
    );
  });

  test('rawQuotes and rawEscapes keep quotes and escapes', () => {
    expect(lex.with({ rawQuotes: true }).processWord(`'a' "b"`, env)).toBe(`'a' "b"`);
    expect(lex.with({ rawEscapes: true }).processWord('a\\ b', env)).toBe('a\\ b');
  });

  test('skipProcessQuotes treats quotes as characters', () => {
    expect(lex.with({ skipProcessQuotes: true }).processWord(`'$NAME'`, env)).toBe(`'world'`);
  });

  test('matched and unmatched variables are reported', () => {
    const r = lex.process('$NAME ${UNSET:-x} $1', env);
    expect([...r.matched]).toEqual(['NAME']);
    expect([...r.unmatched].sort()).toEqual(['1', 'UNSET']);
  });

  test('a Map works as the environment, and keys are case-sensitive', () => {
    expect(lex.processWord('$name-$NAME', new Map([['NAME', 'v']]))).toBe('-v');
  });
});
