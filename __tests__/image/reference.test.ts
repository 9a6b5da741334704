import { familiarReference, formatReference, parseReference, ImageReferenceError } from '../../src/image/reference.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('parseReference normalises like docker pull', () => {
  test.each([
    ['ubuntu', 'docker.io/library/ubuntu:latest'],
    ['ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    ['docker/docker', 'docker.io/docker/docker:latest'],
    ['docker.io/ubuntu', 'docker.io/library/ubuntu:latest'],
    ['index.docker.io/ubuntu', 'docker.io/library/ubuntu:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b/c:v1', 'localhost:5000/a/b/c:v1'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest'],
    ['LOCALDOMAIN/debian', 'LOCALDOMAIN/debian:latest'],
    ['ghcr.io/o/r:1.0-rc_2', 'ghcr.io/o/r:1.0-rc_2'],
    ['192.168.0.1:80', 'docker.io/library/192.168.0.1:80'],
    ['[::1]:5000/img', '[::1]:5000/img:latest'],
    ['a__b/c--d.e', 'docker.io/a__b/c--d.e:latest'],
    [`ubuntu@${digest}`, `docker.io/library/ubuntu@${digest}`],
    [`ubuntu:1@${digest}`, `docker.io/library/ubuntu:1@${digest}`],
    [`docker.io/${'f'.repeat(64)}`, `docker.io/library/${'f'.repeat(64)}:latest`],
  ])('%s → %s', (input, want) => {
    expect(formatReference(parseReference(input))).toBe(want);
  });

  test('no default tag when asked, or when a digest is given', () => {
    expect(parseReference('ubuntu', { defaultToLatest: false }).tag).toBeUndefined();
    expect(parseReference(`ubuntu@${digest}`).tag).toBeUndefined();
  });

  test('sha512 digests', () => {
    const d = `sha512:${'b'.repeat(128)}`;
    expect(parseReference(`r.io/x@${d}`).digest).toBe(d);
  });

  test.each([
    ['', /empty/],
    ['docker/Docker', /must be lowercase/],
    ['https://github.com/docker/docker', /invalid reference/],
    ['-docker', /invalid reference/],
    ['docker///docker', /invalid reference/],
    ['[fc00::1]', /invalid reference/],
    ['fc00::1:5000/debian', /invalid reference/],
    ['[fe80::1%eth0]:5000/debian', /invalid reference/],
    ['a'.repeat(64), /image ID/],
    ['ubuntu:.bad', /tag/],
    [`ubuntu:${'x'.repeat(129)}`, /tag/],
    ['ubuntu@sha256:abc', /64 lower-case hex/],
    [`ubuntu@sha256:${'A'.repeat(64)}`, /lower-case/],
    [`ubuntu@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/],
    [`r.io/${'a'.repeat(256)}`, /longer than 255/],
  ])('%s is rejected', (input, message) => {
    expect(() => parseReference(input)).toThrow(ImageReferenceError);
    expect(() => parseReference(input)).toThrow(message);
  });

  test('the 255 limit excludes the domain (reference v0.6)', () => {
    expect(parseReference(`registry.example.com/${'a'.repeat(255)}`).repository).toHaveLength(255);
  });

  test('familiar form strips docker.io and library/', () => {
    expect(familiarReference(parseReference('ubuntu'))).toBe('ubuntu:latest');
    expect(familiarReference(parseReference('docker/docker:1'))).toBe('docker/docker:1');
    expect(familiarReference(parseReference('ghcr.io/library/x'))).toBe('ghcr.io/library/x:latest');
  });
});
