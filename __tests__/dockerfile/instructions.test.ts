// Typed instructions: flags, forms and the errors BuildKit gives for each instruction.
import { DockerfileError, readDockerfile, type Instruction } from '../../src/dockerfile/index.js';

function commands(body: string): Instruction[] {
  return readDockerfile(`FROM busybox\n${body}`).stages[0].commands;
}

function error(body: string): DockerfileError {
  try {
    readDockerfile(`FROM busybox\n${body}`);
  } catch (e) {
    if (e instanceof DockerfileError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

test('FROM with platform and a stage name (lower-cased)', () => {
  const df = readDockerfile('FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n');
  expect(df.stages[0]).toMatchObject({
    index: 0,
    name: 'build',
    from: { image: 'golang:1.22', platform: '$BUILDPLATFORM' },
  });
});

test.each([
  ['FROM a b\n', 'FROM requires either one or three arguments'],
  ['FROM a AS 1x\n', 'invalid name for build stage'],
  ['FROM --plat=x a\n', 'unknown flag: --plat'],
  ['RUN x\n', 'no build stage in current context'],
  ['ARG A\n', 'dockerfile contains no stages to build'],
])('%j is rejected: %s', (text, message) => {
  expect(() => readDockerfile(text)).toThrow(message);
});

test('RUN shell form, exec form, flags', () => {
  const [a, b] = commands(
    'RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/tmp --network=none echo hi\nRUN ["echo", "hi"]\n',
  );
  expect(a).toMatchObject({
    kind: 'run',
    mounts: ['type=cache,target=/root/.cache', 'type=tmpfs,target=/tmp'],
    network: 'none',
    command: { args: ['echo hi'], prependShell: true },
  });
  expect(b).toMatchObject({ kind: 'run', command: { args: ['echo', 'hi'], prependShell: false } });
});

test('RUN with a heredoc keeps the script as a file', () => {
  const [run] = commands('RUN <<EOF\nset -e\necho hi\nEOF\n');
  expect(run).toMatchObject({
    kind: 'run',
    command: { args: ['<<EOF'], files: [{ name: 'EOF', data: 'set -e\necho hi\n', expand: true }] },
  });
});

test('COPY and ADD flags, sources and destination, heredoc sources', () => {
  const [c, a] = commands(
    'COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=tmp a b /dest/\n' +
      'ADD --checksum=sha256:abc --keep-git-dir https://example.com/x.tgz <<-EOF /opt/\n\thello\nEOF\n',
  );
  expect(c).toMatchObject({
    kind: 'copy',
    from: 'build',
    chown: 'app:app',
    chmod: '0755',
    link: true,
    parents: true,
    exclude: ['*.md', 'tmp'],
    sources: ['a', 'b'],
    dest: '/dest/',
  });
  expect(a).toMatchObject({
    kind: 'add',
    checksum: 'sha256:abc',
    keepGitDir: true,
    sources: ['https://example.com/x.tgz'],
    inline: [{ name: 'EOF', data: 'hello\n', chomp: true }],
    dest: '/opt/',
  });
});

test.each([
  ['COPY a\n', 'requires at least two arguments'],
  ['COPY a <<EOF\nx\nEOF\n', 'cannot accept a heredoc as a destination'],
  ['COPY --link=maybe a b\n', 'expecting boolean value for flag link'],
  ['COPY --from a b\n', 'missing a value on flag: --from'],
  ['COPY --from=a --from=b a b\n', 'duplicate flag specified: from'],
  ['COPY --form=a a b\n', 'unknown flag: --form'],
  ['WORKDIR\n', 'WORKDIR requires exactly one argument'],
  ['USER\n', 'USER requires exactly one argument'],
  ['SHELL sh -c\n', 'SHELL requires the arguments to be in JSON form'],
  ['HEALTHCHECK --interval=5 CMD true\n', 'invalid duration'],
  ['HEALTHCHECK --interval=1us CMD true\n', 'cannot be less than 1ms'],
  ['HEALTHCHECK --retries=-1 CMD true\n', '--retries cannot be negative'],
  ['HEALTHCHECK CMD\n', 'Missing command after HEALTHCHECK CMD'],
  ['HEALTHCHECK NONE x\n', 'HEALTHCHECK NONE takes no arguments'],
  ['HEALTHCHECK PING x\n', 'Unknown type'],
  ['ONBUILD ONBUILD RUN x\n', 'Chaining ONBUILD'],
  ['ONBUILD FROM x\n', "FROM isn't allowed as an ONBUILD trigger"],
  ['VOLUME [""]\n', 'VOLUME specified can not be an empty string'],
  ['LABEL =x\n', 'names can not be blank'],
  ['ENV a=1 b\n', 'can\'t find = in "b"'],
  ['EXPOSE\n', 'EXPOSE requires at least one argument'],
])('%j is rejected: %s', (body, message) => {
  const e = error(body);
  expect(e.message).toContain(message);
  expect(e.line).toBe(2);
});

test('an unknown flag says so as BuildKit does, with its suggestion', () => {
  const flag = error('RUN --mont=type=cache,target=/c true\n');
  expect(flag.detail).toBe('unknown flag: --mont');
  expect(flag.hint).toBe('did you mean mount?');
  expect(error('COPY --exclude a b\n').detail).toBe('missing a value on flag: --exclude');
});

test('unknown instructions suggest the closest one', () => {
  const e = error('COPPY a b\n');
  expect(e.detail).toBe('unknown instruction: COPPY');
  expect(e.hint).toBe('did you mean COPY?');
});

test('HEALTHCHECK options become nanoseconds; shell form is CMD-SHELL', () => {
  const [h, j, n] = commands(
    'HEALTHCHECK --interval=1m30s --timeout=3s --start-period=500ms --start-interval=1s --retries=3 CMD curl -f localhost\n' +
      'HEALTHCHECK CMD ["curl", "x"]\nHEALTHCHECK NONE\n',
  );
  expect(h).toMatchObject({
    test: ['CMD-SHELL', 'curl -f localhost'],
    interval: 90e9,
    timeout: 3e9,
    startPeriod: 5e8,
    startInterval: 1e9,
    retries: 3,
  });
  expect(j).toMatchObject({ test: ['CMD', 'curl', 'x'] });
  expect(n).toMatchObject({ test: ['NONE'] });
});

test('ENV and LABEL in both forms, ARG with and without defaults', () => {
  const [e1, e2, l, a] = commands('ENV A 1 2\nENV B=1 C="x y"\nLABEL "k"="v" k2=v2\nARG X Y=2 Z=\n');
  expect(e1).toMatchObject({ pairs: [{ key: 'A', value: '1 2', legacy: true }] });
  expect(e2).toMatchObject({
    pairs: [
      { key: 'B', value: '1' },
      { key: 'C', value: '"x y"' },
    ],
  });
  expect(l).toMatchObject({
    pairs: [
      { key: '"k"', value: '"v"' },
      { key: 'k2', value: 'v2' },
    ],
  });
  expect(a).toMatchObject({ args: [{ key: 'X' }, { key: 'Y', value: '2' }, { key: 'Z', value: '' }] });
});

test('CMD and ENTRYPOINT forms, ONBUILD expression, MAINTAINER, STOPSIGNAL, VOLUME, EXPOSE', () => {
  const ins = commands(
    'CMD echo $HOME\nENTRYPOINT ["/bin/app"]\nONBUILD COPY . /app\nMAINTAINER me <me@x>\nSTOPSIGNAL SIGTERM\nVOLUME /a /b\nEXPOSE 80 443/udp\n',
  );
  expect(ins.map((i) => i.kind)).toEqual([
    'cmd',
    'entrypoint',
    'onbuild',
    'maintainer',
    'stopsignal',
    'volume',
    'expose',
  ]);
  expect(ins[0]).toMatchObject({ command: { args: ['echo $HOME'], prependShell: true } });
  expect(ins[1]).toMatchObject({ command: { args: ['/bin/app'], prependShell: false } });
  expect(ins[2]).toMatchObject({ expression: 'COPY . /app' });
  expect(ins[3]).toMatchObject({ maintainer: 'me <me@x>' });
  expect(ins[5]).toMatchObject({ volumes: ['/a', '/b'] });
  expect(ins[6]).toMatchObject({ ports: ['80', '443/udp'] });
  expect(ins[0].code).toBe('CMD echo $HOME');
});
