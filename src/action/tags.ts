// Tags, labels and annotations as docker/metadata-action makes them (its README's rules; read in its src/tag.ts,
// flavor.ts, image.ts and meta.ts at dc80280, whose test tables run as __tests__/action/metadata-action.test.ts), so
// that a workflow drops metadata-action and keeps its `tags:` lines:
// - tag rules `type=schedule|semver|pep440|match|edge|ref|raw|sha` with their attributes and the global ones
//   (enable, priority, prefix, suffix); a bare value is `type=raw`; rules apply by priority, the first value
//   becomes the version and the others its partial tags; semver and pep440 take `match=` (a regexp whose first group
//   is the version);
// - flavor `latest=auto|true|false`, `prefix=…[,onlatest=…]`, `suffix=…[,onlatest=…]`;
// - expressions {{branch}} {{tag}} {{sha}} {{base_ref}} {{is_default_branch}} {{is_not_default_branch}} {{date}}
//   {{commit_date}} in values, prefixes, suffixes, `enable=`, labels and annotations;
// - `images` lines (`name=…,enable=…`, or the old one-line `a,b`), names lower-cased; tags sanitised
//   ([^a-zA-Z0-9._-]+ → -, at most 128 characters); the OCI labels and annotations.
// Pure: the event comes in as a GitContext (action/github.ts reads it from the runner's environment).
import {
  clean as pepClean,
  explain as pepExplain,
  major as pepMajor,
  minor as pepMinor,
  patch as pepPatch,
  valid as pepValid,
} from '@renovatebot/pep440';
import semver from 'semver';
import { csvFields } from './lists.js';
import { dateHelper, renderTemplate, type TemplateValue } from './template.js';

export class TagRuleError extends Error {
  override readonly name = 'TagRuleError';
}

export interface GitContext {
  eventName: string;
  /** refs/heads/…, refs/tags/…, refs/pull/N/merge */
  ref: string;
  sha: string;
  /** the default branch the event's payload names ({{is_default_branch}}) */
  defaultBranch?: string;
  /** a push's `base_ref` (refs/heads/…): {{base_ref}} on a tag */
  pushBaseRef?: string;
  /** a pull request's base branch: {{base_ref}} on a pull request */
  prBaseRef?: string;
  commitDate: Date;
  /** where commitDate came from; absent: nothing said, it is the run's time */
  commitDateFrom?: 'event' | 'api' | 'git' | 'ci';
  /** the run's time ({{date}}) */
  now: Date;
  /** org.opencontainers.image.created (the run's time unless set: hoist sets the commit's, docs/action.md) */
  created?: Date;
  /** DOCKER_METADATA_SHORT_SHA_LENGTH (default 7) */
  shortShaLength?: number;
}

export interface RepoInfo {
  name?: string;
  description?: string;
  htmlUrl?: string;
  license?: string;
  /** the repository's default branch: type=edge's branch */
  defaultBranch?: string;
}

type RuleType = 'schedule' | 'semver' | 'pep440' | 'match' | 'edge' | 'ref' | 'raw' | 'sha';
const priorities: Record<RuleType, number> = {
  schedule: 1000,
  semver: 900,
  pep440: 900,
  match: 800,
  edge: 700,
  ref: 600,
  raw: 200,
  sha: 100,
};

export interface TagRule {
  type: RuleType;
  attrs: Record<string, string>;
  text: string;
}

const has = (o: object, k: string) => Object.hasOwn(o, k);

/** One tag rule line: `type=…,attr=…`, or a bare value (type=raw). */
export function parseTagRule(text: string): TagRule {
  let type: RuleType | undefined;
  const attrs: Record<string, string> = {};
  for (const field of csvFields(text)) {
    const eq = field.indexOf('=');
    if (eq <= 0) {
      attrs.value = field.trim();
      continue;
    }
    const key = field.slice(0, eq).trim().toLowerCase();
    const value = field.slice(eq + 1).trim();
    if (key === 'type') {
      if (!has(priorities, value))
        throw new TagRuleError(
          `tag rule ${text}: unknown type ${JSON.stringify(value)} (schedule, semver, pep440, match, edge, ref, raw, sha)`,
        );
      type = value as RuleType;
    } else attrs[key] = value;
  }
  type ??= 'raw';
  const need = (k: string) => {
    if (!has(attrs, k)) throw new TagRuleError(`tag rule ${text}: type=${type} needs ${k}=`);
  };
  switch (type) {
    case 'schedule':
      attrs.pattern ??= 'nightly';
      break;
    case 'semver':
    case 'pep440':
      need('pattern');
      attrs.value ??= '';
      attrs.match ??= '';
      break;
    case 'match':
      need('pattern');
      attrs.group ??= '0';
      if (!/^\d+$/.test(attrs.group)) throw new TagRuleError(`tag rule ${text}: group must be a number`);
      attrs.value ??= '';
      break;
    case 'edge':
      attrs.branch ??= '';
      break;
    case 'ref':
      need('event');
      if (!['branch', 'tag', 'pr'].includes(attrs.event))
        throw new TagRuleError(`tag rule ${text}: event must be branch, tag or pr`);
      if (attrs.event === 'pr' && !has(attrs, 'prefix')) attrs.prefix = 'pr-';
      break;
    case 'raw':
      need('value');
      break;
    case 'sha':
      if (!has(attrs, 'prefix')) attrs.prefix = 'sha-';
      attrs.format ??= 'short';
      if (!['short', 'long'].includes(attrs.format))
        throw new TagRuleError(`tag rule ${text}: format must be short or long`);
      break;
  }
  attrs.enable ??= 'true';
  attrs.priority ??= String(priorities[type]);
  if (!/^-?\d+$/.test(attrs.priority)) throw new TagRuleError(`tag rule ${text}: priority must be a number`);
  return { type, attrs, text };
}

/** Tag rule lines (metadata-action's four defaults when there are none), highest priority first (stable). */
export function sortedTagRules(lines: readonly string[]): TagRule[] {
  const all = (
    lines.length > 0 ? lines : ['type=schedule', 'type=ref,event=branch', 'type=ref,event=tag', 'type=ref,event=pr']
  ).map(parseTagRule);
  return all.sort((a, b) => Number(b.attrs.priority) - Number(a.attrs.priority));
}

/** Whether a pattern is `{{raw}}` alone (a pre-release keeps its raw form then, not the version's). */
export function isRawStatement(pattern: string): boolean {
  return /^\{\{\{?\s*raw(\s[^{}]*)?\}?\}\}$/.test(pattern);
}

export interface Flavor {
  latest: 'auto' | 'true' | 'false';
  prefix: string;
  prefixLatest: boolean;
  suffix: string;
  suffixLatest: boolean;
}

/** The flavor lines: `latest=auto|true|false`, `prefix=P[,onlatest=true]`, `suffix=S[,onlatest=true]`. */
export function parseFlavor(lines: readonly string[]): Flavor {
  const f: Flavor = { latest: 'auto', prefix: '', prefixLatest: false, suffix: '', suffixLatest: false };
  for (const line of lines) {
    let onlatestFor = '';
    for (const field of csvFields(line)) {
      // key=value, the value up to a next `=` (metadata-action splits the field at every `=`)
      const parts = field.split('=').map((x) => x.trim());
      if (parts.length === 1) throw new TagRuleError(`flavor ${line}: expected key=value`);
      const key = parts[0].toLowerCase();
      const value = parts[1];
      if (key === 'latest') {
        if (!['auto', 'true', 'false'].includes(value))
          throw new TagRuleError(`flavor ${line}: latest must be auto, true or false`);
        f.latest = value as Flavor['latest'];
      } else if (key === 'prefix' || key === 'suffix') {
        f[key] = value;
        onlatestFor = key;
      } else if (key === 'onlatest') {
        if (!['true', 'false'].includes(value))
          throw new TagRuleError(`flavor ${line}: onlatest must be true or false`);
        if (onlatestFor === 'prefix') f.prefixLatest = value === 'true';
        if (onlatestFor === 'suffix') f.suffixLatest = value === 'true';
      } else throw new TagRuleError(`flavor ${line}: unknown entry ${key} (latest, prefix, suffix, onlatest)`);
    }
  }
  return f;
}

export interface ImageName {
  name: string;
  enable: boolean;
}

/**
 * `images` lines as metadata-action reads them (its src/image.ts): each a name, or `name=NAME[,enable=true|false]`;
 * one line of bare names separated by commas is the old form, several names. An empty name, an unknown attribute
 * or an `enable` other than true/false fails.
 */
export function parseImages(lines: readonly string[]): ImageName[] {
  const fieldsOf = (line: string) => csvFields(line).map((f) => f.split('=').map((x) => x.trim()));
  if (lines.length === 1 && fieldsOf(lines[0]).every((parts) => parts.length === 1)) {
    return fieldsOf(lines[0]).map(([name]) => ({ name, enable: true }));
  }
  return lines.map((line) => {
    const image: ImageName = { name: '', enable: true };
    let named = false;
    for (const [key, value] of fieldsOf(line)) {
      if (value === undefined) {
        if (named) throw new TagRuleError(`images ${line}: two names in one line (one image per line, or name=NAME)`);
        image.name = key;
        named = true;
      } else if (key.toLowerCase() === 'name') {
        if (named) throw new TagRuleError(`images ${line}: two names in one line (one image per line, or name=NAME)`);
        image.name = value;
        named = true;
      } else if (key.toLowerCase() === 'enable') {
        if (value !== 'true' && value !== 'false')
          throw new TagRuleError(`images ${line}: enable must be true or false, not ${JSON.stringify(value)}`);
        image.enable = value === 'true';
      } else throw new TagRuleError(`images ${line}: unknown attribute ${JSON.stringify(key)} (name, enable)`);
    }
    if (image.name === '') throw new TagRuleError(`images ${line}: the image name is empty`);
    return image;
  });
}

/**
 * With only `images` given: a tag push v1.2.3 → 1.2.3, 1.2, 1 (and latest, flavor latest=auto); a branch push → the
 * branch; a pull request → pr-N; a scheduled run → nightly. metadata-action's own default keeps the tag as it is
 * (v1.2.3) instead of the semver set; give `tag-rules` for that.
 */
/**
 * metadata-action's tags when none are given (its context.ts): a Git tag names the image as it is (`v1.2.3`, and
 * `latest` by flavor), not as semver parts — a workflow moving from metadata-action keeps its tags. The semver set is
 * the README's example of tag-rules.
 */
export const defaultTagRules = ['type=schedule', 'type=ref,event=branch', 'type=ref,event=tag', 'type=ref,event=pr'];

export interface Meta {
  /** the highest-priority tag value (org.opencontainers.image.version) */
  version: string | undefined;
  /** metadata-action's version: the main tag, the others, and whether `latest` is added */
  versionInfo: { main: string | undefined; partial: string[]; latest: boolean };
  /** the enabled images, lower-cased */
  images: string[];
  /** `image:tag` for every image (or bare tags without images) */
  tags: string[];
  labels: string[];
  annotations: string[];
  /** the annotations prefixed with each level (`manifest:…`, `index:…`) */
  annotationsAt(levels: readonly string[]): string[];
  /** metadata-action's `json` output */
  json: { tags: string[]; 'tag-names': string[]; labels: Record<string, string>; annotations: string[] };
}

// metadata-action replaces what a tag may not hold and keeps the length; a registry refuses more than 128 characters,
// so hoist cuts there (where metadata-action's tag would fail at the push).
const sanitizeTag = (t: string) => t.replace(/[^a-zA-Z0-9._-]+/g, '-').slice(0, 128);

/** metadata-action's annotation levels: DOCKER_METADATA_ANNOTATIONS_LEVELS (comma-separated), manifest by default. */
export function annotationLevels(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.DOCKER_METADATA_ANNOTATIONS_LEVELS || 'manifest')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
}

export interface MetaInput {
  /** `images` lines (parseImages) */
  images: readonly string[];
  /** tag rule lines; empty: schedule, ref branch, ref tag, ref pr (metadata-action's defaults) */
  tags: readonly string[];
  flavor: readonly string[];
  labels: readonly string[];
  annotations: readonly string[];
  /** annotation levels (`manifest`, `index`…) for the json output */
  annotationLevels?: readonly string[];
}

/** metadata-action's result for `input` on the event `ctx` of repository `repo` (its src/meta.ts). */
export function computeMeta(
  input: MetaInput,
  ctx: GitContext,
  repo: RepoInfo,
  warn: (m: string) => void = () => undefined,
): Meta {
  const flavor = parseFlavor(input.flavor);
  const images = parseImages(input.images).flatMap((i) => (i.enable ? [i.name.toLowerCase()] : []));
  const rules = sortedTagRules(input.tags);
  const isTag = ctx.ref.startsWith('refs/tags/');
  const isBranch = ctx.ref.startsWith('refs/heads/');
  const isPr = ctx.ref.startsWith('refs/pull/');
  const tagName = ctx.ref.replace(/^refs\/tags\//, '');
  const branch = ctx.ref.replace(/^refs\/heads\//, '');
  const shortSha = (sha: string) => sha.slice(0, ctx.shortShaLength ?? 7);
  const isDefault = () => {
    if (!branch) return false;
    if (ctx.defaultBranch !== undefined && ctx.defaultBranch === branch) return true;
    // these events always run for the default branch's last commit
    return /create|discussion|issues|schedule/.test(ctx.eventName);
  };
  const globals: Record<string, TemplateValue> = {
    branch: () => (isBranch ? branch : ''),
    tag: () => (isTag ? tagName : ''),
    sha: () => shortSha(ctx.sha),
    // a tag push's base_ref names the branch (refs/heads/ taken off); a pull request's, its base branch
    base_ref: () =>
      isTag && ctx.pushBaseRef !== undefined
        ? ctx.pushBaseRef.replace(/^refs\/heads\//, '')
        : isPr && ctx.prBaseRef !== undefined
          ? ctx.prBaseRef
          : '',
    is_default_branch: () => String(isDefault()),
    is_not_default_branch: () => String(!isDefault()),
    date: dateHelper(ctx.now, 'date', 'tags'),
    commit_date: dateHelper(ctx.commitDate, 'commit_date', 'tags'),
  };
  const exp = (text: string, where: string) => renderTemplate(text, globals, where);

  let main: string | undefined;
  const partial: string[] = [];
  let latest: boolean | undefined;
  const latestOf = (auto: boolean) => (flavor.latest === 'auto' ? auto : flavor.latest === 'true');
  const affix = (val: string, rule: TagRule) => {
    let v = val;
    if (has(rule.attrs, 'prefix')) v = `${exp(rule.attrs.prefix, rule.text)}${v}`;
    else if (flavor.prefix) v = `${exp(flavor.prefix, 'flavor')}${v}`;
    if (has(rule.attrs, 'suffix')) v = `${v}${exp(rule.attrs.suffix, rule.text)}`;
    else if (flavor.suffix) v = `${v}${exp(flavor.suffix, 'flavor')}`;
    return v;
  };
  const add = (val: string, autoLatest: boolean) => {
    if (val.length === 0) return;
    const v = sanitizeTag(val);
    if (main === undefined) main = v;
    else if (v !== main && !partial.includes(v)) partial.push(v);
    latest ??= latestOf(autoLatest);
  };
  /** semver's and pep440's version: `value=` or the tag, narrowed by `match=` (its first group), `/` as `-` */
  const versionOf = (rule: TagRule): string => {
    let raw = rule.attrs.value ? exp(rule.attrs.value, rule.text) : tagName;
    if (rule.attrs.match) {
      const m = raw.match(regexp(rule.attrs.match, rule));
      if (!m) warn(`${rule.attrs.match} does not match ${raw}`);
      else raw = m[1] ?? '';
    }
    return raw.replace(/\//g, '-');
  };

  for (const rule of rules) {
    const enabled = exp(rule.attrs.enable, rule.text);
    if (enabled !== 'true' && enabled !== 'false')
      throw new TagRuleError(`tag rule ${rule.text}: enable must be true or false, not ${JSON.stringify(enabled)}`);
    if (enabled === 'false') continue;
    const a = rule.attrs;
    switch (rule.type) {
      case 'schedule':
        if (/schedule/.test(ctx.eventName)) add(affix(exp(a.pattern, rule.text), rule), false);
        break;
      case 'semver': {
        if (!isTag && !a.value) break;
        const raw = versionOf(rule);
        if (!semver.valid(raw)) {
          warn(`${raw} is not a valid semver (https://semver.org/)`);
          break;
        }
        const v = semver.parse(raw, { loose: true }) as semver.SemVer;
        const vars: Record<string, TemplateValue> = {
          version: v.version,
          major: v.major,
          minor: v.minor,
          patch: v.patch,
          raw: v.raw,
          prerelease: v.prerelease.join(','),
          build: v.build.join(','),
        };
        // a pre-release gives only its version (or its raw form)
        if (semver.prerelease(raw))
          add(
            affix(renderTemplate(isRawStatement(a.pattern) ? a.pattern : '{{version}}', vars, rule.text), rule),
            false,
          );
        else add(affix(renderTemplate(a.pattern, vars, rule.text), rule), true);
        break;
      }
      case 'pep440': {
        if (!isTag && !a.value) break;
        const raw = versionOf(rule);
        if (!pepValid(raw)) {
          warn(`${raw} does not conform to PEP 440 (https://peps.python.org/pep-0440/)`);
          break;
        }
        const x = pepExplain(raw);
        const cleaned = pepClean(raw) ?? raw;
        if (x?.is_prerelease || x?.is_postrelease || x?.is_devrelease)
          add(affix(isRawStatement(a.pattern) ? raw : cleaned, rule), false);
        else
          add(
            affix(
              renderTemplate(
                a.pattern,
                { raw, version: cleaned, major: pepMajor(raw), minor: pepMinor(raw), patch: pepPatch(raw) },
                rule.text,
              ),
              rule,
            ),
            true,
          );
        break;
      }
      case 'match': {
        if (!isTag && !a.value) break;
        const raw = a.value ? exp(a.value, rule.text) : tagName;
        const re = /^\/(.+)\/(.*)$/.exec(a.pattern);
        const m = raw.match(re ? regexp(re[1], rule, re[2]) : regexp(a.pattern, rule));
        if (!m) {
          warn(`${a.pattern} does not match ${raw}`);
          break;
        }
        const g = m[Number(a.group)];
        if (g === undefined) {
          warn(`group ${a.group} does not exist in ${a.pattern}`);
          break;
        }
        add(affix(g, rule), true);
        break;
      }
      case 'edge':
        if (isBranch && (a.branch || repo.defaultBranch) === branch) add(affix('edge', rule), false);
        break;
      case 'ref':
        if (a.event === 'branch' && isBranch) add(affix(branch, rule), false);
        else if (a.event === 'tag' && isTag) add(affix(tagName, rule), true);
        else if (a.event === 'pr' && isPr)
          add(affix(ctx.ref.replace(/^refs\/pull\//, '').replace(/\/merge$/, ''), rule), false);
        break;
      case 'raw':
        add(affix(exp(a.value, rule.text), rule), false);
        break;
      case 'sha':
        if (ctx.sha) add(affix(a.format === 'short' ? shortSha(ctx.sha) : ctx.sha, rule), false);
        break;
    }
  }

  const tagNames: string[] = [];
  if (main !== undefined) {
    tagNames.push(main, ...partial);
    if (latest)
      tagNames.push(
        sanitizeTag(`${flavor.prefixLatest ? flavor.prefix : ''}latest${flavor.suffixLatest ? flavor.suffix : ''}`),
      );
  }
  const tags = images.length > 0 ? images.flatMap((image) => tagNames.map((v) => `${image}:${v}`)) : [...tagNames];
  const oci = (extra: readonly string[], where: string): string[] => {
    const all = [
      `org.opencontainers.image.title=${repo.name ?? ''}`,
      `org.opencontainers.image.description=${repo.description ?? ''}`,
      `org.opencontainers.image.url=${repo.htmlUrl ?? ''}`,
      `org.opencontainers.image.source=${repo.htmlUrl ?? ''}`,
      `org.opencontainers.image.version=${main ?? ''}`,
      `org.opencontainers.image.created=${(ctx.created ?? ctx.now).toISOString()}`,
      `org.opencontainers.image.revision=${ctx.sha}`,
      `org.opencontainers.image.licenses=${repo.license ?? ''}`,
      ...extra.map((l) => exp(l, where)),
    ];
    // key=value, the last one of a key wins; a line without `=` is dropped
    const map = new Map<string, string>();
    for (const l of all) {
      const eq = l.indexOf('=');
      if (eq >= 0) map.set(l.slice(0, eq), l.slice(eq + 1));
    }
    return [...map].sort((x, y) => x[0].localeCompare(y[0])).map(([k, v]) => `${k}=${v}`);
  };
  const labels = oci(input.labels, 'labels');
  const annotations = oci(input.annotations, 'annotations');
  const annotationsAt = (levels: readonly string[]) =>
    levels.flatMap((level) => annotations.map((x) => `${level}:${x}`));
  return {
    version: main,
    versionInfo: { main, partial, latest: latest ?? false },
    images,
    tags,
    labels,
    annotations,
    annotationsAt,
    json: {
      tags,
      'tag-names': tagNames,
      labels: Object.fromEntries(labels.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])),
      annotations: annotationsAt(input.annotationLevels ?? ['manifest']),
    },
  };
}

function regexp(source: string, rule: TagRule, flags?: string): RegExp {
  try {
    return new RegExp(source, flags);
  } catch (e) {
    throw new TagRuleError(
      `tag rule ${rule.text}: ${JSON.stringify(source)} is not a regular expression: ${(e as Error).message}`,
    );
  }
}
