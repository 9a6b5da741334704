// GitLab's predefined variables as the tag rules' facts, the job's login and the dotenv report (src/cli/gitlab.ts);
// the whole job runs in an unprivileged container in __tests__/exec/unprivileged.test.ts.
import { computeMeta, defaultTagRules } from '../../src/action/tags.js';
import { dotenvReport, gitlabJob } from '../../src/cli/gitlab.js';

const now = new Date('2026-12-03T10:00:00Z');
const base = {
  GITLAB_CI: 'true',
  CI_REGISTRY: 'registry.gitlab.example',
  CI_REGISTRY_IMAGE: 'registry.gitlab.example/group/app',
  CI_COMMIT_SHA: 'abcdef0123456789abcdef0123456789abcdef01',
  CI_DEFAULT_BRANCH: 'main',
  CI_PROJECT_DIR: '/builds/group/app',
  CI_PROJECT_URL: 'https://gitlab.example/group/app',
};
const tagsFor = (env: Record<string, string>) => {
  const job = gitlabJob(env, now);
  if (!job) throw new Error('no job');
  return computeMeta(
    { images: [job.image as string], tags: defaultTagRules, flavor: [], labels: [], annotations: [] },
    job.git,
    job.repo,
  ).tags;
};

test('outside GitLab CI there is no job', () => {
  expect(gitlabJob({}, now)).toBeUndefined();
});

test.each([
  [
    "a tag pipeline: the tag as it is, and latest (metadata-action's default)",
    { CI_COMMIT_TAG: 'v2.4.1', CI_COMMIT_REF_NAME: 'v2.4.1' },
    ['v2.4.1', 'latest'],
  ],
  ['a pipeline of the default branch: the branch', { CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main' }, ['main']],
  ['a feature branch', { CI_COMMIT_BRANCH: 'feature/x', CI_COMMIT_REF_NAME: 'feature/x' }, ['feature-x']],
  [
    'a merge request pipeline: pr-IID',
    { CI_MERGE_REQUEST_IID: '42', CI_MERGE_REQUEST_TARGET_BRANCH_NAME: 'main', CI_COMMIT_REF_NAME: 'feature/x' },
    ['pr-42'],
  ],
  // (metadata-action's type=ref,event=branch matches a scheduled run's branch too)
  [
    'a scheduled pipeline: nightly, and its branch',
    { CI_PIPELINE_SOURCE: 'schedule', CI_COMMIT_BRANCH: 'main' },
    ['nightly', 'main'],
  ],
])('%s', (_name, env, tags) => {
  expect(tagsFor({ ...base, ...env })).toEqual(tags.map((t) => `registry.gitlab.example/group/app:${t}`));
});

test('the login: CI_REGISTRY_USER and CI_REGISTRY_PASSWORD, else the job token; none without CI_REGISTRY', () => {
  expect(
    gitlabJob({ ...base, CI_REGISTRY_USER: 'gitlab-ci-token', CI_REGISTRY_PASSWORD: 'pw', CI_JOB_TOKEN: 'tok' }, now)
      ?.login,
  ).toEqual({ registry: 'registry.gitlab.example', username: 'gitlab-ci-token', password: 'pw' });
  expect(gitlabJob({ ...base, CI_JOB_TOKEN: 'tok' }, now)?.login).toEqual({
    registry: 'registry.gitlab.example',
    username: 'gitlab-ci-token',
    password: 'tok',
  });
  expect(gitlabJob({ GITLAB_CI: 'true', CI_JOB_TOKEN: 'tok' }, now)?.login).toBeUndefined();
  expect(gitlabJob(base, now)?.projectDir).toBe('/builds/group/app');
});

test('the dotenv report: one KEY=value a line', () => {
  expect(
    dotenvReport({ digest: 'sha256:aa', imageID: 'sha256:bb', tags: ['r/app:1', 'r/app:latest'], version: '1' }),
  ).toBe('HOIST_DIGEST=sha256:aa\nHOIST_IMAGE_ID=sha256:bb\nHOIST_TAGS=r/app:1,r/app:latest\nHOIST_VERSION=1\n');
});
