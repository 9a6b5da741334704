// Annotations (docker buildx build --annotation, build-push-action's annotations, metadata-action's): parsed as buildx
// parses them, written where BuildKit writes them (moby/buildkit docs/annotations.md): on each manifest, on the index
// and its descriptors when there is an index, left out where the output has no place for them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { annotationsFor, parseAnnotation } from '../../src/image/annotations.js';
import { hoist } from '../helpers/hoist.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { describeWith, run } from '../helpers/tools.js';

test.each([
  [
    'org.opencontainers.image.title=Title',
    { types: ['manifest'], key: 'org.opencontainers.image.title', value: 'Title' },
  ],
  ['index:org.example.k=a=b', { types: ['index'], key: 'org.example.k', value: 'a=b' }],
  [
    'manifest,index:k=https://example.com/x',
    { types: ['manifest', 'index'], key: 'k', value: 'https://example.com/x' },
  ],
  [
    'manifest-descriptor[linux/arm64]:k=',
    { types: ['manifest-descriptor'], platform: { os: 'linux', architecture: 'arm64' }, key: 'k', value: '' },
  ],
])('%s', (text, want) => {
  expect(parseAnnotation(text)).toMatchObject(want);
});

test('bad annotations fail naming what to write', () => {
  expect(() => parseAnnotation('novalue')).toThrow('annotation "novalue": expected [TYPE[[PLATFORM]]:]KEY=VALUE');
  expect(() => parseAnnotation('layer:k=v')).toThrow(
    'annotation "layer:k=v": unknown type "layer" (manifest, manifest-descriptor, index, index-descriptor)',
  );
  expect(() => parseAnnotation('manifest[linux/nope/x/y]:k=v')).toThrow('annotation "manifest[linux/nope/x/y]:k=v":');
  const all = ['a=1', 'manifest[linux/arm64]:b=2', 'index:c=3'].map(parseAnnotation);
  expect(annotationsFor(all, 'manifest', { os: 'linux', architecture: 'amd64' })).toEqual({ a: '1' });
  expect(annotationsFor(all, 'manifest', { os: 'linux', architecture: 'arm64' })).toEqual({ a: '1', b: '2' });
  expect(annotationsFor(all, 'manifest-descriptor')).toBeUndefined();
});

describeWith(['docker-registry', 'skopeo'])('annotations on a pushed image', () => {
  let reg: TestRegistry;
  const work = mkdtempSync(path.join(tmpdir(), 'hoist-annotations-'));
  beforeAll(async () => {
    reg = await startRegistry('anonymous');
  });
  afterAll(async () => {
    await reg?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const raw = (ref: string) =>
    JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as {
      annotations?: Record<string, string>;
      manifests?: { digest: string; annotations?: Record<string, string>; platform: { architecture: string } }[];
    };
  const ctx = path.join(work, 'ctx');
  mkdirSync(ctx);
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a /a\n');
  writeFileSync(path.join(ctx, 'a'), 'a\n');
  const flags = [
    '--annotation',
    'org.example.all=1',
    '--annotation',
    'manifest[linux/arm64]:org.example.arm=2',
    '--annotation',
    'index:org.example.index=3',
    '--annotation',
    'manifest-descriptor:org.example.desc=4',
    '--annotation',
    'index-descriptor:org.example.layout=5',
  ];

  test("one platform: the manifest gets its own (not another platform's); there is no index for the rest", async () => {
    const ref = `${reg.host}/ann/one:1`;
    const r = await hoist([
      'build',
      '--store',
      path.join(work, 'store'),
      '--platform',
      'linux/amd64',
      ...flags,
      '-t',
      ref,
      '--push',
      ctx,
    ]);
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
    expect(raw(ref).annotations).toEqual({ 'org.example.all': '1' });
  });

  test('two platforms: each manifest, the index and its descriptors', async () => {
    const ref = `${reg.host}/ann/two:1`;
    const r = await hoist([
      'build',
      '--store',
      path.join(work, 'store'),
      '--platform',
      'linux/amd64,linux/arm64',
      ...flags,
      '-t',
      ref,
      '--push',
      ctx,
    ]);
    expect(`${r.code}\n${r.err}`).toBe(`0\n${r.err}`);
    const index = raw(ref);
    expect(index.annotations).toEqual({ 'org.example.index': '3' });
    expect(index.manifests?.map((m) => m.annotations)).toEqual([
      { 'org.example.desc': '4' },
      { 'org.example.desc': '4' },
    ]);
    const byArch = Object.fromEntries(
      (index.manifests ?? []).map((m) => [m.platform.architecture, raw(`${reg.host}/ann/two@${m.digest}`).annotations]),
    );
    expect(byArch).toEqual({
      amd64: { 'org.example.all': '1' },
      arm64: { 'org.example.all': '1', 'org.example.arm': '2' },
    });
  });

  test('a bad --annotation is a usage error before the build', async () => {
    const r = await hoist(['build', '--store', path.join(work, 'store'), '--annotation', 'layer:k=v', ctx]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown type "layer"');
  });
});
