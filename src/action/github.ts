// The event a workflow runs for, as tags.ts needs it, from @actions/github's context (GITHUB_* variables and the
// event payload at GITHUB_EVENT_PATH), and the repository's description, page and license for the OCI labels:
// from the payload's `repository` (push, pull_request, release and most events carry it), else from the REST API
// with the github-token, as metadata-action does (a failure there is a warning: the labels it would fill are left
// out). The commit date is the head commit's (push), else the run's time.
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
  if (/true/i.test(env.DOCKER_METADATA_PR_HEAD_SHA ?? '') && /pull_request/.test(ctx.eventName) && p.pull_request?.head?.sha !== undefined) sha = p.pull_request.head.sha;
  const stamp = p.commits?.find((c) => c.id === sha)?.timestamp ?? (p.head_commit?.id === sha ? p.head_commit?.timestamp : undefined);
  const commitDate = stamp ? new Date(stamp) : now;
  let shortShaLength: number | undefined;
  if (env.DOCKER_METADATA_SHORT_SHA_LENGTH) {
    shortShaLength = Number(env.DOCKER_METADATA_SHORT_SHA_LENGTH);
    if (Number.isNaN(shortShaLength)) throw new TagRuleError(`DOCKER_METADATA_SHORT_SHA_LENGTH is not a number: ${JSON.stringify(env.DOCKER_METADATA_SHORT_SHA_LENGTH)}`);
  }
  return {
    eventName: ctx.eventName,
    ref,
    sha,
    ...(p.repository?.default_branch ? { defaultBranch: p.repository.default_branch } : {}),
    ...(typeof p.base_ref === 'string' ? { pushBaseRef: p.base_ref } : {}),
    ...(p.pull_request?.base?.ref !== undefined ? { prBaseRef: p.pull_request.base.ref } : {}),
    commitDate: Number.isNaN(commitDate.getTime()) ? now : commitDate,
    now,
    ...(shortShaLength !== undefined ? { shortShaLength } : {}),
  };
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

export async function repoInfo(ctx: Context, token: string | undefined, warn: (m: string) => void): Promise<{ info: RepoInfo; defaultBranch?: string }> {
  const r = (ctx.payload as { repository?: PayloadRepository }).repository;
  if (r?.html_url) return repoFromApi(r);
  const fallback: RepoInfo = { name: ctx.repo.repo, htmlUrl: `${ctx.serverUrl}/${ctx.repo.owner}/${ctx.repo.repo}` };
  if (!token) return { info: fallback };
  try {
    const { data } = await github.getOctokit(token, { baseUrl: ctx.apiUrl, request: { retries: 0 } }).rest.repos.get({ ...ctx.repo, request: { signal: AbortSignal.timeout(10_000) } });
    return repoFromApi(data);
  } catch (e) {
    warn(`cannot read the repository's details from ${ctx.apiUrl}: ${(e as Error).message}; the description and license labels are left out`);
    return { info: fallback };
  }
}
