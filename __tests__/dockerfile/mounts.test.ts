// RUN --mount's option parsing as BuildKit's parseMount (dockerfile2llb commands_runmount.go) checks it: unknown keys
// and keys of another mount type are errors rather than silently dropped, and tmpfs sizes read as docker's
// units.RAMInBytes does (powers of 1024).
import { MountError, parseMount, ramInBytes } from '../../src/dockerfile/mounts.js';

test('a misspelt key is an error naming the key, the field, and the likely key', () => {
  expect(() => parseMount('typ=cache,target=/c', '/')).toThrow(
    new MountError("--mount=typ=cache,target=/c: unexpected key 'typ' in 'typ=cache' (did you mean type?)"),
  );
  expect(() => parseMount('type=cache,traget=/c', '/')).toThrow(
    /unexpected key 'traget' in 'traget=\/c' \(did you mean target\?\)/,
  );
  expect(() => parseMount('type=bind,colour=blue', '/')).toThrow(/unexpected key 'colour' in 'colour=blue'$/);
});

test('keys that only some mount types take', () => {
  expect(() => parseMount('type=cache,target=/c,required', '/')).toThrow(
    /unexpected key 'required' for mount type 'cache'/,
  );
  expect(() => parseMount('type=bind,target=/c,size=1m', '/')).toThrow(/unexpected key 'size' for mount type 'bind'/);
  expect(() => parseMount('type=ssh,env=X', '/')).toThrow(/unexpected key 'env' for mount type 'ssh'/);
  expect(parseMount('type=secret,id=s,env=TOKEN,required', '/')).toMatchObject({
    type: 'secret',
    env: 'TOKEN',
    required: true,
  });
  expect(parseMount('type=ssh,required=true', '/')).toMatchObject({ type: 'ssh', required: true });
});

test('keys are case-insensitive and their aliases are known', () => {
  expect(parseMount('Type=cache,DST=/c,SHARING=locked', '/w')).toMatchObject({
    type: 'cache',
    target: '/c',
    sharing: 'locked',
  });
  expect(parseMount('type=bind,src=a,destination=b,rw', '/w')).toMatchObject({
    type: 'bind',
    source: 'a',
    target: '/w/b',
  });
});

test('tmpfs size as units.RAMInBytes reads it', () => {
  expect([
    ramInBytes('1024'),
    ramInBytes('64k'),
    ramInBytes('64K'),
    ramInBytes('1m'),
    ramInBytes('1.5m'),
    ramInBytes('2g'),
    ramInBytes('1GiB'),
    ramInBytes('3kb'),
  ]).toEqual([1024, 65536, 65536, 1048576, 1572864, 2147483648, 1073741824, 3072]);
  for (const bad of ['', 'm', '-1m', '1x', '1 m m', 'ten']) expect(ramInBytes(bad)).toBeUndefined();
  expect(parseMount('type=tmpfs,target=/t,size=64m', '/')).toEqual({ type: 'tmpfs', target: '/t', size: 67108864 });
  expect(() => parseMount('type=tmpfs,target=/t,size=big', '/')).toThrow(
    new MountError('--mount=type=tmpfs,target=/t,size=big: invalid value for size: big'),
  );
});

test("a cache mount's source names a directory inside the cache: one that climbs out is refused", () => {
  expect(parseMount('type=cache,target=/c,source=sub/dir', '/')).toMatchObject({ source: 'sub/dir' });
  expect(parseMount('type=cache,target=/c,source=a/../b', '/')).toMatchObject({ source: 'a/../b' });
  expect(parseMount('type=cache,target=/c,source=..foo', '/')).toMatchObject({ source: '..foo' });
  for (const bad of ['..', '../x', 'a/../../x', '/../x'])
    expect(() => parseMount(`type=cache,target=/c,source=${bad}`, '/')).toThrow(
      `source ${bad} leaves the cache; name a directory inside it`,
    );
});

test('the root cannot be a mount target (BuildKit: invalid mount target "/")', () => {
  for (const spec of ['type=bind,target=/', 'type=cache,target=/', 'type=tmpfs,target=.', 'type=bind,target=/a/..'])
    expect(() => parseMount(spec, '/')).toThrow('invalid mount target "/"');
  expect(parseMount('type=tmpfs,target=..', '/w/x')).toMatchObject({ target: '/w' });
});

test("an unknown mount type in BuildKit's words, with its suggestion", () => {
  expect(() => parseMount('type=tmp,target=/t', '/')).toThrow(/unsupported mount type "tmp" \(did you mean tmpfs\?\)$/);
  expect(() => parseMount('type=volume,target=/t', '/')).toThrow(
    /unsupported mount type "volume" \(bind, cache, tmpfs, secret, ssh\)$/,
  );
});
