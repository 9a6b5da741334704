// Tags as docker/metadata-action makes them: the examples of its README's `tags` and `flavor` sections (event,
// rule → tags) as the expected values, plus the defaults, priorities, expressions and OCI labels.
import { computeMeta, type GitContext, parseImages, parseTagRule } from '../../src/action/tags.js';
import { formatDate, renderTemplate } from '../../src/action/template.js';

const sha = '860c1904a1ce19322e91ac35af1ab07466440c37';
const now = new Date('2020-01-10T00:30:00Z');
const ctx = (ref: string, eventName = 'push'): GitContext => ({
  eventName,
  ref,
  sha,
  defaultBranch: 'master',
  commitDate: new Date('2020-01-09T12:00:00Z'),
  now,
});
const tagsOf = (c: GitContext, rules: string[], flavor: string[] = [], images = ['name/app']) =>
  computeMeta({ images, tags: rules, flavor, labels: [], annotations: [] }, c, { defaultBranch: 'master' }).tags;

describe('metadata-action README examples', () => {
  test.each([
    // [event context, rule, expected tags]
    ['schedule', ctx('refs/heads/master', 'schedule'), 'type=schedule', ['nightly']],
    ['schedule, date', ctx('refs/heads/master', 'schedule'), "type=schedule,pattern={{date 'YYYYMMDD'}}", ['20200110']],
    [
      'schedule, date in a zone',
      ctx('refs/heads/master', 'schedule'),
      "type=schedule,pattern={{date 'YYYYMMDD-hhmmss' tz='Asia/Tokyo'}}",
      ['20200110-093000'],
    ],
    ['semver version', ctx('refs/tags/v1.2.3'), 'type=semver,pattern={{version}}', ['1.2.3', 'latest']],
    ['semver major.minor', ctx('refs/tags/v1.2.3'), 'type=semver,pattern={{major}}.{{minor}}', ['1.2', 'latest']],
    ['semver major', ctx('refs/tags/v1.2.3'), 'type=semver,pattern={{major}}', ['1', 'latest']],
    ['semver v-major', ctx('refs/tags/v1.2.3'), 'type=semver,pattern=v{{major}}', ['v1', 'latest']],
    ['semver raw', ctx('refs/tags/v1.2.3'), 'type=semver,pattern={{raw}}', ['v1.2.3', 'latest']],
    [
      'semver pre-release: only its version',
      ctx('refs/tags/v2.0.8-beta.67'),
      'type=semver,pattern={{major}}.{{minor}}',
      ['2.0.8-beta.67'],
    ],
    ['semver pre-release raw', ctx('refs/tags/v2.0.8-beta.67'), 'type=semver,pattern={{raw}}', ['v2.0.8-beta.67']],
    ['semver on a branch: nothing', ctx('refs/heads/master'), 'type=semver,pattern={{version}}', []],
    [
      'semver from value=',
      ctx('refs/heads/master'),
      'type=semver,pattern={{version}},value=v3.4.5',
      ['3.4.5', 'latest'],
    ],
    ['pep440', ctx('refs/tags/1.2.3'), 'type=pep440,pattern={{version}}', ['1.2.3', 'latest']],
    ['pep440 major.minor', ctx('refs/tags/1.2.3'), 'type=pep440,pattern={{major}}.{{minor}}', ['1.2', 'latest']],
    ['pep440 pre-release', ctx('refs/tags/1.2.3rc2'), 'type=pep440,pattern={{major}}.{{minor}}', ['1.2.3rc2']],
    ['match', ctx('refs/tags/v1.1.1'), 'type=match,pattern=\\d.\\d.\\d', ['1.1.1', 'latest']],
    ['match group', ctx('refs/tags/v1.2.3'), 'type=match,pattern=v(\\d.\\d),group=1', ['1.2', 'latest']],
    ['edge on the default branch', ctx('refs/heads/master'), 'type=edge', ['edge']],
    ['edge elsewhere: nothing', ctx('refs/heads/dev'), 'type=edge', []],
    ['edge for a named branch', ctx('refs/heads/dev'), 'type=edge,branch=dev', ['edge']],
    ['ref branch', ctx('refs/heads/master'), 'type=ref,event=branch', ['master']],
    ['ref branch with a slash', ctx('refs/heads/my/branch'), 'type=ref,event=branch', ['my-branch']],
    ['ref tag', ctx('refs/tags/v1.2.3'), 'type=ref,event=tag', ['v1.2.3', 'latest']],
    ['ref pr', ctx('refs/pull/2/merge', 'pull_request'), 'type=ref,event=pr', ['pr-2']],
    ['raw', ctx('refs/heads/master'), 'type=raw,value=foo', ['foo']],
    ['raw, bare', ctx('refs/heads/master'), 'bar', ['bar']],
    ['raw with expressions', ctx('refs/heads/master'), 'type=raw,value={{branch}}-{{sha}}', ['master-860c190']],
    [
      'raw latest on the default branch',
      ctx('refs/heads/master'),
      'type=raw,value=latest,enable={{is_default_branch}}',
      ['latest'],
    ],
    ['raw latest elsewhere: nothing', ctx('refs/heads/dev'), 'type=raw,value=latest,enable={{is_default_branch}}', []],
    ['sha', ctx('refs/heads/master'), 'type=sha', ['sha-860c190']],
    ['sha long', ctx('refs/heads/master'), 'type=sha,format=long', [`sha-${sha}`]],
    ['sha without prefix', ctx('refs/heads/master'), 'type=sha,prefix=', ['860c190']],
  ])('%s', (_name, c, rule, expected) => {
    expect(tagsOf(c, [rule])).toEqual(expected.map((t) => `name/app:${t}`));
  });
});

test('the defaults (no rules): schedule, branch, tag, pr; latest only for a tag', () => {
  expect(tagsOf(ctx('refs/heads/master'), [])).toEqual(['name/app:master']);
  expect(tagsOf(ctx('refs/tags/v1.2.3'), [])).toEqual(['name/app:v1.2.3', 'name/app:latest']);
  expect(tagsOf(ctx('refs/pull/7/merge', 'pull_request'), [])).toEqual(['name/app:pr-7']);
  expect(tagsOf(ctx('refs/heads/master', 'schedule'), [])).toEqual(['name/app:nightly', 'name/app:master']);
});

test('the usual semver set on a tag push: 1.2.3, 1.2, 1, latest, for every image (names lower-cased)', () => {
  const rules = [
    'type=semver,pattern={{version}}',
    'type=semver,pattern={{major}}.{{minor}}',
    'type=semver,pattern={{major}}',
    'type=ref,event=branch',
    'type=ref,event=pr',
  ];
  const images = ['ghcr.io/Owner/App', 'name=docker.io/owner/app,enable=true', 'name=quay.io/off,enable=false'];
  expect(parseImages(images)).toEqual([
    { name: 'ghcr.io/Owner/App', enable: true },
    { name: 'docker.io/owner/app', enable: true },
    { name: 'quay.io/off', enable: false },
  ]);
  expect(tagsOf(ctx('refs/tags/v1.2.3'), rules, [], images)).toEqual([
    'ghcr.io/owner/app:1.2.3',
    'ghcr.io/owner/app:1.2',
    'ghcr.io/owner/app:1',
    'ghcr.io/owner/app:latest',
    'docker.io/owner/app:1.2.3',
    'docker.io/owner/app:1.2',
    'docker.io/owner/app:1',
    'docker.io/owner/app:latest',
  ]);
  expect(tagsOf(ctx('refs/heads/feature/x'), rules, [], images.slice(0, 1))).toEqual(['ghcr.io/owner/app:feature-x']);
});

test('flavor: latest=false|true, prefix and suffix (on latest only with onlatest=true); priority orders the version', () => {
  expect(tagsOf(ctx('refs/tags/v1.2.3'), ['type=semver,pattern={{version}}'], ['latest=false'])).toEqual([
    'name/app:1.2.3',
  ]);
  expect(tagsOf(ctx('refs/heads/master'), ['type=ref,event=branch'], ['latest=true'])).toEqual([
    'name/app:master',
    'name/app:latest',
  ]);
  expect(
    tagsOf(ctx('refs/tags/v1.2.3'), ['type=semver,pattern={{version}}'], ['prefix=foo-', 'suffix=-bar,onlatest=true']),
  ).toEqual(['name/app:foo-1.2.3-bar', 'name/app:latest-bar']);
  expect(tagsOf(ctx('refs/tags/v1.2.3'), ['type=semver,pattern={{version}},prefix=v'], ['prefix=foo-'])).toEqual([
    'name/app:v1.2.3',
    'name/app:latest',
  ]);
  const m = computeMeta(
    {
      images: ['a'],
      tags: ['type=sha', 'type=ref,event=branch,priority=50', 'type=raw,value=x,priority=999'],
      flavor: [],
      labels: [],
      annotations: [],
    },
    ctx('refs/heads/main'),
    {},
  );
  expect(m.version).toBe('x');
  expect(m.tags).toEqual(['a:x', 'a:sha-860c190', 'a:main']);
});

test('OCI labels and annotations from the event and the repository; extra ones override; json output', () => {
  const m = computeMeta(
    {
      images: ['a'],
      tags: ['type=ref,event=tag'],
      flavor: [],
      labels: ['org.opencontainers.image.title=Mine', 'maintainer=me ({{branch}})'],
      annotations: [],
      annotationLevels: ['manifest', 'index'],
    },
    ctx('refs/tags/v1.0.0'),
    { name: 'app', description: 'an app', htmlUrl: 'https://github.com/o/app', license: 'MIT' },
  );
  expect(m.labels).toEqual([
    'maintainer=me ()',
    'org.opencontainers.image.created=2020-01-10T00:30:00.000Z',
    'org.opencontainers.image.description=an app',
    'org.opencontainers.image.licenses=MIT',
    `org.opencontainers.image.revision=${sha}`,
    'org.opencontainers.image.source=https://github.com/o/app',
    'org.opencontainers.image.title=Mine',
    'org.opencontainers.image.url=https://github.com/o/app',
    'org.opencontainers.image.version=v1.0.0',
  ]);
  expect(m.json.labels['org.opencontainers.image.version']).toBe('v1.0.0');
  expect(m.json.annotations).toContain('index:org.opencontainers.image.title=app');
  expect(m.json.annotations).toContain('manifest:org.opencontainers.image.title=app');
});

test('bad rules fail clearly', () => {
  expect(() => parseTagRule('type=semvar,pattern={{version}}')).toThrow(
    'tag rule type=semvar,pattern={{version}}: unknown type "semvar"',
  );
  expect(() => parseTagRule('type=semver')).toThrow('type=semver needs pattern=');
  expect(() => parseTagRule('type=ref')).toThrow('type=ref needs event=');
  expect(() => parseTagRule('type=ref,event=push')).toThrow('event must be branch, tag or pr');
  expect(() => tagsOf(ctx('refs/heads/master'), ['type=raw,value=x,enable=yes'])).toThrow(
    'enable must be true or false',
  );
  expect(() =>
    tagsOf(ctx('refs/heads/master', 'schedule'), ["type=schedule,pattern={{date 'YYYY' tz='Mars/Base'}}"]),
  ).toThrow('unknown time zone "Mars/Base"');
  const warnings: string[] = [];
  computeMeta(
    { images: [], tags: ['type=semver,pattern={{version}}'], flavor: [], labels: [], annotations: [] },
    ctx('refs/tags/release-1'),
    {},
    (w) => warnings.push(w),
  );
  expect(warnings).toEqual(['release-1 is not a valid semver (https://semver.org/)']);
});

test('templates: values, helpers with arguments, HTML escaping as Handlebars; moment date tokens', () => {
  expect(renderTemplate('{{a}}-{{b}}-{{missing}}', { a: 'x', b: 2 }, 't')).toBe('x-2-');
  expect(renderTemplate("{{h 'one' two='2'}}", { h: (args, hash) => `${args[0]}+${hash.two}` }, 't')).toBe('one+2');
  expect(renderTemplate('{{a}}', { a: 'k=v&"' }, 't')).toBe('k&#x3D;v&amp;&quot;');
  expect(formatDate(new Date('2021-03-04T05:06:07.089Z'), 'YYYY-MM-DD[T]HH:mm:ss.SSS Z', 'UTC', 't')).toBe(
    '2021-03-04T05:06:07.089 +00:00',
  );
  expect(formatDate(new Date('2021-03-04T05:06:07Z'), 'YY M D H h A ZZ', 'America/New_York', 't')).toBe(
    '21 3 4 0 12 AM -0500',
  );
});
