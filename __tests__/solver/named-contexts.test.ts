// --build-context NAME=VALUE (the Action's build-contexts): what it accepts and refuses, and that a named
// directory's content is part of the cache key of what reads it. (Its images equal docker 26's: the differential
// suite's named-context case.)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseBuildContext } from '../../src/solver/named-contexts.js';
import { hoist } from '../helpers/hoist.js';

const work = mkdtempSync(path.join(tmpdir(), 'hoist-named-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test('values: docker-image://REF, a directory; the rest refused saying what to give', () => {
  mkdirSync(path.join(work, 'dir'));
  expect(parseBuildContext('alpine=docker-image://alpine:3.19', work)).toEqual([
    'alpine',
    { kind: 'image', ref: 'alpine:3.19' },
  ]);
  expect(parseBuildContext('docker.io/library/alpine:latest=docker-image://mirror/alpine', work)).toEqual([
    'alpine',
    { kind: 'image', ref: 'mirror/alpine' },
  ]);
  expect(parseBuildContext('src=dir', work)).toEqual(['src', { kind: 'local', dir: path.join(work, 'dir') }]);
  expect(() => parseBuildContext('src', work)).toThrow('build context "src": expected NAME=VALUE');
  expect(() => parseBuildContext('src=missing', work)).toThrow('build context src: missing is not a directory');
  expect(() => parseBuildContext(`l=oci-layout:///tmp/layout@sha256:${'a'.repeat(64)}`, work)).toThrow(
    'oci-layout:// is not supported yet',
  );
  expect(() => parseBuildContext('g=https://github.com/o/r.git', work)).toThrow('a Git or HTTP URL is not supported');
  expect(() => parseBuildContext('t=target:base', work)).toThrow("target: is bake's");
});

describe('hoist build --build-context', () => {
  const ctx = path.join(work, 'ctx');
  const named = path.join(work, 'named');
  mkdirSync(ctx, { recursive: true });
  mkdirSync(named, { recursive: true });
  writeFileSync(path.join(named, 'f.txt'), 'one\n');
  const store = path.join(work, 'store');
  let n = 0;
  async function build(dockerfile: string) {
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile);
    const meta = path.join(work, `meta${n++}.json`);
    const r = await hoist([
      'build',
      '--store',
      store,
      '--build-context',
      `src=${named}`,
      '--metadata-file',
      meta,
      '-o',
      `type=local,dest=${path.join(work, `out${n}`)}`,
      ctx,
    ]);
    return {
      r,
      out: path.join(work, `out${n}`),
      steps:
        r.code === 0
          ? (JSON.parse(readFileSync(meta, 'utf8')) as { 'hoist.steps': { instruction: string; cached: boolean }[] })[
              'hoist.steps'
            ]
          : [],
    };
  }

  test('COPY --from a named directory: its content is in the key (changed: copied again; unchanged: cached)', async () => {
    const df = 'FROM scratch\nCOPY --from=src f.txt /f.txt\n';
    const first = await build(df);
    expect(`${first.r.code}\n${first.r.err}`).toBe(`0\n${first.r.err}`);
    expect(readFileSync(path.join(first.out, 'f.txt'), 'utf8')).toBe('one\n');
    const same = await build(df);
    expect(same.steps.find((s) => s.instruction.startsWith('COPY'))?.cached).toBe(true);
    writeFileSync(path.join(named, 'f.txt'), 'two\n');
    const changed = await build(df);
    expect(changed.steps.find((s) => s.instruction.startsWith('COPY'))?.cached).toBe(false);
    expect(readFileSync(path.join(changed.out, 'f.txt'), 'utf8')).toBe('two\n');
  });

  test('a source outside the named directory, and FROM a directory, fail clearly', async () => {
    const outside = await build('FROM scratch\nCOPY --from=src ../../etc/passwd /p\n');
    expect(outside.r.code).toBe(1);
    expect(outside.r.err).not.toContain('root:x:0:0');
    const from = await build('FROM src\n');
    expect(from.r.code).toBe(1);
    expect(from.r.err).toContain(
      'FROM src: the build context src is a directory; FROM a directory is not supported yet',
    );
    const bad = await hoist(['build', '--store', store, '--build-context', 'x=oci-layout:///nowhere', ctx]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('oci-layout:// is not supported yet');
  });
});
