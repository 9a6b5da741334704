// action.yml, docs/action.md's tables and the code cannot drift: every input the Action reads is declared with its
// list kind, every output it sets likewise; the tables are what scripts/action-docs.mjs makes from action.yml; the
// workflows of the README and of docs/ give the Action only inputs it declares.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputKinds } from '../../src/action/inputs.js';
import { outputNames } from '../../src/action/report.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const actionYml = readFileSync(path.join(root, 'action.yml'), 'utf8');
const actionPage = readFileSync(path.join(root, 'docs', 'action.md'), 'utf8');
const pages = ['README.md', ...readdirSync(path.join(root, 'docs')).map((f) => path.join('docs', f))]
  .filter((f) => f.endsWith('.md'))
  .map((f) => readFileSync(path.join(root, f), 'utf8'));

/** The keys of a top-level mapping of action.yml (two-space indented names under `section:`), with their lines. */
function declared(section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const lines = actionYml.split('\n');
  let i = lines.indexOf(`${section}:`);
  expect(i).toBeGreaterThanOrEqual(0);
  let current: string | undefined;
  for (i++; i < lines.length && (lines[i] === '' || lines[i].startsWith(' ')); i++) {
    const m = /^ {2}([a-z0-9-]+):\s*$/.exec(lines[i]);
    if (m) out.set((current = m[1]), []);
    else if (current) out.get(current)!.push(lines[i].trim());
  }
  return out;
}

/** The rows of docs/action.md's table under `## heading`: first cell (without backquotes) → the other cells. */
function table(heading: string): Map<string, string[]> {
  const start = actionPage.indexOf(`\n## ${heading}\n`);
  expect(start).toBeGreaterThanOrEqual(0);
  const rows = new Map<string, string[]>();
  for (const line of actionPage.slice(start).split('\n').slice(2)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('| ') || line.startsWith('| ---') || /^\| (input|output) \|/.test(line)) continue;
    const cells = line
      .slice(2, -2)
      .split(/ (?<!\\)\| /)
      .map((c) => c.trim());
    rows.set(cells[0].replace(/`/g, ''), cells.slice(1));
  }
  return rows;
}

const kindNames = { string: 'String', bool: 'Bool', list: 'List', csv: 'List/CSV' } as const;

test('action.yml declares exactly the inputs the Action reads, and runs dist/index.js on node24', () => {
  expect([...declared('inputs').keys()].sort()).toEqual(Object.keys(inputKinds).sort());
  expect(actionYml).toMatch(/^runs:\n {2}using: node24\n {2}main: dist\/index\.js$/m);
});

test('action.yml declares exactly the outputs the Action sets', () => {
  expect([...declared('outputs').keys()].sort()).toEqual([...outputNames].sort());
});

test("docs/action.md's inputs table lists every input with its kind and action.yml's default", () => {
  const rows = table('Inputs');
  expect([...rows.keys()].sort()).toEqual(Object.keys(inputKinds).sort());
  const inputs = declared('inputs');
  for (const [name, [kind, fallback]] of rows) {
    expect([name, kind]).toEqual([name, kindNames[inputKinds[name as keyof typeof inputKinds]]]);
    const yamlDefault = inputs
      .get(name)!
      .find((l) => l.startsWith('default:'))
      ?.slice('default:'.length)
      .trim()
      .replace(/^"(.*)"$/, '$1');
    // A documented default that action.yml also has is the same value; defaults the code applies are words.
    if (yamlDefault !== undefined) expect([name, fallback.replace(/`/g, '')]).toEqual([name, yamlDefault]);
  }
});

test("docs/action.md's outputs table lists every output", () => {
  expect([...table('Outputs').keys()].sort()).toEqual([...outputNames].sort());
});

test('the workflows of the README and docs/ give the hoist step only inputs it declares', () => {
  const declaredInputs = new Set(declared('inputs').keys());
  const blocks = pages.flatMap((page) => [...page.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]));
  let checked = 0;
  for (const block of blocks) {
    const lines = block.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (!/uses: OWNER\/hoist@v1/.test(lines[i])) continue;
      const withAt = lines.findIndex((l, j) => j > i && /^\s+with:\s*$/.test(l));
      if (withAt < 0) continue;
      const indent = /^(\s*)/.exec(lines[withAt + 1])![1].length;
      for (
        let j = withAt + 1;
        j < lines.length && /^(\s*)/.exec(lines[j])![1].length >= indent && lines[j].trim();
        j++
      ) {
        const m = new RegExp(`^ {${indent}}([a-z-]+):`).exec(lines[j]);
        if (m) {
          expect([m[1], declaredInputs.has(m[1])]).toEqual([m[1], true]);
          checked++;
        }
      }
    }
  }
  expect(checked).toBeGreaterThan(10);
});

// (a plain .mjs, without types: imported by a path TypeScript does not resolve)
const actionDocsScript = '../../scripts/action-docs.mjs';

test('the tables are what scripts/action-docs.mjs makes from action.yml, and a changed description shows', async () => {
  const { render } = (await import(actionDocsScript)) as {
    render: (text: string, actionYml: string) => string;
  };
  expect(render(actionPage, actionYml)).toBe(actionPage);
  const changed = actionYml.replace(/(\n {2}push:\n {4}description: ")/, '$1Really ');
  expect(changed).not.toBe(actionYml);
  expect(render(actionPage, changed)).toContain('| `push` | Bool | `false` | Really ');
  expect(render(actionPage, changed)).not.toBe(actionPage);
});
