// The build plan: ARG scopes, FROM expansion, the stage graph, the target and pruning.
import {
  type DockerfileError,
  planBuild,
  readDockerfile,
  StageScope,
  type PlanOptions,
} from '../../src/dockerfile/index.js';
import { parsePlatform } from '../../src/image/platform.js';

const amd64 = parsePlatform('linux/amd64');
const plan = (text: string, opts: PlanOptions = {}) =>
  planBuild(readDockerfile(text), { buildPlatform: amd64, ...opts });

describe('global ARGs and FROM', () => {
  test('global ARGs expand in FROM; --build-arg overrides the default', () => {
    const text = 'ARG BASE=alpine\nARG TAG=3.20\nFROM ${BASE}:${TAG} AS a\nFROM scratch\n';
    expect(plan(text).stages[0].base).toEqual({ kind: 'image', ref: 'alpine:3.20' });
    expect(plan(text, { buildArgs: { TAG: 'edge' } }).stages[0].base).toEqual({ kind: 'image', ref: 'alpine:edge' });
    expect(plan(text).stages[1].base).toEqual({ kind: 'scratch' });
  });

  test('the platform args are in the global scope', () => {
    const p = plan('FROM --platform=$BUILDPLATFORM img:$TARGETARCH\n', {
      targetPlatform: parsePlatform('linux/arm64/v8'),
    });
    expect(p.stages[0]).toMatchObject({ base: { ref: 'img:arm64' }, platform: { os: 'linux', architecture: 'amd64' } });
    expect(p.globalArgs.get('TARGETPLATFORM')).toBe('linux/arm64');
    expect(p.globalArgs.get('TARGETVARIANT')).toBe('');
  });

  test('TARGETSTAGE is the target stage\'s name: --target, else the last stage\'s name ("default" when unnamed)', () => {
    // BuildKit's defaultArgs (dockerfile2llb convert.go) and its testTargetStageNameArg.
    const text = 'ARG WHICH=$TARGETSTAGE\nFROM scratch AS Foo\nFROM scratch AS bar\n';
    expect(plan(text).globalArgs.get('TARGETSTAGE')).toBe('bar');
    expect(plan(text).globalArgs.get('WHICH')).toBe('bar');
    expect(plan(text, { target: 'foo' }).globalArgs.get('TARGETSTAGE')).toBe('foo');
    expect(plan('FROM scratch AS a\nFROM scratch\n').globalArgs.get('TARGETSTAGE')).toBe('default');
  });

  test('an empty base name is an error at the FROM line; a bad platform too', () => {
    expect(() => plan('ARG B\nFROM $B\n')).toThrow('base name ($B) should not be blank');
    expect(() => plan('FROM --platform=linux/ scratch\n')).toThrow('FROM --platform');
  });

  test('FROM names an earlier stage, case-insensitively', () => {
    const p = plan('FROM alpine AS base\nFROM BASE\n');
    expect(p.stages[1].base).toEqual({ kind: 'stage', index: 0 });
    expect(p.order).toEqual([0, 1]);
  });
});

describe('the stage graph', () => {
  const text = [
    'FROM alpine AS deps',
    'FROM alpine AS build',
    'COPY --from=deps /a /a',
    'FROM alpine AS tools',
    'FROM build AS test',
    'RUN --mount=type=bind,from=tools,target=/t true',
    'FROM scratch',
    'COPY --from=1 /out /out',
    'COPY --from=busybox:1.36 /bin/busybox /bin/',
  ].join('\n');

  test('dependencies through FROM, COPY --from (name, index, image) and RUN --mount from=', () => {
    const p = plan(text);
    expect(p.stages.map((s) => s.deps)).toEqual([[], [0], [], [1, 2], [1]]);
    const last = p.stages[4];
    expect([...last.sources.values()]).toEqual([
      { kind: 'stage', index: 1 },
      { kind: 'image', ref: 'busybox:1.36' },
    ]);
  });

  test('the target selects and orders only what it needs', () => {
    expect(plan(text).order).toEqual([0, 1, 4]);
    expect(plan(text, { target: 'test' }).order).toEqual([0, 1, 2, 3]);
    expect(plan(text, { target: 'TOOLS' }).order).toEqual([2]);
  });

  test('an unknown target suggests the closest stage', () => {
    let e: DockerfileError | undefined;
    try {
      plan(text, { target: 'buld' });
    } catch (x) {
      e = x as DockerfileError;
    }
    // BuildKit's suggest.WrapError: an edit distance under 3, appended to the message.
    expect(e?.detail).toBe('target stage "buld" could not be found (did you mean build?)');
    expect(() => plan(text, { target: 'biuld' })).toThrow(
      'target stage "biuld" could not be found (did you mean build?)',
    );
    expect(() => plan(text, { target: 'production' })).toThrow(/target stage "production" could not be found$/);
  });

  test('COPY --from or a mount from= a stage defined later is an error, when the build runs that step', () => {
    // moby/buildkit#4568 (dispatchState.dispatched): "cannot copy from stage %q, it needs to be defined before current stage %q".
    const later = 'FROM scratch AS first\nCOPY --from=second / /\nFROM scratch AS second\nCOPY a /\n';
    expect(() => plan(later, { target: 'first' })).toThrow(
      expect.objectContaining({
        line: 2,
        detail: 'cannot copy from stage "second", it needs to be defined before current stage "first"',
      }),
    );
    expect(() =>
      plan('FROM scratch\nCOPY --from=1 / /\nFROM scratch AS z\nCOPY a /\nFROM scratch\nCOPY --from=0 / /\n'),
    ).toThrow('cannot copy from stage "1", it needs to be defined before current stage "stage-0"');
    // the target does not need the first stage: not checked, as BuildKit dispatches only what it builds
    expect(() => plan(later)).not.toThrow();
    expect(() =>
      plan('FROM scratch AS a\nRUN --mount=type=bind,from=b,target=/mnt true\nFROM scratch AS b\n', { target: 'a' }),
    ).toThrow('cannot mount from stage "b" to "/mnt", stage needs to be defined before current command');
  });

  test('cycles are errors, even among stages the target does not need', () => {
    expect(() => plan('FROM a AS x\nCOPY --from=y / /\nFROM a AS y\nCOPY --from=x / /\nFROM scratch\n')).toThrow(
      'circular dependency detected on stage: x',
    );
  });

  test('--from does not expand variables and says what to do instead', () => {
    // BuildKit's testDockerfileCopyFromArgs wording; and commands_runmount.go's for a mount.
    expect(() => plan('ARG S=x\nFROM a\nCOPY --from=$S / /\n')).toThrow(
      'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
    );
    expect(() => plan('ARG S=x\nFROM a\nRUN --mount=from=$S,target=/m true\n')).toThrow(
      "'from' doesn't support variable expansion, define alias stage instead",
    );
    expect(() => plan('FROM a\nCOPY --from=3 / /\n')).toThrow('invalid stage index 3');
    expect(() => plan('FROM a\n\nCOPY --from=${build / /\n')).toThrow(
      expect.objectContaining({ line: 3, detail: expect.stringContaining("missing '}'") }),
    );
  });
});

describe('build args', () => {
  test('args that nothing declares are reported; predefined ones are not', () => {
    const p = plan('ARG A\nFROM x AS one\nARG B\nFROM y\nARG C\n', {
      buildArgs: { A: '1', B: '2', C: '3', D: '4', HTTP_PROXY: 'p', TARGETOS: 'linux' },
    });
    expect(p.unusedBuildArgs).toEqual(['B', 'D']);
  });
});

describe('stage scope', () => {
  const scopeFor = (text: string, buildArgs: Record<string, string> = {}) => {
    const p = plan(text, { buildArgs });
    const scope = new StageScope({
      escapeToken: '\\',
      globalArgs: p.globalArgs,
      buildArgs: p.buildArgs,
      baseEnv: [['HOME', '/root']],
    });
    const expanded = p.dockerfile.stages[0].commands.map((ins) => {
      const e = scope.expandInstruction(ins);
      scope.apply(ins);
      return e;
    });
    return { scope, expanded };
  };

  test('ENV pairs see the values from before the instruction; ENV goes to the config, ARG does not', () => {
    const { scope, expanded } = scopeFor('FROM x\nENV A=1\nENV A=2 B=$A\nARG C=3\nWORKDIR $HOME/$C\n');
    expect(scope.env).toEqual(
      new Map([
        ['HOME', '/root'],
        ['A', '2'],
        ['B', '1'],
      ]),
    );
    expect(scope.vars.get('C')).toBe('3');
    expect(expanded[3]).toMatchObject({ path: '/root/3' });
  });

  test('stage ARGs take build args, then defaults, then the global value; later names see earlier ones', () => {
    const { scope } = scopeFor('ARG G=global\nARG H\nFROM x\nARG G\nARG H\nARG A=a B=${A}b\nARG D=d\n', { D: 'built' });
    expect([...scope.args]).toEqual([
      ['G', 'global'],
      ['H', undefined],
      ['A', 'a'],
      ['B', 'ab'],
      ['D', 'built'],
    ]);
  });

  test('EXPOSE splits expanded words; COPY expands sources, dest, chown, chmod but not --from', () => {
    const { expanded } = scopeFor(
      'FROM x\nENV P="80 443" U=app\nEXPOSE $P 8080\nCOPY --chown=$U --chmod=$M $HOME/a /$U/\n',
    );
    expect(expanded[1]).toMatchObject({ ports: ['80', '443', '8080'] });
    expect(expanded[2]).toMatchObject({ chown: 'app', chmod: '', sources: ['/root/a'], dest: '/app/' });
  });

  test('RUN, CMD and ENTRYPOINT are left for the shell', () => {
    const { expanded } = scopeFor('FROM x\nRUN echo $HOME\nCMD echo $HOME\n');
    expect(expanded[0]).toMatchObject({ command: { args: ['echo $HOME'] } });
    expect(expanded[1]).toMatchObject({ command: { args: ['echo $HOME'] } });
  });

  test('a bad word is a DockerfileError at its line', () => {
    expect(() => scopeFor('FROM x\n\nWORKDIR ${A\n')).toThrow(expect.objectContaining({ line: 3 }));
  });
});
