// What the Action shows: the build's steps in log groups, one per stage (a stage whose steps interleave with another
// stage's opens a new group: groups cannot nest), and the job summary (image references, digest, size, a table of
// steps with their layer sizes, the cache's traffic). The summary is Markdown built here, written by the caller.
import type { BuildOutcome, StepReport, StepStart } from '../index.js';
import { formatBytes } from '../cli/format.js';
import { version } from '../version.js';

export interface LogSink {
  info(line: string): void;
  startGroup(name: string): void;
  endGroup(): void;
}

/** Every output the Action sets; action.yml declares exactly these (a test keeps them equal). */
export const outputNames = [
  'digest',
  'imageid',
  'metadata',
  'tags',
  'tag-names',
  'labels',
  'annotations',
  'image',
  'version',
  'cache-hits',
  'json',
] as const;
export type OutputName = (typeof outputNames)[number];

const stepName = (st: StepStart) => `${st.prefix}${st.instruction}`;

/** The build's events as log lines, grouped per stage. */
export class StageLog {
  private open: number | undefined;
  constructor(private readonly sink: LogSink) {}

  private enter(st: StepStart): void {
    if (this.open === st.stage) return;
    this.close();
    this.sink.startGroup(`stage ${st.stageName ?? st.stage}`);
    this.open = st.stage;
  }

  start(st: StepStart): void {
    this.enter(st);
    this.sink.info(stepName(st));
  }

  output(st: StepStart, line: string): void {
    this.enter(st);
    this.sink.info(`  ${line}`);
  }

  done(st: StepReport): void {
    this.enter(st);
    this.sink.info(`  ${st.cached ? `CACHED (${st.source ?? 'cache'})` : 'DONE'} ${st.seconds.toFixed(1)}s`);
  }

  close(): void {
    if (this.open !== undefined) this.sink.endGroup();
    this.open = undefined;
  }
}

/**
 * Text from the build (a Dockerfile's instructions, tags) in a summary cell: HTML-escaped, and every character that
 * Markdown or GitHub's autolinks read as syntax written as a numeric reference, so a Dockerfile cannot put a link, an
 * image (a tracking pixel), emphasis or a table cell into the job's summary: it shows as the text it is.
 */
const markdownSyntax = /[\\`*_{}[\]()#+!|~:@]/g;
const code = (s: string) =>
  `<code>${s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(markdownSyntax, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/\bwww\./gi, (m) => `${m.slice(0, 3)}&#46;`)
    .replace(/\r?\n/g, ' ')}</code>`;

export function summaryMarkdown(outcome: BuildOutcome, options: { pushed: boolean }): string {
  const sizes = new Map(outcome.layers.map((l) => [l.diffID, l.size]));
  const c = outcome.cache;
  const rows = [
    ...outcome.tags.map((t) => ['Image', code(t)]),
    ['Digest', `${code(outcome.digest)}${options.pushed ? '' : ' (not pushed)'}`],
    ['Image ID', code(outcome.imageID)],
    [
      'Platform',
      code(
        `${outcome.platform.os}/${outcome.platform.architecture}${outcome.platform.variant ? `/${outcome.platform.variant}` : ''}`,
      ),
    ],
    ['Size', `${formatBytes(outcome.size)} (compressed, ${outcome.layers.length} layers)`],
    [
      'Cache',
      `${c.hits}/${c.hits + c.misses} steps cached, ${formatBytes(c.downloadedBytes)} downloaded, ${formatBytes(c.uploadedBytes)} uploaded`,
    ],
    ['Built by', `hoist ${version}`],
  ];
  const lines = [
    '## hoist build',
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '### Steps',
    '',
    '| Step | Result | Time | Layer |',
    '|---|---|---|---|',
  ];
  for (const st of outcome.steps) {
    const size = st.diffID !== undefined ? sizes.get(st.diffID) : undefined;
    const result =
      st.position === 1 ? (st.source ?? '') : st.cached ? `cached${st.source ? ` (${st.source})` : ''}` : 'ran';
    lines.push(
      `| ${code(stepName(st))} | ${result} | ${st.seconds.toFixed(1)}s | ${size !== undefined ? formatBytes(size) : ''} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}
