// Features the BuildKit of Docker 20.10 (this machine's oracle) lacks: heredoc sources, --chmod (octal and
// symbolic), --link, --parents, --exclude. Checked against expectations written here, from BuildKit's
// documentation (frontend/dockerfile/docs/reference.md) and its dockerfile2llb behaviour.
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseChmod } from '../../src/dockerfile/chmod.js';
import { fsObject, readSaved } from '../helpers/flatten.js';
import { hoist, hoistOk } from '../helpers/hoist.js';
import { run } from '../helpers/tools.js';

async function buildFs(dockerfile: string, files: Record<string, string | Buffer> = {}, args: string[] = []) {
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
  writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
  for (const [n, t] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, n)), { recursive: true });
    writeFileSync(path.join(dir, n), t);
  }
  run('sh', ['-c', 'find . -exec touch -h -d @1700000000 {} + && chmod 644 $(find . -type f)'], { cwd: dir });
  const out = mkdtempSync(path.join(tmpdir(), 'hoist-new-out-'));
  const tar = path.join(out, 'out.tar');
  await hoistOk([
    'build',
    '--progress',
    'quiet',
    '--store',
    path.join(out, 'store'),
    ...args,
    '-o',
    `type=docker,dest=${tar}`,
    dir,
  ]);
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
    // BuildKit's testCopyInvalidChmod: "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777".
    expect(() => parseChmod('u+q')).toThrow(/octal.*symbolic/);
    expect(() => parseChmod('64a')).toThrow(
      "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777",
    );
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
    expect((config.history as { created_by: string }[]).map((h) => h.created_by)).toContain(
      'COPY <<RAW <<two /dir/ # buildkit',
    );
  });

  test('unquoted heredoc sources: quotes are characters (variables inside them expanded), backslash escapes processed', async () => {
    // BuildKit's testHeredocVarSubstitution and testCopyHeredocSpecialSymbols (frontend/dockerfile/
    // dockerfile_heredoc_test.go): dockerfile2llb expands heredoc sources with a lexer whose SkipProcessQuotes is set.
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      [
        'FROM scratch',
        'ARG name=world',
        'COPY <<EOF /q1',
        "Hello '${name}'!",
        'EOF',
        'COPY <<EOF /q2',
        'Hello "${name}"!',
        'EOF',
        "COPY <<'EOF' /qsingle1",
        "Hello '${name}'!",
        'EOF',
        'COPY <<"EOF" /qdouble2',
        'Hello "${name}"!',
        'EOF',
        'COPY <<EOF /quotefile',
        '"quotes in file"',
        'EOF',
        'COPY <<EOF /slashfile1',
        '\\',
        'EOF',
        'COPY <<EOF /slashfile2',
        '\\\\',
        'EOF',
        'COPY <<EOF /slashfile3',
        '\\$',
        'EOF',
        'COPY <<"EOF" /rawslashfile2',
        '\\\\',
        'EOF',
        'COPY <<"EOF" /rawslashfile3',
        '\\$',
        'EOF',
        '',
      ].join('\n'),
    );
    const out = path.join(dir, 'out');
    await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      path.join(dir, 'store'),
      '-o',
      `type=local,dest=${out}`,
      dir,
    ]);
    const read = (f: string) => readFileSync(path.join(out, f), 'utf8');
    expect(
      Object.fromEntries(
        [
          'q1',
          'q2',
          'qsingle1',
          'qdouble2',
          'quotefile',
          'slashfile1',
          'slashfile2',
          'slashfile3',
          'rawslashfile2',
          'rawslashfile3',
        ].map((f) => [f, read(f)]),
      ),
    ).toEqual({
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
    const { fs } = await buildFs(
      'FROM scratch\nCOPY --chmod=u+x,go-r --chown=5:6 tree /t\nCOPY --chmod=0600 a.sh /a.sh\n',
      { 'tree/f': 'f', 'tree/d/g': 'g', 'a.sh': 'a' },
    );
    expect(fs['t/f']).toMatchObject({ mode: '700', uid: 5, gid: 6 });
    expect(fs['a.sh']).toMatchObject({ mode: '600' });
  });

  test('--parents keeps the source path, below a /./ pivot', async () => {
    const { fs } = await buildFs(
      'FROM scratch\nCOPY --parents a/b/c.txt x/./y/z.txt /dst/\nCOPY --parents src/*/m.go /go/\n',
      { 'a/b/c.txt': 'c', 'x/y/z.txt': 'z', 'src/p/m.go': 'p', 'src/q/m.go': 'q' },
    );
    expect(
      Object.keys(fs)
        .filter((k) => fs[k].type === 'file')
        .sort(),
    ).toEqual(['dst/a/b/c.txt', 'dst/y/z.txt', 'go/src/p/m.go', 'go/src/q/m.go']);
  });

  test('--parents with ** in a source: an include pattern below the pivot, any number of directories deep', async () => {
    // BuildKit's testCopyRelativeParents (doublewildcard, doubleinputs): dockerfile2llb convert_copy.go copies the
    // pivot's contents through IncludePatterns, where ** spans directories and a matched directory comes whole.
    const files = {
      'a/three.txt': '3',
      'a/x/two.txt': '2',
      'a/b/c/one.txt': '1',
      'a/b/no.md': 'n',
      't/a/b/c/d/e/bay': 'y',
      't/a/b2/c/d/e/bar': 'r',
      't/a/b/c2/d/e/baz': 'z',
      't/a/b/c2/d/e2/baz': 'z2',
      't/a/b/c/d/foo': 'f',
    };
    const { fs } = await buildFs(
      `FROM scratch
COPY --parents a/**/*.txt /dst/
COPY --parents t/a/b*/./c/**/e /double/
COPY --parents t/a/b/c*/./d/**/baz t/a/b*/./c/**/bar /inputs/
`,
      files,
    );
    const under = (d: string) =>
      Object.keys(fs)
        .filter((k) => k.startsWith(`${d}/`) && fs[k].type === 'file')
        .sort();
    expect(under('dst')).toEqual(['dst/a/b/c/one.txt', 'dst/a/three.txt', 'dst/a/x/two.txt']);
    expect(under('double')).toEqual(['double/c/d/e/bar', 'double/c/d/e/bay']);
    expect(under('inputs')).toEqual(['inputs/c/d/e/bar', 'inputs/d/e/baz', 'inputs/d/e2/baz']);
  });

  test('--parents with **: a symlink the pattern matches is copied as the link, not followed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    run(
      'sh',
      [
        '-c',
        'mkdir -p a/b && echo t > a/b/t.txt && ln -s t.txt a/b/l.txt && ln -s /etc/passwd a/b/host.txt && printf "FROM scratch\\nCOPY --parents a/**/*.txt /d/\\n" > Dockerfile',
      ],
      { cwd: dir },
    );
    const out = path.join(dir, 'out');
    await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      path.join(dir, '.store'),
      '-o',
      `type=local,dest=${out}`,
      dir,
    ]);
    expect([
      readlinkSync(path.join(out, 'd/a/b/l.txt')),
      readlinkSync(path.join(out, 'd/a/b/host.txt')),
      readFileSync(path.join(out, 'd/a/b/t.txt'), 'utf8'),
    ]).toEqual(['t.txt', '/etc/passwd', 't\n']);
  });

  test('--chmod applies to the parent directories COPY makes', async () => {
    // BuildKit's testCopyChmod: COPY --chmod=777 foo /parent/foo, then --chmod=770 foo /parent/sub/foo.
    const { fs } = await buildFs(
      'FROM scratch\nCOPY --chmod=777 foo /parent/foo\nCOPY --chmod=770 foo /parent/sub/foo\nCOPY foo /plain/dir/foo\n',
      { foo: 'f' },
    );
    expect([fs.parent.mode, fs['parent/sub'].mode, fs['parent/sub/foo'].mode, fs['plain/dir'].mode]).toEqual([
      '777',
      '770',
      '770',
      '755',
    ]);
  });

  test("ADD --chown applies to the files of an unpacked local archive; without it they keep the archive's owners", async () => {
    // Current BuildKit's solver/llbsolver/file unpack(): archive.TarOptions.ChownOpts from --chown.
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    run('sh', ['-c', 'mkdir -p src/d && echo f > src/d/f && tar -czf a.tgz --owner=1234 --group=5678 -C src d'], {
      cwd: dir,
    });
    const { fs } = await buildFs('FROM scratch\nADD --chown=7:8 a.tgz /owned/\nADD a.tgz /kept/\n', {
      'a.tgz': readFileSync(path.join(dir, 'a.tgz')),
    });
    expect([fs.owned, fs['owned/d'], fs['owned/d/f']].map((e) => [e.uid, e.gid])).toEqual([
      [7, 8],
      [7, 8],
      [7, 8],
    ]);
    expect([fs['kept/d'], fs['kept/d/f']].map((e) => [e.uid, e.gid])).toEqual([
      [1234, 5678],
      [1234, 5678],
    ]);
  });

  test('COPY and ADD into a symlink the image has (dangling, climbing, absolute) write where it leads, inside the image', async () => {
    // BuildKit's testSymlinkDestination: ADD t.tar / (symlink -> ../tmp/symlink-target), COPY foo /symlink/; and
    // unpack() resolves the destination with fs.RootPath in the image.
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    run(
      'sh',
      [
        '-c',
        'mkdir l && ln -s ../tmp/symlink-target l/symlink && ln -s /srv/target l/alink && tar -cf t.tar -C l symlink alink && mkdir -p s/d && echo x > s/d/x && tar -czf x.tgz -C s d',
      ],
      { cwd: dir },
    );
    const ctx = {
      foo: 'content0',
      't.tar': readFileSync(path.join(dir, 't.tar')),
      'x.tgz': readFileSync(path.join(dir, 'x.tgz')),
    };
    const { fs } = await buildFs('FROM scratch\nADD t.tar /\nCOPY foo /symlink/\nADD x.tgz /alink/\n', ctx);
    expect(fs['tmp/symlink-target/foo']).toMatchObject({ type: 'file', size: 8 });
    expect(fs.symlink).toMatchObject({ type: 'symlink' });
    expect(fs['srv/target/d/x']).toMatchObject({ type: 'file' });
    expect(fs.alink).toMatchObject({ type: 'symlink' });
  });

  test('COPY --from a stage follows its symlinks (absolute, relative, chained, under a wildcard) inside the stage', async () => {
    // dockerfile2llb dispatchCopy: FollowSymlinks on every source; fsutil resolves them in the source's root.
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    run(
      'sh',
      [
        '-c',
        'mkdir -p l/deep && ln -s /real l/abs && ln -s ../real l/deep/up && ln -s abs l/chain && tar -cf links.tar -C l .',
      ],
      { cwd: dir },
    );
    const { fs } = await buildFs(
      `FROM scratch AS st
COPY real /real
ADD links.tar /
FROM scratch
COPY --from=st /abs/f /w1
COPY --from=st /deep/up/f /w2
COPY --from=st /chain /w3
COPY --from=st /ab* /w4/
`,
      { 'real/f': 'r', 'links.tar': readFileSync(path.join(dir, 'links.tar')) },
    );
    expect(
      Object.keys(fs)
        .filter((k) => fs[k].type === 'file')
        .sort(),
    ).toEqual(['w1', 'w2', 'w3/f', 'w4/f']);
  });

  test('a unix socket in the context comes in as an empty file', async () => {
    // BuildKit's testCopySocket: the context transfer sends a socket as an empty regular file.
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    run('python3', [
      '-c',
      'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])',
      path.join(dir, 'socket.sock'),
    ]);
    const out = path.join(dir, 'out');
    await hoistOk([
      'build',
      '--progress',
      'quiet',
      '--store',
      path.join(dir, '.store'),
      '-o',
      `type=local,dest=${out}`,
      dir,
    ]);
    const st = lstatSync(path.join(out, 'socket.sock'));
    expect([st.isFile(), st.size]).toEqual([true, 0]);
  });

  test('--exclude leaves out matching paths below each source', async () => {
    const { fs } = await buildFs(
      'FROM scratch\nCOPY --exclude=*.log --exclude=tmp app /app\nCOPY --exclude=b.txt *.txt /txt/\n',
      { 'app/a.go': 'a', 'app/debug.log': 'l', 'app/tmp/x': 'x', 'app/sub/keep.txt': 'k', 'a.txt': 'a', 'b.txt': 'b' },
    );
    const files = Object.keys(fs)
      .filter((k) => fs[k].type === 'file')
      .sort();
    expect(files).toEqual(['app/a.go', 'app/sub/keep.txt', 'txt/a.txt']);
  });

  test('--link makes the layer on an empty filesystem: missing parents are in it', async () => {
    const { fs } = await buildFs('FROM scratch\nCOPY a.txt /etc/\nCOPY --link b.txt /etc/\n', {
      'a.txt': 'a',
      'b.txt': 'b',
    });
    expect(fs['etc/b.txt']).toMatchObject({ type: 'file' });
    expect(fs.etc).toMatchObject({ type: 'directory', mode: '755' });
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

describe('ONBUILD', () => {
  test("a trigger's COPY --from copies from a stage of the Dockerfile it runs in, built for it though nothing else needs it", async () => {
    // BuildKit >= 0.17 (moby/buildkit#5357, docker/buildx#2367): ONBUILD COPY --from names a stage where the trigger runs.
    const df =
      'FROM scratch AS helper\nCOPY real.txt /h.txt\nFROM scratch AS parent\nONBUILD COPY --from=helper /h.txt /from-helper.txt\nCOPY a /a\nFROM parent\n';
    const { fs } = await buildFs(df, { 'real.txt': 'from helper', 'h.txt': 'from the context!', a: 'a' });
    expect(fs['from-helper.txt']).toMatchObject({ type: 'file', size: 11 });
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-onb-'));
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      'FROM scratch AS parent\nONBUILD COPY --from=later /x /x\nFROM parent AS child\nFROM scratch AS later\nCOPY Dockerfile /x\n',
    );
    const r = await hoist([
      'build',
      '--progress',
      'quiet',
      '--store',
      path.join(dir, '.store'),
      '--target',
      'child',
      dir,
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /ONBUILD COPY --from=later \/x \/x: cannot copy from stage "later", it needs to be defined before current stage "child"/,
    );
  });
});

describe('built-in args', () => {
  test('TARGETSTAGE, declared in a stage, is the name of the stage the build is for', async () => {
    // BuildKit's testTargetStageNameArg: ARG TARGETSTAGE in a stage the target builds on.
    const df = 'FROM scratch AS foo\nARG TARGETSTAGE\nLABEL stage=$TARGETSTAGE\nCOPY a /\nFROM foo AS bar\n';
    expect((await buildFs(df, { a: 'a' })).config.config).toMatchObject({ Labels: { stage: 'bar' } });
    expect((await buildFs(df, { a: 'a' }, ['--target', 'foo'])).config.config).toMatchObject({
      Labels: { stage: 'foo' },
    });
  });
});

describe("errors in BuildKit's words, at the Dockerfile line", () => {
  async function buildErr(dockerfile: string, files: Record<string, string> = {}, args: string[] = []) {
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-err-'));
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    for (const [n, t] of Object.entries(files)) writeFileSync(path.join(dir, n), t);
    const r = await hoist(['build', '--progress', 'quiet', '--store', path.join(dir, '.store'), ...args, dir]);
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(/internal error|\n\s+at /);
    return r.err;
  }

  test('an unknown --mount key, and every line of a multi-line instruction shown', async () => {
    // BuildKit instructions/commands_runmount.go parseMount: "unexpected key '%s' in '%s'", with suggest.WrapError.
    const err = await buildErr('FROM scratch\nRUN --mount=typ=cache,target=/c \\\n  true\n');
    expect(err).toMatch(
      /^error: \S*Dockerfile:2: --mount=typ=cache,target=\/c: unexpected key 'typ' in 'typ=cache' \(did you mean type\?\)\n/,
    );
    expect(err).toContain(' 2 | >>> RUN --mount=typ=cache,target=/c \\\n 3 | >>>   true\n');
  });

  test('a mount from= or COPY --from an image that cannot be had: failed to resolve source metadata, at its line', async () => {
    const err = await buildErr('FROM scratch\nRUN --mount=from=127.0.0.1:9/nosuch,target=/x true\n');
    expect(err).toMatch(
      /^error: \S*Dockerfile:2: 127\.0\.0\.1:9\/nosuch: failed to resolve source metadata for 127\.0\.0\.1:9\/nosuch:latest: .*ECONNREFUSED/,
    );
    expect(await buildErr('FROM 127.0.0.1:9/base\nCOPY a /\n', { a: 'a' })).toMatch(
      /^error: \S*Dockerfile:1: 127\.0\.0\.1:9\/base: failed to resolve source metadata for 127\.0\.0\.1:9\/base:latest/,
    );
  });

  test('a required secret not given; a Dockerfile without stages; a misspelt --target', async () => {
    expect(await buildErr('FROM scratch\nRUN --mount=type=secret,id=tok,required true\n')).toMatch(
      /^error: \S*Dockerfile:2: secret tok: not found \(the mount is required\): pass --secret id=tok,src=FILE/,
    );
    // BuildKit's testEmptyStages: "dockerfile contains no stages to build".
    expect(await buildErr('ARG foo=bar\n')).toMatch(/^error: \S*Dockerfile:1: dockerfile contains no stages to build/);
    expect(
      await buildErr('FROM scratch AS build\nCOPY a /\nFROM scratch\nCOPY a /\n', { a: 'a' }, ['--target', 'biuld']),
    ).toMatch(/target stage "biuld" could not be found \(did you mean build\?\)/);
  });

  test('an invalid .dockerignore pattern names the file and line; an invalid --exclude its COPY', async () => {
    expect(await buildErr('FROM scratch\nCOPY . /\n', { '.dockerignore': 'ok\n[\n' })).toMatch(
      /^hoist build: \.dockerignore:2: syntax error in pattern: \[; fix or remove that line/,
    );
    expect(await buildErr('FROM scratch\nCOPY --exclude=[ a /\n', { a: 'a' })).toMatch(
      /^error: \S*Dockerfile:2: syntax error in pattern: \[/,
    );
  });
});

describe('ADD of a local archive into an image with absolute symlinks', () => {
  test("its entries land where the image's links lead (var/run -> /run), the link stays; a directory the archive names replaces a link as tar -x does", async () => {
    const { rawTar } = await import('../helpers/raw-tar.js');
    const base = rawTar([
      { name: 'run/', flag: '5', mode: '0000755\0' },
      { name: 'var/', flag: '5', mode: '0000755\0' },
      { name: 'var/run', flag: '2', linkname: '/run', mode: '0000777\0' },
      { name: 'var/lock', flag: '2', linkname: '/run/lock', mode: '0000777\0' },
    ]);
    const payload = rawTar([
      { name: 'var/run/act/actions/broad/.git/HEAD', body: 'ref: main\n', mode: '0000644\0' },
      { name: 'var/run/act/actions/broad/.git/ORIG_HEAD', flag: '1', linkname: 'var/run/act/actions/broad/.git/HEAD' },
      { name: 'var/lock/', flag: '5', mode: '0000755\0' },
      { name: 'var/lock/held', body: 'x', mode: '0000644\0' },
    ]);
    const { fs } = await buildFs('FROM scratch AS base\nADD base.tar /\nFROM base\nADD payload.tar /\n', {
      'base.tar': base,
      'payload.tar': payload,
    });
    expect(fs['var/run']).toMatchObject({ type: 'symlink', link: '/run' });
    expect(fs['run/act/actions/broad/.git/HEAD']).toMatchObject({ type: 'file' });
    expect(fs['run/act/actions/broad/.git/ORIG_HEAD']).toBeDefined();
    expect(Object.keys(fs).filter((p) => p.startsWith('var/run/'))).toEqual([]);
    // (docker's untar removes what is in the way of a directory entry that is not a directory)
    expect(fs['var/lock']).toMatchObject({ type: 'directory' });
    expect(fs['var/lock/held']).toMatchObject({ type: 'file' });
  });
});

describe("COPY --from --parents when sources are missing (BuildKit's testCopyParentsMissingDirectory)", () => {
  const baseTar = async () => {
    const { rawTar } = await import('../helpers/raw-tar.js');
    const d = (name: string) => ({ name, flag: '5', mode: '0000755\0' });
    return rawTar([
      d('test/'),
      d('test/a/'),
      d('test/a/b/'),
      d('test/a/b/c/'),
      d('test/a/b/c/d/'),
      d('test/a/b/c/d/e/'),
      { name: 'test/a/b/c/d/foo', body: '' },
      { name: 'test/a/b/c/d/e/bay', body: '' },
    ]);
  };
  const build = async (copy: string) =>
    buildFs(`FROM scratch AS base\nADD base.tar /\nFROM scratch\n${copy}\n`, { 'base.tar': await baseTar() });
  const under = (fs: Record<string, unknown>, dir: string) =>
    Object.keys(fs)
      .filter((p) => p === dir || p.startsWith(`${dir}/`))
      .sort();

  test('normal and with a pivot', async () => {
    const normal = (await build('COPY --from=base --parents /test/a/b/c/d /out/')).fs;
    expect(normal['out/test/a/b/c/d/e/bay']).toMatchObject({ type: 'file' });
    expect(normal['out/e']).toBeUndefined();
    expect(normal['out/a']).toBeUndefined();
    const pivot = (await build('COPY --from=base --parents /test/a/b/./c/d /out/')).fs;
    expect(pivot['out/c/d/e']).toMatchObject({ type: 'directory' });
    expect(pivot['out/c/d/foo']).toMatchObject({ type: 'file' });
    expect(pivot['out/a']).toBeUndefined();
    expect(pivot['out/e']).toBeUndefined();
  });

  test("a named file that is not there fails in BuildKit's words", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hoist-new-'));
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      'FROM scratch AS base\nADD base.tar /\nFROM scratch\nCOPY --from=base --parents /test/nonexistent-file /out/\n',
    );
    writeFileSync(path.join(dir, 'base.tar'), await baseTar());
    const r = await hoist(['build', '--progress', 'quiet', '--store', path.join(dir, 'store'), dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/failed to calculate checksum of ref .*: "\/test\/nonexistent-file": not found/);
  });

  test.each([
    ['a wildcard before the pivot that matches nothing', 'COPY --from=base --parents /test/a/b2*/c /out/'],
    ['a wildcard after the pivot that matches nothing', 'COPY --from=base --parents /test/a/b/./c2* /out/'],
  ])('%s: /out and nothing below it', async (_name, copy) => {
    const { fs } = await build(copy);
    expect(fs.out).toMatchObject({ type: 'directory' });
    expect(under(fs, 'out')).toEqual(['out']);
  });
});
