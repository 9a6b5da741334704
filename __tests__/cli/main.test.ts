// The hoist command's parse and lint subcommands, run in-process with captured output.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/cli/main.js';
import type { CommandIO } from '../../src/cli/io.js';
import { version } from '../../src/version.js';

async function hoist(argv: string[], stdin = '') {
  let out = '';
  let err = '';
  const io: CommandIO = { out: (t) => void (out += t), err: (t) => void (err += t), readStdin: () => stdin };
  const code = await run(argv, io);
  return { code, out, err };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'hoist-cli-'));
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

test("parse --dump prints BuildKit's dump, from a file or stdin", async () => {
  const p = file('Dockerfile', 'FROM alpine\nCOPY --chown=1:1 a b\n');
  const expected = '(from "alpine")\n(copy ["--chown=1:1"] "a" "b")\n';
  expect(await hoist(['parse', '--dump', '-f', p])).toEqual({ code: 0, out: expected, err: '' });
  expect(await hoist(['parse', '--dump', p])).toEqual({ code: 0, out: expected, err: '' });
  expect((await hoist(['parse', '-'], 'FROM x\n')).out).toBe('(from "x")\n');
});

test('parse --json prints the stages', async () => {
  const r = await hoist(['parse', '--json', '-'], 'ARG V=1\nFROM x AS a\nENV A=b\n');
  const j = JSON.parse(r.out);
  expect(j.stages[0]).toMatchObject({
    name: 'a',
    from: { kind: 'from', image: 'x' },
    commands: [{ kind: 'env', pairs: [{ key: 'A', value: 'b' }] }],
  });
  expect(j.globalArgs[0].args).toEqual([{ key: 'V', value: '1' }]);
});

test('a file BuildKit rejects: exit 1, the error with file, line and source on stderr', async () => {
  const p = file('bad.Dockerfile', 'FROM x\nCMD ["a", ["b"]]\n');
  const r = await hoist(['parse', '--dump', p]);
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(r.err).toContain(`${p}:2: when using JSON array syntax, arrays must be comprised of strings only`);
  expect(r.err).toContain('>>> CMD ["a", ["b"]]');
});

test('lint prints FILE:LINE: [Check] message and exits 0, or 1 under check=error=true', async () => {
  const p = file('lint.Dockerfile', 'FROM scratch as base\nCMD run\n');
  const r = await hoist(['lint', p]);
  expect(r).toEqual({
    code: 0,
    err: '',
    out: `${p}:1: [FromAsCasing] 'as' and 'FROM' keywords' casing do not match\n${p}:2: [JSONArgsRecommended] JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n`,
  });
  const strict = file('strict.Dockerfile', '# check=error=true\nFROM scratch\nCMD run\n');
  expect((await hoist(['lint', '-f', strict])).code).toBe(1);
  expect((await hoist(['lint', '--build-arg', 'X=1', strict])).out).toContain('[UnusedBuildArg] Build argument "X"');
});

test('lint fails on what the build would reject: an unknown target, a bad ${', async () => {
  expect(await hoist(['lint', '--target', 'nope', '-'], 'FROM scratch AS app\n')).toMatchObject({
    code: 1,
    err: expect.stringContaining('target stage "nope" could not be found'),
  });
  const r = await hoist(['lint', '-'], 'FROM scratch\n\nWORKDIR ${A\n');
  expect(r).toMatchObject({ code: 1, err: expect.stringContaining('Dockerfile:3: failed to process') });
});

test('usage errors exit 2 and say what is wrong', async () => {
  expect(await hoist(['parse'])).toMatchObject({ code: 2, err: expect.stringContaining('needs a Dockerfile') });
  expect(await hoist(['parse', '--bogus', 'x'])).toMatchObject({
    code: 2,
    err: expect.stringContaining('unknown option --bogus'),
  });
  expect(await hoist(['parse', path.join(dir, 'missing')])).toMatchObject({
    code: 2,
    err: expect.stringContaining('no such file'),
  });
  expect(await hoist(['frobnicate'])).toMatchObject({
    code: 2,
    err: expect.stringContaining('unknown command "frobnicate"'),
  });
  expect(await hoist(['lint', '--platform', 'linux/', '-'], 'FROM x\n')).toMatchObject({
    code: 2,
    err: expect.stringContaining('invalid platform'),
  });
});

test('build: a value of --output, --secret or --ssh that does not parse is a usage error (exit 2)', async () => {
  const ctx = mkdtempSync(path.join(os.tmpdir(), 'hoist-cli-build-'));
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\n');
  expect(await hoist(['build', '--output', 'type=weird', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('unknown type "weird"'),
  });
  expect(await hoist(['build', '--output', 'type=local', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('needs dest=PATH'),
  });
  expect(await hoist(['build', '--secret', 'foo=bar', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('unexpected key "foo"'),
  });
  expect(await hoist(['build', '--secret', 'src=/x', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('needs id='),
  });
  expect(await hoist(['build', '--ssh', '=x', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('needs an id'),
  });
  expect(await hoist(['build', '--isolation', 'vm', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('--isolation vm: expected auto, runc, proot, chroot'),
  });
  expect(await hoist(['build', '--images', 'r/app', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining("--images names the image by tag rules, which need the CI's facts"),
  });
  expect(await hoist(['build', '--cache-from', 'type=weird,ref=x', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('unknown type "weird" (registry, local, gha)'),
  });
  expect(await hoist(['build', '--cache-from', 'type=gha,scop=x', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('type=gha takes scope, url, token; not scop'),
  });
  expect(await hoist(['build', '--cache-to', 'type=gha,max-size=lots', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('max-size "lots" is not a size'),
  });
  expect(await hoist(['build', '--cache-to', 'type=gha,scope=', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('scope is empty'),
  });
  const leaky = await hoist(['build', '--cache-to', 'type=gha,token=s3cr3t-token,mode=all', ctx]);
  expect(leaky).toMatchObject({
    code: 2,
    err: expect.stringContaining('type=gha,token=***,mode=all: mode must be min or max'),
  });
  expect(leaky.err).not.toContain('s3cr3t-token');
  expect(await hoist(['build', '--cache-to', 'type=registry', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('type=registry needs ref=NAME'),
  });
  expect(await hoist(['build', '--cache-to', 'type=local,dest=/x,mode=all', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('mode must be min or max'),
  });
  expect(await hoist(['build', '--cache-to', 'inline', ctx])).toMatchObject({
    code: 2,
    err: expect.stringContaining('expected key=value fields'),
  });
});

test("build -f - reads the Dockerfile from standard input, with the context's .dockerignore", async () => {
  const ctx = mkdtempSync(path.join(os.tmpdir(), 'hoist-cli-stdin-'));
  writeFileSync(path.join(ctx, 'a.txt'), 'a');
  writeFileSync(path.join(ctx, 'b.txt'), 'b');
  writeFileSync(path.join(ctx, '.dockerignore'), 'b.txt\n');
  const store = path.join(ctx, '..', `${path.basename(ctx)}-store`);
  const ok = await hoist(
    ['build', '--store', store, '--progress', 'quiet', '-f', '-', ctx],
    'FROM scratch\nCOPY a.txt /\n',
  );
  expect(ok).toMatchObject({ code: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}\n$/) });
  const ignored = await hoist(
    ['build', '--store', store, '--progress', 'quiet', '-f', '-', ctx],
    'FROM scratch\nCOPY b.txt /\n',
  );
  expect(ignored).toMatchObject({
    code: 1,
    err: expect.stringMatching(
      /^error: Dockerfile:2: b\.txt: not found in the build context \(it is excluded by \.dockerignore\)/,
    ),
  });
});

test('build -q / --quiet: no progress, only the image digest (as docker buildx build -q)', async () => {
  const ctx = mkdtempSync(path.join(os.tmpdir(), 'hoist-cli-quiet-'));
  writeFileSync(path.join(ctx, 'a.txt'), 'a');
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /\n');
  const store = path.join(ctx, '..', `${path.basename(ctx)}-store`);
  for (const flag of ['-q', '--quiet']) {
    const r = await hoist(['build', '--store', store, flag, ctx]);
    expect(r).toEqual({ code: 0, out: expect.stringMatching(/^sha256:[0-9a-f]{64}\n$/), err: '' });
  }
});

test('version matches package.json', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  expect(version).toBe(pkg.version);
  expect((await hoist(['--version'])).out).toBe(`hoist ${pkg.version}\n`);
});
