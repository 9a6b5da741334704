// BuildKit's shell lexer vectors: every A and U line of envVarTest (single-word expansion) and every line of
// wordsTest (expansion split into words).
import { readFileSync } from 'node:fs';
import { ShellLex } from '../../src/dockerfile/index.js';
import { conformancePath, describeConformance, haveConformance } from '../helpers/conformance.js';

const env = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['KOREAN', '한국어'],
  ['NULL', ''],
]);

function envVarCases(): [number, string, string][] {
  if (!haveConformance) return [];
  const out: [number, string, string][] = [];
  readFileSync(conformancePath('shell', 'envVarTest'), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) return;
      const f = line.split('|');
      if (f.length !== 3) throw new Error(`envVarTest:${i + 1}: expected 3 fields`);
      const platform = f[0].trim();
      if (platform === 'A' || platform === 'U') out.push([i + 1, f[1].trim(), f[2].trim()]);
    });
  return out;
}

interface WordsCase {
  line: number;
  input: string;
  expected: string[];
  env: Map<string, string>;
}

function wordsCases(): WordsCase[] {
  if (!haveConformance) return [];
  const out: WordsCase[] = [];
  const e = new Map<string, string>();
  readFileSync(conformancePath('shell', 'wordsTest'), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      if (line.startsWith('ENV ')) {
        const kv = line.slice(4).replace(/^\s+/, '');
        const eq = kv.indexOf('=');
        e.set(kv.slice(0, eq), kv.slice(eq + 1));
        return;
      }
      const f = line.split('|');
      if (f.length !== 2) throw new Error(`wordsTest:${i + 1}: expected 2 fields`);
      out.push({ line: i + 1, input: f[0].trim(), expected: f[1].replace(/^\s+/, '').split(','), env: new Map(e) });
    });
  return out;
}

const lex = new ShellLex('\\');

describeConformance('BuildKit envVarTest', () => {
  const cases = envVarCases();
  test('has the A and U cases', () => {
    expect(cases.length).toBeGreaterThan(200);
  });
  test.each(cases)('line %i: %s', (_line, input, expected) => {
    if (expected === 'error') {
      expect(() => lex.processWord(input, env)).toThrow();
    } else {
      expect(lex.processWord(input, env)).toBe(expected);
    }
  });
});

describeConformance('BuildKit wordsTest', () => {
  const cases = wordsCases();
  test('has its cases', () => {
    expect(cases.length).toBeGreaterThan(20);
  });
  test.each(cases)('line $line: $input', ({ input, expected, env: e }) => {
    let words: string[];
    try {
      words = lex.processWords(input, e);
    } catch {
      words = ['error'];
    }
    expect(words).toEqual(expected);
  });
});
