// Cache invalidation equals docker's: a multi-stage Dockerfile is built by docker (BuildKit of Debian's dockerd,
// --progress=plain, whose `#N CACHED` lines say which steps it reused) and by hoist (the local store as its cache),
// then a sequence of edits is applied and both rebuild after each. For every edit the steps hoist ran again are
// the steps docker ran again, and the two images stay identical. Real parts: docker-registry, dockerd, runc.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Case, comparableTrees, normaliseHistory, writeContext } from '../helpers/differential.js';
import { type Dockerd, startDockerd } from '../helpers/dockerd.js';
import { comparableConfig, readSaved } from '../helpers/flatten.js';
import { hoist } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

const dockerfile = (mode: string, chown: string) => `FROM {{BASE}} AS build
ARG USED=one
WORKDIR /src
COPY src/ ./
RUN cat a.txt b.txt > /all.txt && echo "$USED" > /used.txt
RUN mkdir -p /opt/vendor && cat vendor.txt > /opt/vendor/vendor.txt
FROM {{BASE}}
ENV MODE=${mode}
COPY --chown=${chown} app.txt /app/app.txt
COPY --from=build /opt/vendor /opt/vendor
COPY --from=build /all.txt /used.txt /
COPY data/* /data/
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null && echo "$MODE" > /mode
`;

/**
 * The steps a plain progress log shows as run, not cached: each stage's filesystem steps (WORKDIR, COPY, ADD, RUN)
 * by their order in the stage, as `stage ordinal KEYWORD`. Order, not the `[k/n]` numbers: BuildKit versions count
 * the config-only instructions differently, and hoist shows those too.
 */
function ranSteps(log: string): Set<string> {
  const vertices = new Map<string, { stage: string; pos: number; keyword: string }>();
  const cached = new Set<string>();
  for (const line of log.split('\n')) {
    const m = /^#(\d+) \[([^\]\s]+) (\d+)\/\d+\] (\S+)/.exec(line);
    if (m && !vertices.has(m[1]) && ['WORKDIR', 'COPY', 'ADD', 'RUN'].includes(m[4].toUpperCase()))
      vertices.set(m[1], { stage: m[2], pos: Number(m[3]), keyword: m[4].toUpperCase() });
    const c = /^#(\d+) CACHED/.exec(line);
    if (c) cached.add(c[1]);
  }
  const byStage = new Map<string, [string, { pos: number; keyword: string }][]>();
  for (const [n, v] of vertices) byStage.set(v.stage, [...(byStage.get(v.stage) ?? []), [n, v]]);
  const ran = new Set<string>();
  for (const [stage, list] of byStage) {
    list.sort((a, b) => a[1].pos - b[1].pos);
    list.forEach(([n, v], i) => {
      if (!cached.has(n)) ran.add(`${stage} ${i + 1} ${v.keyword}`);
    });
  }
  return ran;
}

(process.getuid?.() === 0
  ? describeWith(['docker-registry', 'dockerd', 'runc', 'busybox', 'getfattr'])
  : describe.skip)("cache invalidation equals docker's", () => {
  let reg: TestRegistry;
  let d: Dockerd;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-invalidation-'));
  const store = path.join(work, 'store');
  const ctx = path.join(work, 'ctx');
  const secret = path.join(work, 'secret.txt');
  let base = '';
  let mode = 'prod';
  let chown = '1000:1000';
  const args = new Map([
    ['USED', 'one'],
    ['UNUSED', 'a'],
  ]);

  beforeAll(async () => {
    [reg, d] = await Promise.all([startRegistry('anonymous'), startDockerd()]);
    base = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(base, store, work);
    const c: Case = {
      name: 'invalidation',
      dockerfile: dockerfile(mode, chown),
      files: {
        '.dockerignore': 'src/*.log\n',
        'src/a.txt': 'a\n',
        'src/b.txt': 'b\n',
        'src/vendor.txt': 'vendor\n',
        'src/ignored.log': 'ignored\n',
        'app.txt': 'app\n',
        'data/one.txt': '1\n',
      },
    };
    writeContext(ctx, c, base, '');
    writeFileSync(secret, 'first secret\n');
  }, 120_000);
  afterAll(async () => {
    await d?.stop();
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  let n = 0;
  async function both(): Promise<{ docker: Set<string>; hoist: Set<string> }> {
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile(mode, chown).replaceAll('{{BASE}}', base));
    const flags = [...[...args].flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), '--secret', `id=tok,src=${secret}`];
    const i = n++;
    const theirs = d.docker(
      ['build', '--progress=plain', '--pull', '--network', 'host', '-t', `inv${i}:docker`, ...flags, ctx],
      undefined,
      { DOCKER_BUILDKIT: '1' },
    );
    if (theirs.status !== 0) throw new Error(theirs.stderr);
    const theirTar = path.join(work, `inv${i}-docker.tar`);
    expect(d.docker(['save', '-o', theirTar, `inv${i}:docker`]).status).toBe(0);
    const ourTar = path.join(work, `inv${i}-hoist.tar`);
    const ours = await hoist([
      'build',
      '--store',
      store,
      '--progress',
      'plain',
      ...flags,
      '-o',
      `type=docker,dest=${ourTar}`,
      ctx,
    ]);
    if (ours.code !== 0) throw new Error(ours.err);
    for (const side of ['d', 'h']) mkdirSync(path.join(work, `inv${i}-${side}`));
    const want = await readSaved(theirTar, path.join(work, `inv${i}-d`));
    const got = await readSaved(ourTar, path.join(work, `inv${i}-h`));
    expect(normaliseHistory(comparableConfig(got.config))).toEqual(normaliseHistory(comparableConfig(want.config)));
    // The mount-point stubs Docker 20.10's BuildKit leaves for the secret mount (current BuildKit and hoist remove them).
    for (const stub of ['run/secrets', 'run']) want.fs.delete(stub);
    const [gotTree, wantTree] = comparableTrees(got.fs, want.fs);
    expect(gotTree).toEqual(wantTree);
    if (process.env.HOIST_DEBUG_LOGS) process.stderr.write(`---- docker\n${theirs.stderr}\n---- hoist\n${ours.err}\n`);
    return { docker: ranSteps(theirs.stderr), hoist: ranSteps(ours.err) };
  }

  const touchAll = () => run('sh', ['-c', 'find . -not -type l -exec touch -h -d @1700000000 {} +'], { cwd: ctx });
  const edits: [string, () => void | Promise<void>, string[]][] = [
    ['nothing changed', () => undefined, []],
    [
      'one source file changed',
      () => writeFileSync(path.join(ctx, 'src/a.txt'), 'a, changed\n'),
      ['build 2 COPY', 'build 3 RUN', 'build 4 RUN', 'stage-1 3 COPY', 'stage-1 4 COPY', 'stage-1 5 RUN'],
    ],
    ['a file .dockerignore excludes changed', () => writeFileSync(path.join(ctx, 'src/ignored.log'), 'changed\n'), []],
    [
      'a source chmod-ed',
      () => chmodSync(path.join(ctx, 'app.txt'), 0o600),
      ['stage-1 1 COPY', 'stage-1 2 COPY', 'stage-1 3 COPY', 'stage-1 4 COPY', 'stage-1 5 RUN'],
    ],
    [
      'a used --build-arg changed',
      () => void args.set('USED', 'two'),
      ['build 3 RUN', 'build 4 RUN', 'stage-1 3 COPY', 'stage-1 4 COPY', 'stage-1 5 RUN'],
    ],
    ['an unused --build-arg changed', () => void args.set('UNUSED', 'b'), []],
    ['ENV changed', () => void (mode = 'dev'), ['stage-1 5 RUN']],
    [
      '--chown changed',
      () => void (chown = '1001:1001'),
      ['stage-1 1 COPY', 'stage-1 2 COPY', 'stage-1 3 COPY', 'stage-1 4 COPY', 'stage-1 5 RUN'],
    ],
    ["a secret's value changed", () => writeFileSync(secret, 'second secret\n'), []],
    [
      'a file added to a directory copied by a wildcard',
      () => writeFileSync(path.join(ctx, 'data/two.txt'), '2\n'),
      ['stage-1 4 COPY', 'stage-1 5 RUN'],
    ],
    [
      'the base tag pushed again with new content',
      () =>
        pushBusyboxBase(base, path.join(work, 'store2'), path.join(work, 'base2'), [
          'sh',
          'echo',
          'cat',
          'mkdir',
          'true',
        ]),
      [
        'build 1 WORKDIR',
        'build 2 COPY',
        'build 3 RUN',
        'build 4 RUN',
        'stage-1 1 COPY',
        'stage-1 2 COPY',
        'stage-1 3 COPY',
        'stage-1 4 COPY',
        'stage-1 5 RUN',
      ],
    ],
  ];

  test('the first build runs every step in both', async () => {
    const r = await both();
    expect([...r.hoist].sort()).toEqual([...r.docker].sort());
    expect(r.docker.size).toBe(9);
  }, 120_000);

  test.each(edits.map((e) => [e[0], e] as const))(
    '%s: hoist reruns what docker reruns',
    async (_name, [, edit, expected]) => {
      mkdirSync(path.join(work, 'base2'), { recursive: true });
      await edit();
      touchAll();
      const r = await both();
      expect([...r.hoist].sort()).toEqual([...r.docker].sort());
      // What docker (BuildKit) does, written down: a change to either side is a regression to look at.
      expect([...r.docker].sort()).toEqual([...expected].sort());
    },
    120_000,
  );
});
