// How USER and --chown names become ids: --chown (resolveOwner, BuildKit's file ops) and the user of a RUN step
// (resolveExecUser, runc's GetExecUser as BuildKit's executor calls it). The RUN rules were checked against
// docker build (differential.test.ts, "supplementary groups" and "HOME" cases); these pin the edge cases.
import { resolveExecUser, resolveOwner, UserError } from '../../src/solver/users.js';

const files = {
  passwd:
    'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n# comment\nbroken:x:notanumber:1\nnobody:x:65534:65534::/:/bin/false\n',
  group: 'root:x:0:\napp:x:1001:\nstaff:x:50:app,nobody\nextra:x:51: app \nother:x:52:someoneelse\n',
};

describe('the user of a RUN step', () => {
  test('a name: its uid, its primary group from passwd, and every group that lists it', () => {
    expect(resolveExecUser('app', files)).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 50, 51] });
  });
  test('a number found in passwd is that entry, with its groups', () => {
    expect(resolveExecUser('1000', files)).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 50, 51] });
  });
  test('a number not in passwd runs with gid 0 and no other group', () => {
    expect(resolveExecUser('4242', files)).toEqual({ uid: 4242, gid: 0, additionalGids: [0] });
  });
  test('an explicit group replaces the primary one and drops the other supplementary ones (the primary is always listed: CVE-2023-25173)', () => {
    expect(resolveExecUser('app:staff', files)).toEqual({ uid: 1000, gid: 50, additionalGids: [50] });
    expect(resolveExecUser('app:777', files)).toEqual({ uid: 1000, gid: 777, additionalGids: [777] });
    expect(resolveExecUser('nobody:50', files)).toEqual({ uid: 65534, gid: 50, additionalGids: [50] });
  });
  test('uid:gid in numbers needs no files at all', () => {
    expect(resolveExecUser('5:6', {})).toEqual({ uid: 5, gid: 6, additionalGids: [6] });
    expect(resolveExecUser('', {})).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
  });
  test('no USER: root as the image has it, with the groups that list root (current BuildKit GetUser looks up "0")', () => {
    const withRoot = {
      passwd: 'root:x:0:0:root:/root:/bin/sh\n',
      group: 'root:x:0:root\nwheel:x:10:root\ndisk:x:6:root,adm\nadm:x:4:adm\n',
    };
    expect(resolveExecUser('', withRoot)).toEqual({ uid: 0, gid: 0, additionalGids: [0, 10, 6] });
    expect(resolveExecUser('', { group: withRoot.group })).toEqual({ uid: 0, gid: 0, additionalGids: [0] });
  });
  test('unknown names are errors that say which file lacks them', () => {
    expect(() => resolveExecUser('ghost', files)).toThrow(
      new UserError('unable to find user ghost: no matching entries in passwd file'),
    );
    expect(() => resolveExecUser('app:ghosts', files)).toThrow(
      /unable to find group ghosts: no matching entries in group file/,
    );
    expect(() => resolveExecUser('app', {})).toThrow(/unable to find user app/);
  });
});

describe('--chown and WORKDIR owners', () => {
  test('a numeric user without a group takes gid = uid; a name takes its primary group', () => {
    expect(resolveOwner('1000', files)).toEqual({ uid: 1000, gid: 1000 });
    expect(resolveOwner('app', files)).toEqual({ uid: 1000, gid: 1001 });
    expect(resolveOwner('app:staff', files)).toEqual({ uid: 1000, gid: 50 });
  });
  test("a name the image lacks leaves its id at 0, as BuildKit's readUser (docker: COPY --chown=ghost gives 0:0)", () => {
    expect(resolveOwner('ghost', files)).toEqual({ uid: 0, gid: 0 });
    expect(resolveOwner('ghost:staff', files)).toEqual({ uid: 0, gid: 50 });
    expect(resolveOwner('app:ghosts', files)).toEqual({ uid: 1000, gid: 1001 });
    expect(resolveOwner('docker:root', {})).toEqual({ uid: 0, gid: 0 });
    expect(resolveOwner('1234:ghosts', files)).toEqual({ uid: 1234, gid: 1234 });
  });
});
