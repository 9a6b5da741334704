// --output as buildx reads it, and --push/--load over it as buildx applies them (build-push-action's `push: true`
// beside `outputs: type=image,…,push-by-digest=true`, as mastodon's and open-webui's matrix legs write it; a pull
// request's `push=false`, as paperless-ngx's).
import { OutputError, parseOutput, wantsOciMediaTypes, withPushAndLoad } from '../../src/export/outputs.js';

describe('outputs', () => {
  test('type=image without push=true is built and pushed nowhere; with it, a push; push-by-digest either way', () => {
    expect(parseOutput('type=image,name=ghcr.io/o/app,push-by-digest=true,name-canonical=true,push=false')).toEqual({
      type: 'image',
      names: ['ghcr.io/o/app'],
      byDigest: true,
    });
    expect(parseOutput('type=image,name=ghcr.io/o/app')).toEqual({ type: 'image', names: ['ghcr.io/o/app'] });
    expect(parseOutput('type=image,"name=ghcr.io/o/app",push-by-digest=true,name-canonical=true,push=true')).toEqual({
      type: 'registry',
      names: ['ghcr.io/o/app'],
      byDigest: true,
    });
    expect(() => parseOutput('type=image,push=maybe')).toThrow(OutputError);
    expect(() => parseOutput('type=image,push=maybe')).toThrow(
      '--output type=image,push=maybe: push=maybe is not true or false',
    );
  });

  test("oci-mediatypes: asked on any image output; the oci exporter's default", () => {
    expect(parseOutput('type=registry,oci-mediatypes=true')).toEqual({ type: 'registry', ociMediaTypes: true });
    expect(parseOutput('type=oci,dest=x.tar')).toEqual({ type: 'oci', dest: 'x.tar', tar: true, ociMediaTypes: true });
    expect(parseOutput('type=oci,dest=x.tar,oci-mediatypes=false')).toEqual({ type: 'oci', dest: 'x.tar', tar: true });
    expect(wantsOciMediaTypes([parseOutput('type=registry'), parseOutput('type=docker,dest=a.tar')])).toBe(false);
    expect(wantsOciMediaTypes([parseOutput('type=image,push=true,oci-mediatypes=true')])).toBe(true);
  });

  test("push makes the first image output push (buildx's --push), or adds one; load adds a docker output unless there is one", () => {
    const leg = parseOutput('type=image,"name=ghcr.io/o/app",push-by-digest=true,name-canonical=true,push=false');
    expect(withPushAndLoad([leg], { push: true })).toEqual([
      { type: 'registry', names: ['ghcr.io/o/app'], byDigest: true },
    ]);
    expect(withPushAndLoad([leg], { push: false })).toEqual([leg]);
    expect(withPushAndLoad([], { push: true })).toEqual([{ type: 'registry' }]);
    expect(withPushAndLoad([], { pushByDigest: true, load: true })).toEqual([
      { type: 'registry', byDigest: true },
      { type: 'docker' },
    ]);
    const local = parseOutput('type=local,dest=out');
    expect(withPushAndLoad([local], { push: true })).toEqual([local, { type: 'registry' }]);
    const docker = parseOutput('type=docker,dest=a.tar');
    expect(withPushAndLoad([docker], { load: true })).toEqual([docker]);
  });
});
