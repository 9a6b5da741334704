// The event a workflow runs for, as tags.ts needs it, from @actions/github's context (GITHUB_* variables and the
// event payload at GITHUB_EVENT_PATH), and the repository's description, page and license for the OCI labels:
// from the payload's `repository` (push, pull_request, release and most events carry it), else from the REST API
// with the github-token, as metadata-action does (a failure there is a warning: the labels it would fill are left
// out). The commit date is the head commit's (push), else the run's time.
import { spawnSync } from 'node:child_process';
import * as github from '@actions/github';
import { type GitContext, type RepoInfo, TagRuleError } from './tags.js';

type Context = typeof github.context;

interface PayloadRepository {
  name?: string;
  description?: string | null;
  html_url?: string;
  default_branch?: string;
  license?: { spdx_id?: string | null } | null;
}

/**
 * The event as metadata-action reads it (its src/context.ts): a pull_request_target run is tagged as the pull request
 * (refs/pull/N/merge, not the base branch GitHub gives it); with DOCKER_METADATA_PR_HEAD_SHA=true a pull request's
 * sha is its head commit's, not the merge commit's; the commit date is the pushed commit's (the payload's `commits`,
 * then `head_commit`, by sha), else the run's time.
 */
export function gitContext(ctx: Context, env: NodeJS.ProcessEnv = process.env, now = new Date()): GitContext {
  const p = ctx.payload as {
    number?: number;
    repository?: PayloadRepository;
    commits?: { id?: string; timestamp?: string }[];
    head_commit?: { id?: string; timestamp?: string } | null;
    base_ref?: string | null;
    pull_request?: { base?: { ref?: string }; head?: { sha?: string } };
  };
  const ref = /pull_request_target/.test(ctx.eventName) ? `refs/pull/${p.number}/merge` : ctx.ref;
  let sha = ctx.sha;
  if (
    /true/i.test(env.DOCKER_METADATA_PR_HEAD_SHA ?? '') &&
    /pull_request/.test(ctx.eventName) &&
    p.pull_request?.head?.sha !== undefined
  )
    sha = p.pull_request.head.sha;
  const stamp =
    p.commits?.find((c) => c.id === sha)?.timestamp ??
    (p.head_commit?.id === sha ? p.head_commit?.timestamp : undefined);
  const commitDate = stamp ? new Date(stamp) : now;
  const known = stamp !== undefined && !Number.isNaN(commitDate.getTime());
  let shortShaLength: number | undefined;
  if (env.DOCKER_METADATA_SHORT_SHA_LENGTH) {
    shortShaLength = Number(env.DOCKER_METADATA_SHORT_SHA_LENGTH);
    if (Number.isNaN(shortShaLength))
      throw new TagRuleError(
        `DOCKER_METADATA_SHORT_SHA_LENGTH is not a number: ${JSON.stringify(env.DOCKER_METADATA_SHORT_SHA_LENGTH)}`,
      );
  }
  return {
    eventName: ctx.eventName,
    ref,
    sha,
    ...(p.repository?.default_branch ? { defaultBranch: p.repository.default_branch } : {}),
    ...(typeof p.base_ref === 'string' ? { pushBaseRef: p.base_ref } : {}),
    ...(p.pull_request?.base?.ref !== undefined ? { prBaseRef: p.pull_request.base.ref } : {}),
    commitDate: known ? commitDate : now,
    ...(known ? { commitDateFrom: 'event' as const } : {}),
    now,
    ...(shortShaLength !== undefined ? { shortShaLength } : {}),
  };
}

/**
 * The commit's time where the event does not say it (metadata-action asks the API; hoist then the checkout's git):
 * the committer date of `sha`, or undefined with why.
 */
export async function commitTime(
  ctx: Context,
  sha: string,
  token: string | undefined,
  workspace: string,
): Promise<{ date: Date; from: 'api' | 'git' } | { why: string }> {
  const why: string[] = [];
  if (token && sha) {
    try {
      const { data } = await github
        .getOctokit(token, { baseUrl: ctx.apiUrl, request: { retries: 0 } })
        .rest.repos.getCommit({ ...ctx.repo, ref: sha, request: { signal: AbortSignal.timeout(10_000) } });
      const date = new Date(data.commit.committer?.date ?? '');
      if (!Number.isNaN(date.getTime())) return { date, from: 'api' };
      why.push('the API gave no committer date');
    } catch (e) {
      why.push(`the API: ${(e as Error).message}`);
    }
  }
  if (sha && /^[0-9a-f]{7,64}$/.test(sha)) {
    const r = spawnSync('git', ['-C', workspace, 'log', '-1', '--format=%cI', sha], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    const date = new Date(r.stdout?.trim() ?? '');
    if (r.status === 0 && !Number.isNaN(date.getTime())) return { date, from: 'git' };
    why.push(`git in ${workspace}: ${(r.stderr || r.error?.message || 'no such commit').trim().split('\n')[0]}`);
  }
  return { why: why.join('; ') || 'no commit' };
}

function fromRepository(r: PayloadRepository): RepoInfo {
  return {
    ...(r.name ? { name: r.name } : {}),
    ...(r.description ? { description: r.description } : {}),
    ...(r.html_url ? { htmlUrl: r.html_url } : {}),
    ...(r.license?.spdx_id ? { license: r.license.spdx_id } : {}),
    ...(r.default_branch ? { defaultBranch: r.default_branch } : {}),
  };
}

/** The repository's facts from the REST API's answer (GET /repos/{owner}/{repo}) or an event's `repository`. */
export function repoFromApi(data: unknown): { info: RepoInfo; defaultBranch?: string } {
  const r = data as PayloadRepository;
  return { info: fromRepository(r), ...(r.default_branch ? { defaultBranch: r.default_branch } : {}) };
}

export async function repoInfo(
  ctx: Context,
  token: string | undefined,
  warn: (m: string) => void,
): Promise<{ info: RepoInfo; defaultBranch?: string }> {
  const r = (ctx.payload as { repository?: PayloadRepository }).repository;
  if (r?.html_url) return repoFromApi(r);
  const fallback: RepoInfo = { name: ctx.repo.repo, htmlUrl: `${ctx.serverUrl}/${ctx.repo.owner}/${ctx.repo.repo}` };
  if (!token) return { info: fallback };
  try {
    const { data } = await github
      .getOctokit(token, { baseUrl: ctx.apiUrl, request: { retries: 0 } })
      .rest.repos.get({ ...ctx.repo, request: { signal: AbortSignal.timeout(10_000) } });
    return repoFromApi(data);
  } catch (e) {
    warn(
      `cannot read the repository's details from ${ctx.apiUrl}: ${(e as Error).message}; the description and license labels are left out`,
    );
    return { info: fallback };
  }
}
