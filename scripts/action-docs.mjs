// The Action's inputs and outputs tables in docs/action.md, made from action.yml so that the two cannot disagree.
// `node scripts/action-docs.mjs` writes them; `--check` exits 1 when the page is not what action.yml makes
// (__tests__/action/docs.test.ts runs it). A description states its kind as build-push-action's do ("List of …",
// "List/CSV of …"; a `default: "false"` makes a Bool) and may end with "(default: …)" for a default the code applies.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const page = path.join(root, 'docs', 'action.md');

/** One input as the table shows it: its kind, its default and the rest of its description. */
export function describeInput(name, input) {
  let what = String(input.description ?? '').trim();
  let kind = 'String';
  const lead = /^(List\/CSV|List) of /.exec(what);
  if (lead) {
    kind = lead[1];
    what = what.slice(lead[0].length);
  } else if (input.default === 'true' || input.default === 'false') kind = 'Bool';
  let fallback = input.default === undefined ? '' : `\`${input.default}\``;
  const stated = /\s*\(default: ([^()]*(?:\([^()]*\)[^()]*)*)\)$/.exec(what);
  if (stated) {
    if (fallback) throw new Error(`action.yml: ${name} has a default and says another in its description`);
    fallback = stated[1];
    what = what.slice(0, stated.index);
  }
  return { name, kind, fallback, what };
}

const cell = (text) => text.replace(/\|/g, '\\|');

export function tables(actionYml) {
  const action = parse(actionYml);
  const inputs = Object.entries(action.inputs).map(([name, input]) => describeInput(name, input));
  const outputs = Object.entries(action.outputs).map(([name, output]) => ({ name, what: output.description }));
  return {
    inputs: [
      '| input | type | default | what |',
      '| --- | --- | --- | --- |',
      ...inputs.map((i) => `| \`${i.name}\` | ${i.kind} | ${cell(i.fallback)} | ${cell(i.what)} |`),
    ].join('\n'),
    outputs: ['| output | what |', '| --- | --- |', ...outputs.map((o) => `| \`${o.name}\` | ${cell(o.what)} |`)].join(
      '\n',
    ),
  };
}

const marker = (which) => [
  `<!-- ${which}: made from action.yml by scripts/action-docs.mjs; edit action.yml, then run it -->`,
  `<!-- end of ${which} -->`,
];

/** The page with each table put between its markers. */
export function render(text, actionYml) {
  const made = tables(actionYml);
  for (const which of ['inputs', 'outputs']) {
    const [start, end] = marker(which);
    const a = text.indexOf(start);
    const b = text.indexOf(end);
    if (a < 0 || b < a) throw new Error(`docs/action.md: the ${which} markers are missing (${start})`);
    text = `${text.slice(0, a + start.length)}\n${made[which]}\n${text.slice(b)}`;
  }
  return text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = readFileSync(page, 'utf8');
  const made = render(text, readFileSync(path.join(root, 'action.yml'), 'utf8'));
  if (process.argv.includes('--check')) {
    if (made !== text) {
      console.error(
        'docs/action.md: the inputs or outputs tables are not what action.yml makes: run node scripts/action-docs.mjs',
      );
      process.exit(1);
    }
  } else if (made !== text) {
    writeFileSync(page, made);
    console.log('docs/action.md: tables written from action.yml');
  }
}
