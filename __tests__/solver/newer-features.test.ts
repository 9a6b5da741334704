// Features the BuildKit of Docker 20.10 (this machine's oracle) lacks: heredoc sources, --chmod (octal and
// symbolic), --link, --parents, --exclude. Checked against expectations written here, from BuildKit's
// documentation (frontend/dockerfile/docs/reference.md) and its dockerfile2llb behaviour.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseChmod } from '../../src/dockerfile/chmod.js';
import { fsObject, readSaved } from '../helpers/flatten.js';
import { hoist, hoistOk } from '../helpers/hoist.js';
import { run } from '../helpers/tools.js';

async function buildFs(dockerfile: string, files: Record<string, string> = {}, args: string[] = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  for (const [n, t] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, n)), { recursive: true });
    writeFileSync(path.join(dir, n), t);
  }
  run('sh', ['-c', 'find . -exec touch -h -d @1700000000 {} + && chmod 644 $(find . -type f)'], { cwd: dir });
  const out = mkdtempSync(path.join(tmpdir(), 'hoist-new-out-'));
  const tar = path.join(out, 'out.tar');
  await hoistOk(['build', '--progress', 'quiet', '--store', path.join(out, 'store'), ...args, '-o', `type=docker,dest=${tar}`, dir]);
  mkdirSync(path.join(out, 'x'));
  const saved = await readSaved(tar, path.join(out, 'x'));
  return { fs: fsObject(saved.fs), config: saved.config };
}

describe('symbolic and octal --chmod', () => {
  test.each([
    ['755', 0o644, false, 0o755],
    ['u+x', 0o644, false, 0o744],
    ['+x', 0o644, false, 0o755],
    ['go-w', 0o666, false, 0o644],
    ['a=rX', 0o640, true, 0o555],
    ['a=rX', 0o640, false, 0o444],
    ['a=rX', 0o740, false, 0o555],
    ['u=rwx,g=rx,o=', 0o000, false, 0o750],
    ['u+s,g+s', 0o755, false, 0o6755],
    ['+t', 0o777, true, 0o1777],
  ])('%s on %o (dir %s) → %o', (spec, mode, isDir, want) => {
    expect(parseChmod(spec)(mode, isDir)).toBe(want);
  });
  test('invalid values are refused', () => {
    expect(() => parseChmod('99999')).toThrow(/between 0 and 07777/);
    expect(() => parseChmod('u+q')).toThrow(/octal.*symbolic/);
  });
});

describe('hoist build: newer COPY features', () => {
  test('heredoc sources: named after the delimiter, 0644, variables expanded unless quoted', async () => {
    const { fs, config } = await buildFs(`FROM scratch
ARG NAME=world
COPY <<EOF /greeting.txt
hello $NAME
EOF
COPY <<"RAW" <<two /dir/
keep $NAME
RAW
second
two
`);
    expect(fs['greeting.txt']).toMatchObject({ type: 'file', mode: '644', uid: 0, size: 12 });
    expect(fs['dir/RAW']).toMatchObject({ size: 11 });
    expect(fs['dir/two']).toMatchObject({ size: 7 });
    expect((config.history as { created_by: string }[]).map((h) => h.created_by)).toContain('COPY <<RAW <<two /dir/ # buildkit');
  });

  test('unquoted heredoc sources: quotes are characters (variables inside them expanded), backslash escapes processed', async () => {
    // BuildKit's testHeredocVarSubstitution and testCopyHeredocSpecialSymbols (frontend/dockerfile/
    // dockerfile_heredoc_test.go): dockerfile2llb expands heredoc sources with a lexer whose SkipProcessQuotes is set.
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    writeFileSync(path.join(dir, 'Dockerfile'), [
      'FROM scratch', 'ARG name=world',
      'COPY <<EOF /q1', "Hello '${name}'!", 'EOF',
      'COPY <<EOF /q2', 'Hello "${name}"!', 'EOF',
      "COPY <<'EOF' /qsingle1", "Hello '${name}'!", 'EOF',
      'COPY <<"EOF" /qdouble2', 'Hello "${name}"!', 'EOF',
      'COPY <<EOF /quotefile', '"quotes in file"', 'EOF',
      'COPY <<EOF /slashfile1', '\\', 'EOF',
      'COPY <<EOF /slashfile2', '\\\\', 'EOF',
      'COPY <<EOF /slashfile3', '\\$', 'EOF',
      'COPY <<"EOF" /rawslashfile2', '\\\\', 'EOF',
      'COPY <<"EOF" /rawslashfile3', '\\$', 'EOF',
      '',
    ].join('\n'));
    const out = path.join(dir, 'out');
    await hoistOk(['build', '--progress', 'quiet', '--store', path.join(dir, 'store'), '-o', `type=local,dest=${out}`, dir]);
    const read = (f: string) => readFileSync(path.join(out, f), 'utf8');
    expect(Object.fromEntries(['q1', 'q2', 'qsingle1', 'qdouble2', 'quotefile', 'slashfile1', 'slashfile2', 'slashfile3', 'rawslashfile2', 'rawslashfile3'].map((f) => [f, read(f)]))).toEqual({
      q1: "Hello 'world'!\n",
      q2: 'Hello "world"!\n',
      qsingle1: "Hello '${name}'!\n",
      qdouble2: 'Hello "${name}"!\n',
      quotefile: '"quotes in file"\n',
      slashfile1: '\n',
      slashfile2: '\\\n',
      slashfile3: '$\n',
      rawslashfile2: '\\\\\n',
      rawslashfile3: '\\$\n',
    });
  });

  test('--chmod applies to files and directories; --chown with it', async () => {
    const { fs } = await buildFs('FROM scratch\nCOPY --chmod=u+x,go-r --chown=5:6 tree /t\nCOPY --chmod=0600 a.sh /a.sh\n', { 'tree/f': 'f', 'tree/d/g': 'g', 'a.sh': 'a' });
    expect(fs['t/f']).toMatchObject({ mode: '700', uid: 5, gid: 6 });
    expect(fs['a.sh']).toMatchObject({ mode: '600' });
  });

  test('--parents keeps the source path, below a /./ pivot', async () => {
    const { fs } = await buildFs('FROM scratch\nCOPY --parents a/b/c.txt x/./y/z.txt /dst/\nCOPY --parents src/*/m.go /go/\n', { 'a/b/c.txt': 'c', 'x/y/z.txt': 'z', 'src/p/m.go': 'p', 'src/q/m.go': 'q' });
    expect(Object.keys(fs).filter((k) => fs[k].type === 'file').sort()).toEqual(['dst/a/b/c.txt', 'dst/y/z.txt', 'go/src/p/m.go', 'go/src/q/m.go']);
  });

  test('--exclude leaves out matching paths below each source', async () => {
    const { fs } = await buildFs('FROM scratch\nCOPY --exclude=*.log --exclude=tmp app /app\nCOPY --exclude=b.txt *.txt /txt/\n', { 'app/a.go': 'a', 'app/debug.log': 'l', 'app/tmp/x': 'x', 'app/sub/keep.txt': 'k', 'a.txt': 'a', 'b.txt': 'b' });
    const files = Object.keys(fs).filter((k) => fs[k].type === 'file').sort();
    expect(files).toEqual(['app/a.go', 'app/sub/keep.txt', 'txt/a.txt']);
  });

  test('--link makes the layer on an empty filesystem: missing parents are in it', async () => {
    const { fs } = await buildFs('FROM scratch\nCOPY a.txt /etc/\nCOPY --link b.txt /etc/\n', { 'a.txt': 'a', 'b.txt': 'b' });
    expect(fs['etc/b.txt']).toMatchObject({ type: 'file' });
    expect(fs['etc']).toMatchObject({ type: 'directory', mode: '755' });
  });

  test('a bad --chmod points at its line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY --chmod=u+q a /\n');
    writeFileSync(path.join(dir, 'a'), 'a');
    const r = await hoist(['build', '--store', path.join(dir, '.store'), dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Dockerfile:2[\s\S]*invalid chmod parameter/);
  });
});
