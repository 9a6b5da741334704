// Property tests: for any text at all, the front end either succeeds or throws a DockerfileError, never
// anything else; the lexer throws only ExpansionError.
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  DockerfileError,
  ExpansionError,
  lint,
  parse,
  planBuild,
  readDockerfile,
  ShellLex,
  StageScope,
} from '../../src/dockerfile/index.js';
import { conformancePath, haveConformance } from '../helpers/conformance.js';

const seeds: string[] = [
  'FROM alpine AS build\nARG V=1\nRUN --mount=type=cache,target=/c echo $V\nCOPY --from=build --chown=1:1 a b /c/\n',
  '# escape=`\nFROM x\nRUN a `\n b\nHEALTHCHECK --interval=5s CMD ["true"]\nONBUILD COPY <<EOF /x\nhi\nEOF\n',
  'ARG B=busybox\nFROM $B\nENV A=1 B="2 3"\nLABEL a=b\nEXPOSE 80/tcp ${P}\nWORKDIR /a/${A:-x}\nUSER 1:1\nVOLUME ["/v"]\nCMD ["sh"]\n',
];
if (haveConformance) {
  for (const dir of ['testfiles', 'testfiles-negative']) {
    for (const c of readdirSync(conformancePath('parser', dir)))
      seeds.push(readFileSync(conformancePath('parser', dir, c, 'Dockerfile'), 'utf8'));
  }
}

const tokens = [
  'FROM ',
  'RUN ',
  'COPY ',
  'ADD ',
  'ENV ',
  'ARG ',
  'ONBUILD ',
  'HEALTHCHECK ',
  'CMD ',
  'AS ',
  '--from=',
  '--mount=',
  '\\',
  '`',
  '\n',
  '\r\n',
  ' ',
  '\t',
  '"',
  "'",
  '[',
  ']',
  '{',
  '}',
  '$',
  '${',
  ':-',
  '#',
  '# escape=`\n',
  '<<EOF',
  '<<-',
  'EOF\n',
  '=',
  ',',
  'scratch',
  '0',
  '/',
  '*',
  '\u00a0',
  '\u0085',
  '😀',
  '\ufeff',
];

const soup = fc
  .array(fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 4 })), { maxLength: 60 })
  .map((a) => a.join(''));
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.constantFrom(...tokens)), { maxLength: 6 }),
  )
  .map(([seed, edits]) =>
    edits.reduce((s, [at, del, ins]) => {
      const i = s.length === 0 ? 0 : at % s.length;
      return s.slice(0, i) + ins + s.slice(i + del);
    }, seed),
  );

function onlyDockerfileErrors(text: string): void {
  try {
    parse(text);
    const df = readDockerfile(text);
    lint(df, { buildArgs: { V: '1' } });
    const plan = planBuild(df);
    for (const p of plan.stages) {
      const scope = new StageScope({
        escapeToken: df.escapeToken,
        globalArgs: plan.globalArgs,
        buildArgs: plan.buildArgs,
      });
      for (const ins of p.stage.commands) {
        scope.expandInstruction(ins);
        scope.apply(ins);
      }
    }
  } catch (e) {
    if (!(e instanceof DockerfileError)) throw e;
    expect(e.line).toBeGreaterThanOrEqual(1);
    expect(typeof e.format()).toBe('string');
  }
}

test('random token soup throws nothing but DockerfileError', () => {
  fc.assert(fc.property(soup, onlyDockerfileErrors), { numRuns: Number(process.env.HOIST_PROPERTY_RUNS ?? 3000) });
});

test('mutated real Dockerfiles throw nothing but DockerfileError', () => {
  fc.assert(fc.property(mutated, onlyDockerfileErrors), { numRuns: Number(process.env.HOIST_PROPERTY_RUNS ?? 3000) });
});

test('any string: the lexer throws nothing but ExpansionError', () => {
  const lex = new ShellLex('\\');
  fc.assert(
    fc.property(fc.oneof(soup, fc.string()), (s) => {
      try {
        lex.processWords(s, { A: 'a b', E: '' });
      } catch (e) {
        if (!(e instanceof ExpansionError)) throw e;
      }
    }),
    { numRuns: Number(process.env.HOIST_PROPERTY_RUNS ?? 3000) },
  );
});
