// Build checks: each fires on the line it is about, and the check directive controls them.
import { formatLintWarning, lint, looksSecret, readDockerfile, type CheckName } from '../../src/dockerfile/index.js';

const checks = (text: string, buildArgs: Record<string, string> = {}) =>
  lint(readDockerfile(text), { buildArgs }).warnings.map((w) => [w.check, w.line] as [CheckName, number]);

test.each<[string, string, [CheckName, number][]]>([
  ['JSONArgsRecommended', 'FROM scratch\nCMD run\nENTRYPOINT ["x"]\n', [['JSONArgsRecommended', 2]]],
  ['ConsistentInstructionCasing', 'FROM scratch\nCOPY a b\nenv A=1\n', [['ConsistentInstructionCasing', 3]]],
  ['FromAsCasing', 'FROM scratch as base\n', [['FromAsCasing', 1]]],
  ['StageNameCasing', 'FROM scratch AS Base\n', [['StageNameCasing', 1]]],
  ['DuplicateStageName', 'FROM scratch AS a\nFROM scratch AS a\n', [['DuplicateStageName', 2]]],
  ['ReservedStageName', 'FROM scratch AS context\n', [['ReservedStageName', 1]]],
  ['MaintainerDeprecated', 'FROM scratch\nMAINTAINER me\n', [['MaintainerDeprecated', 2]]],
  ['LegacyKeyValueFormat', 'FROM scratch\nENV A 1\n', [['LegacyKeyValueFormat', 2]]],
  [
    'SecretsUsedInArgOrEnv',
    'ARG GITHUB_TOKEN\nFROM scratch\nENV DB_PASSWORD=x PUBLIC_KEY=y\n',
    [
      ['SecretsUsedInArgOrEnv', 1],
      ['SecretsUsedInArgOrEnv', 3],
    ],
  ],
  ['WorkdirRelativePath', 'FROM scratch\nWORKDIR app\n', [['WorkdirRelativePath', 2]]],
  ['MultipleInstructionsDisallowed', 'FROM scratch\nCMD ["a"]\nCMD ["b"]\n', [['MultipleInstructionsDisallowed', 2]]],
  ['UndefinedVar', 'FROM scratch\nENV FOO=1\nCOPY $FOOO /\n', [['UndefinedVar', 3]]],
  ['UndefinedArgInFrom', 'FROM img:$TAG\n', [['UndefinedArgInFrom', 1]]],
  ['RedundantTargetPlatform', 'FROM --platform=$TARGETPLATFORM scratch\n', [['RedundantTargetPlatform', 1]]],
  [
    'FromPlatformFlagConstDisallowed',
    'FROM --platform=linux/amd64 scratch\n',
    [['FromPlatformFlagConstDisallowed', 1]],
  ],
  ['NoEmptyContinuation', 'FROM scratch\nCOPY a \\\n\n  b\n', [['NoEmptyContinuation', 4]]],
  ['InvalidDefaultArgInFrom', 'ARG TAG\nFROM img:${TAG}\n', [['InvalidDefaultArgInFrom', 2]]],
])('%s', (_name, text, expected) => {
  expect(checks(text)).toEqual(expected);
});

test('UndefinedVar suggests a near name and ignores declared ARGs; unknown base Env is not guessed', () => {
  const r = lint(readDockerfile('FROM scratch\nENV FOO=1\nARG DECLARED\nCOPY $FOOO $DECLARED /\n'));
  expect(r.warnings.map((w) => w.message)).toEqual(["Usage of undefined variable '$FOOO' (did you mean $FOO?)"]);
  expect(checks('FROM debian\nWORKDIR $GOPATH\n')).toEqual([]);
  expect(
    lint(readDockerfile('FROM debian\nWORKDIR $GOPATH\n'), { baseEnv: () => [['GOPATH', '/go']] }).warnings,
  ).toEqual([]);
});

test('build args nothing consumes', () => {
  expect(checks('FROM scratch\n', { NOPE: '1' })).toEqual([['UnusedBuildArg', 1]]);
});

test('the check directive skips checks and can make them fatal', () => {
  const text = '# check=skip=JSONArgsRecommended,FromAsCasing;error=true\nFROM scratch as x\nCMD run\nMAINTAINER me\n';
  const r = lint(readDockerfile(text));
  expect(r.warnings.map((w) => w.check)).toEqual(['MaintainerDeprecated']);
  expect(r.failOnWarnings).toBe(true);
  expect(lint(readDockerfile('# check=skip=all\nFROM scratch as x\n')).warnings).toEqual([]);
});

test('warnings format as FILE:LINE: [Check] message', () => {
  const r = lint(readDockerfile('FROM scratch\nMAINTAINER me\n', 'ctx/Dockerfile'));
  expect(r.warnings.map(formatLintWarning)).toEqual([
    'ctx/Dockerfile:2: [MaintainerDeprecated] Maintainer instruction is deprecated in favor of using label',
  ]);
});

test('secret-looking names', () => {
  expect(['API_KEY', 'token', 'AWS_SECRET_ACCESS_KEY', 'PASSWORD'].every(looksSecret)).toBe(true);
  expect(['KEYBOARD', 'PUBLIC_KEY', 'MONKEY', 'AUTHOR'].some(looksSecret)).toBe(false);
});
