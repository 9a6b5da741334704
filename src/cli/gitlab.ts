// GitLab CI as a first-class CI for `hoist build`: when GITLAB_CI is set, the facts the Action takes from GitHub come
// from GitLab's predefined variables (docs.gitlab.com/ci/variables/predefined_variables): the same tag rules
// (tags.ts, metadata-action's) name the image, the login is the job's own registry credentials (kept in memory,
// never written to a file), the cache defaults to the project's registry, and a dotenv report hands the digest and
// tags to later jobs (artifacts:reports:dotenv).
import type { LoginInputs } from '../action/login.js';
import type { GitContext, RepoInfo } from '../action/tags.js';

export interface CiJob {
  git: GitContext;
  repo: RepoInfo;
  /** the project's image in its registry ($CI_REGISTRY_IMAGE), the default image to tag */
  image?: string;
  /** the job's registry login: CI_REGISTRY_USER / CI_REGISTRY_PASSWORD, else gitlab-ci-token / CI_JOB_TOKEN */
  login?: LoginInputs;
  /** where the job's files are ($CI_PROJECT_DIR): the dotenv report goes there */
  projectDir: string;
}

/** The GitLab job hoist runs in, or undefined outside GitLab CI. */
export function gitlabJob(env: NodeJS.ProcessEnv = process.env, now = new Date()): CiJob | undefined {
  if (!env.GITLAB_CI) return undefined;
  const sha = env.CI_COMMIT_SHA ?? '';
  // A tag pipeline, a merge request pipeline, a scheduled one, else a branch pipeline: as GitHub's tag push,
  // pull_request, schedule and branch push events, which the tag rules are written for.
  let eventName = 'push';
  let ref = `refs/heads/${env.CI_COMMIT_BRANCH ?? env.CI_COMMIT_REF_NAME ?? ''}`;
  let baseRef: string | undefined;
  if (env.CI_COMMIT_TAG) ref = `refs/tags/${env.CI_COMMIT_TAG}`;
  else if (env.CI_MERGE_REQUEST_IID) {
    eventName = 'pull_request';
    ref = `refs/pull/${env.CI_MERGE_REQUEST_IID}/merge`;
    baseRef = env.CI_MERGE_REQUEST_TARGET_BRANCH_NAME;
  } else if (env.CI_PIPELINE_SOURCE === 'schedule') eventName = 'schedule';
  const committed = env.CI_COMMIT_TIMESTAMP ? new Date(env.CI_COMMIT_TIMESTAMP) : now;
  const shortSha = Number(env.DOCKER_METADATA_SHORT_SHA_LENGTH);
  const git: GitContext = {
    eventName,
    ref,
    sha,
    ...(env.CI_DEFAULT_BRANCH ? { defaultBranch: env.CI_DEFAULT_BRANCH } : {}),
    ...(baseRef ? { prBaseRef: baseRef } : {}),
    commitDate: Number.isNaN(committed.getTime()) ? now : committed,
    // the image's created label is the commit's time: a pipeline run again for the same commit makes the same image
    ...(Number.isNaN(committed.getTime()) || !env.CI_COMMIT_TIMESTAMP
      ? {}
      : { commitDateFrom: 'ci' as const, created: committed }),
    now,
    ...(Number.isInteger(shortSha) && shortSha > 0 ? { shortShaLength: shortSha } : {}),
  };
  const repo: RepoInfo = {
    ...(env.CI_PROJECT_NAME ? { name: env.CI_PROJECT_NAME } : {}),
    ...(env.CI_PROJECT_DESCRIPTION ? { description: env.CI_PROJECT_DESCRIPTION } : {}),
    ...(env.CI_PROJECT_URL ? { htmlUrl: env.CI_PROJECT_URL } : {}),
    ...(env.CI_DEFAULT_BRANCH ? { defaultBranch: env.CI_DEFAULT_BRANCH } : {}),
  };
  const registry = env.CI_REGISTRY;
  const login: LoginInputs | undefined = !registry
    ? undefined
    : env.CI_REGISTRY_USER && env.CI_REGISTRY_PASSWORD
      ? { registry, username: env.CI_REGISTRY_USER, password: env.CI_REGISTRY_PASSWORD }
      : env.CI_JOB_TOKEN
        ? { registry, username: 'gitlab-ci-token', password: env.CI_JOB_TOKEN }
        : undefined;
  return {
    git,
    repo,
    ...(env.CI_REGISTRY_IMAGE ? { image: env.CI_REGISTRY_IMAGE } : {}),
    ...(login ? { login } : {}),
    projectDir: env.CI_PROJECT_DIR || process.cwd(),
  };
}

/** The dotenv report: one KEY=value a line (GitLab's dotenv takes no newlines in values). */
export function dotenvReport(r: {
  digest: string;
  imageID: string;
  tags: readonly string[];
  version?: string;
}): string {
  const lines = [`HOIST_DIGEST=${r.digest}`, `HOIST_IMAGE_ID=${r.imageID}`, `HOIST_TAGS=${r.tags.join(',')}`];
  if (r.version) lines.push(`HOIST_VERSION=${r.version}`);
  return `${lines.join('\n')}\n`;
}
