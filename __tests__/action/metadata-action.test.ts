// docker/metadata-action's own test tables, run against hoist's tag engine: every row of its meta, tag, flavor, image
// and input tests at the commit named in data/metadata-action.json (the rows and the fixture fields they read are
// facts, kept there as data), with its tests' fixed clock (2020-01-10T00:30:00Z) and its mocked repository API answer.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as github from '@actions/github';
import { commitTime, gitContext, repoFromApi, repoInfo } from '../../src/action/github.js';
import { getList } from '../../src/action/lists.js';
import {
  computeMeta,
  isRawStatement,
  type MetaInput,
  parseFlavor,
  parseImages,
  parseTagRule,
  sortedTagRules,
} from '../../src/action/tags.js';

interface Inputs {
  images?: string[];
  tags?: string[];
  flavor?: string[];
  labels?: string[];
  annotations?: string[];
  sepTags?: string;
  bakeTarget?: string;
}
interface Event {
  env: Record<string, string>;
  payload: Record<string, unknown>;
}
interface Data {
  now: string;
  repository: Record<string, unknown>;
  events: Record<string, Event>;
  isRawStatement: [string, boolean][];
  meta: {
    group: string;
    name: string;
    event: string;
    inputs: Inputs;
    version: { main?: string; partial: string[]; latest: boolean };
    tags: string[];
    labels: string[];
    annotations?: string[];
    env?: Record<string, string>;
  }[];
  json: { name: string; event: string; inputs: Inputs; json: unknown }[];
  bakeFile: { name: string; event: string; inputs: Inputs; tags: Bake; labels: Bake; annotations: Bake }[];
  bakeFileTagsLabels: { name: string; event: string; inputs: Inputs; definition: Bake }[];
  sepTags: { name: string; event: string; inputs: Inputs; joined: string }[];
  tagTransform: { inputs: string[]; tags: { type: string; attrs: Record<string, string> }[]; invalid: boolean }[];
  tagParse: { input: string; tag: { type: string; attrs: Record<string, string> }; invalid: boolean }[];
  flavor: { inputs: string[]; flavor: unknown; invalid: boolean }[];
  images: { inputs: string[]; images?: { name: string; enable: boolean }[]; invalid: boolean }[];
  inputs: { n: number; inputs: Record<string, string>; expected: Record<string, unknown> }[];
}
type Bake = { target: Record<string, Record<string, unknown>> };

const here = path.dirname(fileURLToPath(import.meta.url));
const data = JSON.parse(readFileSync(path.join(here, 'data', 'metadata-action.json'), 'utf8')) as Data;
const now = new Date(data.now);
const repo = repoFromApi(data.repository);

/** What metadata-action computes for `inputs` on the fixture event `file` (with `env` added to its variables). */
function metaOf(file: string, inputs: Inputs, env: Record<string, string> = {}) {
  const e = data.events[file];
  const vars = { ...e.env, ...env };
  const [owner, name] = (vars.GITHUB_REPOSITORY || 'docker/repo').split('/');
  const ctx = {
    eventName: vars.GITHUB_EVENT_NAME ?? '',
    ref: vars.GITHUB_REF ?? '',
    sha: vars.GITHUB_SHA ?? '',
    payload: e.payload,
    repo: { owner, repo: name },
  } as unknown as typeof github.context;
  const input: MetaInput = {
    images: inputs.images ?? [],
    tags: inputs.tags ?? [],
    flavor: inputs.flavor ?? [],
    labels: inputs.labels ?? [],
    annotations: inputs.annotations ?? [],
  };
  // Their clock mock answers the fixed time for every date moment is given: commit_date is that time too.
  return computeMeta(input, { ...gitContext(ctx, vars, now), commitDate: now }, repo.info);
}

describe('meta: version, tags, labels and annotations', () => {
  test.each(data.meta.map((r) => [`${r.group} ${r.name}`, r] as const))('%s', (_name, r) => {
    const m = metaOf(r.event, r.inputs, r.env);
    expect({ version: m.versionInfo, tags: m.tags, labels: m.labels, annotations: m.annotations }).toEqual({
      version: { main: r.version.main, partial: r.version.partial, latest: r.version.latest },
      tags: r.tags,
      labels: r.labels,
      annotations: r.annotations ?? r.labels,
    });
  });
});

describe('meta: the json output (annotations at the manifest level)', () => {
  test.each(data.json.map((r) => [r.name, r] as const))('%s', (_name, r) => {
    expect(metaOf(r.event, r.inputs).json).toEqual(r.json);
  });
});

describe('meta: the bake definitions hold the same tags, labels, annotations and args', () => {
  test.each(data.bakeFile.map((r) => [r.name, r] as const))('%s', (_name, r) => {
    const m = metaOf(r.event, r.inputs);
    const target = r.inputs.bakeTarget ?? 'docker-metadata-action';
    expect(r.tags.target[target]).toEqual({
      tags: m.tags,
      args: { DOCKER_META_IMAGES: m.images.join(','), DOCKER_META_VERSION: m.version },
    });
    expect(r.labels.target[target]).toEqual({ labels: m.json.labels });
    expect(r.annotations.target[target]).toEqual({ annotations: m.annotationsAt(['index', 'manifest-descriptor']) });
  });
  test.each(data.bakeFileTagsLabels.map((r) => [r.name, r] as const))('%s', (_name, r) => {
    const m = metaOf(r.event, r.inputs);
    expect(r.definition.target[r.inputs.bakeTarget ?? 'docker-metadata-action']).toEqual({
      tags: m.tags,
      labels: m.json.labels,
      args: { DOCKER_META_IMAGES: m.images.join(','), DOCKER_META_VERSION: m.version },
    });
  });
  test.each(data.sepTags.map((r) => [r.name, r] as const))('%s', (_name, r) => {
    expect(metaOf(r.event, r.inputs).tags.join(r.inputs.sepTags)).toBe(r.joined);
  });
});

test.each(data.isRawStatement)('isRawStatement %j', (pattern, raw) => {
  expect(isRawStatement(pattern)).toBe(raw);
});

describe('tag rules', () => {
  test.each(data.tagParse.map((r) => [r.input, r] as const))('%s', (_input, r) => {
    if (r.invalid) expect(() => parseTagRule(r.input)).toThrow();
    else expect(parseTagRule(r.input)).toMatchObject(r.tag);
  });
  test.each(data.tagTransform.map((r, i) => [i, r] as const))('a list, sorted by priority: %i', (_i, r) => {
    if (r.invalid) expect(() => sortedTagRules(r.inputs)).toThrow();
    else expect(sortedTagRules(r.inputs).map((t) => ({ type: t.type, attrs: t.attrs }))).toEqual(r.tags);
  });
});

test.each(data.flavor.map((r) => [JSON.stringify(r.inputs), r] as const))('flavor %s', (_inputs, r) => {
  if (r.invalid) expect(() => parseFlavor(r.inputs)).toThrow();
  else expect(parseFlavor(r.inputs)).toEqual(r.flavor);
});

test.each(data.images.map((r) => [JSON.stringify(r.inputs), r] as const))('images %s', (_inputs, r) => {
  if (r.invalid) expect(() => parseImages(r.inputs)).toThrow();
  else expect(parseImages(r.inputs)).toEqual(r.images);
});

test.each(data.inputs.map((r) => [r.n, r] as const))('list inputs as metadata-action reads them: %i', (_n, r) => {
  for (const k of ['images', 'tags', 'flavor', 'labels', 'annotations'] as const) {
    expect(getList(r.inputs[k] ?? '', { ignoreComma: true, comment: '#' })).toEqual(r.expected[k]);
  }
});

test('the event as metadata-action reads it: commit date, pull_request_target, a pull request head sha', () => {
  const of = (file: string, env: Record<string, string> = {}) => {
    const e = data.events[file];
    const vars = { ...e.env, ...env };
    return gitContext(
      {
        eventName: vars.GITHUB_EVENT_NAME,
        ref: vars.GITHUB_REF,
        sha: vars.GITHUB_SHA,
        payload: e.payload,
        repo: { owner: 'o', repo: 'r' },
      } as unknown as typeof github.context,
      vars,
      now,
    );
  };
  // the pushed commit's time (from the payload's commits), else the run's
  expect(of('event_push_dev.env').commitDate).toEqual(new Date('2022-04-19T09:27:24Z'));
  expect(of('event_empty.env').commitDate).toEqual(now);
  // pull_request_target runs on the base branch; it is tagged as the pull request
  expect(of('event_pull_request_target.env').ref).toBe('refs/pull/15/merge');
  expect(of('event_pull_request.env').sha).toBe('a9c8c5828b91be19d9728548b24759e352367ef1');
  expect(of('event_pull_request.env', { DOCKER_METADATA_PR_HEAD_SHA: 'true' }).sha).toBe(
    '3370e228f2209994d57af4427fe64e71bb79ac96',
  );
  expect(of('event_push_dev.env', { DOCKER_METADATA_PR_HEAD_SHA: 'true' }).sha).toBe(
    '860c1904a1ce19322e91ac35af1ab07466440c37',
  );
  expect(() => of('event_push_dev.env', { DOCKER_METADATA_SHORT_SHA_LENGTH: 'seven' })).toThrow(
    'DOCKER_METADATA_SHORT_SHA_LENGTH is not a number: "seven"',
  );
});

test("created: the commit's time when set (hoist's default), else the run's; the commit time from the checkout's git", async () => {
  const base = metaOf('event_push_dev.env', { images: ['user/app'] });
  expect(base.labels).toContain('org.opencontainers.image.created=2020-01-10T00:30:00.000Z');
  const e = data.events['event_push_dev.env'];
  const ctx = {
    eventName: 'push',
    ref: e.env.GITHUB_REF,
    sha: e.env.GITHUB_SHA,
    payload: e.payload,
    repo: { owner: 'o', repo: 'r' },
  } as unknown as typeof github.context;
  const g = gitContext(ctx, e.env, now);
  expect(g.commitDateFrom).toBe('event');
  const m = computeMeta(
    { images: ['user/app'], tags: [], flavor: [], labels: [], annotations: [] },
    { ...g, created: g.commitDate },
    repo.info,
  );
  expect(m.labels).toContain('org.opencontainers.image.created=2022-04-19T09:27:24.000Z');
  // no API token: the checkout's git answers
  const dir = mkdtempSync(path.join(tmpdir(), 'hoist-git-'));
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', dir, ...args], {
        encoding: 'utf8',
        env: {
          ...process.env,
          GIT_COMMITTER_DATE: '2021-05-06T07:08:09Z',
          GIT_AUTHOR_DATE: '2021-05-06T07:08:09Z',
          GIT_AUTHOR_NAME: 'a',
          GIT_AUTHOR_EMAIL: 'a@b',
          GIT_COMMITTER_NAME: 'a',
          GIT_COMMITTER_EMAIL: 'a@b',
        },
      });
    git('init', '-q');
    git('commit', '-q', '--allow-empty', '-m', 'x');
    const sha = git('rev-parse', 'HEAD').trim();
    const t = await commitTime(ctx, sha, undefined, dir);
    expect(t).toEqual({ date: new Date('2021-05-06T07:08:09Z'), from: 'git' });
    expect(await commitTime(ctx, 'f'.repeat(40), undefined, dir)).toMatchObject({
      why: expect.stringContaining(`git in ${dir}`),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("GitHub Enterprise Server: the repository's page and source label from GITHUB_SERVER_URL when the event has no repository", async () => {
  const ctx = {
    eventName: 'workflow_dispatch',
    ref: 'refs/heads/main',
    sha: 'a'.repeat(40),
    payload: {},
    repo: { owner: 'corp', repo: 'app' },
    serverUrl: 'https://github.example.com',
    apiUrl: 'https://github.example.com/api/v3',
  } as unknown as typeof github.context;
  const { info } = await repoInfo(ctx, undefined, () => undefined);
  expect(info).toEqual({ name: 'app', htmlUrl: 'https://github.example.com/corp/app' });
  const m = computeMeta(
    { images: ['r/app'], tags: [], flavor: [], labels: [], annotations: [] },
    gitContext(ctx, {}, now),
    info,
  );
  expect(m.labels).toContain('org.opencontainers.image.source=https://github.example.com/corp/app');
});
