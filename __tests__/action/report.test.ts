// The job summary shows what came from the build (a Dockerfile's instructions, the tags) as text: a pull request's
// Dockerfile cannot put a link, an image (a tracking pixel), emphasis or another table cell into it.
import { summaryMarkdown } from '../../src/action/report.js';
import type { BuildOutcome } from '../../src/index.js';

test('Markdown and autolinks in a step or a tag are shown as the text they are', () => {
  const step = {
    stage: 0,
    position: 2,
    total: 2,
    instruction:
      'RUN echo [click](https://evil.example/x) ![pixel](https://evil.example/p.png) **bold** | cell `code` www.evil.example <img src=x>',
    line: 2,
    cached: false,
    seconds: 0.1,
    source: null,
  };
  const outcome = {
    tags: ['ghcr.io/o/app:[x](https://evil.example)'],
    digest: `sha256:${'0'.repeat(64)}`,
    imageID: `sha256:${'1'.repeat(64)}`,
    platform: { os: 'linux', architecture: 'amd64' },
    size: 1,
    layers: [],
    cache: { hits: 0, misses: 1, downloadedBytes: 0, uploadedBytes: 0 },
    steps: [step],
  } as unknown as BuildOutcome;
  const md = summaryMarkdown(outcome, { pushed: false });
  const cells = md
    .split('\n')
    .filter((l) => l.includes('<code>'))
    .flatMap((l) => [...l.matchAll(/<code>(.*?)<\/code>/g)].map((m) => m[1]));
  for (const c of cells) {
    expect(c).not.toMatch(/[[\]()!*_`|<>]|https:\/\/|www\./);
  }
  // each table row keeps its own cells
  expect(
    md
      .split('\n')
      .filter((l) => l.startsWith('| <code>'))
      .every((l) => l.split(' | ').length === 4),
  ).toBe(true);
  const shown = md.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
  expect(shown).toContain('![pixel](https://evil.example/p.png)');
});
