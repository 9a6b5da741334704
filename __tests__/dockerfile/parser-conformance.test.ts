// BuildKit's parser golden files: every testfiles/CASE/Dockerfile must dump to CASE/result byte for byte,
// every testfiles-negative case must be rejected, and testfile-line must get its line numbers right.
import { readdirSync, readFileSync } from 'node:fs';
import { dump, parse, DockerfileError } from '../../src/dockerfile/index.js';
import { conformancePath, describeConformance, haveConformance } from '../helpers/conformance.js';

const cases = haveConformance ? readdirSync(conformancePath('parser', 'testfiles')).sort() : [];
const negative = haveConformance ? readdirSync(conformancePath('parser', 'testfiles-negative')).sort() : [];

describeConformance('BuildKit parser testfiles', () => {
  test('all 33 cases are present', () => {
    expect(cases).toHaveLength(33);
  });

  test.each(cases)('%s dumps identically', (name) => {
    const text = readFileSync(conformancePath('parser', 'testfiles', name, 'Dockerfile'), 'utf8');
    const expected = readFileSync(conformancePath('parser', 'testfiles', name, 'result'), 'utf8');
    expect(dump(parse(text).nodes)).toBe(expected);
  });

  test.each(negative)('negative case %s is rejected', (name) => {
    const text = readFileSync(conformancePath('parser', 'testfiles-negative', name, 'Dockerfile'), 'utf8');
    expect(() => parse(text)).toThrow(DockerfileError);
  });

  test('line numbers of testfile-line', () => {
    const text = readFileSync(conformancePath('parser', 'testfile-line', 'Dockerfile'), 'utf8');
    const { nodes } = parse(text);
    expect(nodes.map((n) => [n.startLine, n.endLine])).toEqual([
      [5, 5],
      [11, 12],
      [17, 31],
    ]);
  });
});
