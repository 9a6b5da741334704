// User and group names as BuildKit resolves them for --chown, USER-owned WORKDIRs and RUN: from the image's own
// /etc/passwd and /etc/group. `user[:group]`: a number is taken as is; a numeric user without a group gets
// gid = uid; a named user without a group gets its primary group from passwd.

export interface Owner {
  uid: number;
  gid: number;
}

export class UserError extends Error {
  override readonly name = 'UserError';
}

interface Entry {
  name: string;
  id: number;
  gid?: number;
  /** group members (the fourth field of /etc/group) */
  members?: string[];
}

export function parsePasswd(text: string): Entry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#') || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) return [];
    return [{ name: f[0], id: Number(f[2]), gid: Number(f[3]) }];
  });
}

/**
 * The HOME runc gives a process whose environment has none (libcontainer's setupUser): the home directory of the
 * passwd entry with its uid, else `/`.
 */
export function homeOf(uid: number, passwd: string | undefined): string {
  for (const line of (passwd ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 6 && !line.startsWith('#') && /^\d+$/.test(f[2]) && Number(f[2]) === uid) return f[5] || '/';
  }
  return '/';
}

export function parseGroup(text: string): Entry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 3 || line.startsWith('#') || !/^\d+$/.test(f[2])) return [];
    return [
      {
        name: f[0],
        id: Number(f[2]),
        members: (f[3] ?? '')
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean),
      },
    ];
  });
}

const isNumber = (s: string) => /^\d+$/.test(s);

/** Whether resolving `spec` needs the image's files. */
export function needsLookup(spec: string): boolean {
  const [user, group] = spec.split(':');
  return !isNumber(user) || (group !== undefined && group !== '' && !isNumber(group));
}

/**
 * The owner a file operation gives (--chown, the directories WORKDIR makes under USER), as BuildKit's readUser
 * (solver/llbsolver/file/user_linux.go) finds it: a number as is (a numeric user without a group gets gid = uid); a
 * name from the image's passwd or group, and a name it does not have leaves the id at 0 instead of failing (only
 * RUN refuses an unknown user, resolveExecUser).
 */
export function resolveOwner(spec: string, files: { passwd?: string; group?: string }): Owner {
  const colon = spec.indexOf(':');
  const user = colon < 0 ? spec : spec.slice(0, colon);
  const group = colon < 0 ? undefined : spec.slice(colon + 1);
  if (user === '') throw new UserError(`invalid user ${JSON.stringify(spec)}`);
  const owner: Owner = { uid: 0, gid: 0 };
  if (isNumber(user)) {
    owner.uid = Number(user);
    owner.gid = owner.uid;
  } else {
    const e = parsePasswd(files.passwd ?? '').find((p) => p.name === user);
    if (e) {
      owner.uid = e.id;
      owner.gid = e.gid ?? 0;
    }
  }
  if (group !== undefined && group !== '') {
    if (isNumber(group)) owner.gid = Number(group);
    else {
      const g = parseGroup(files.group ?? '').find((p) => p.name === group);
      if (g) owner.gid = g.id;
    }
  }
  return owner;
}

export interface ExecUser extends Owner {
  /**
   * supplementary groups: the primary group first (CVE-2023-25173: containerd and BuildKit list it, so a process
   * never keeps groups it was not given), then those that list the user as a member when USER names no group
   */
  additionalGids: number[];
}

const withPrimary = (u: Owner & { additionalGids: number[] }): ExecUser => ({
  ...u,
  additionalGids: [u.gid, ...u.additionalGids.filter((g) => g !== u.gid)],
});

/**
 * The user of a RUN step, as BuildKit resolves it (executor/oci/user.go GetUser: numeric `uid:gid` as is, else
 * runc's user.GetExecUser over the image's files), which differs from --chown: a numeric USER found in passwd
 * takes that entry's primary group, a numeric USER not in passwd runs with gid 0, and without an explicit group
 * the user gets every group whose member list names it.
 */
export function resolveExecUser(spec: string, files: { passwd?: string; group?: string }): ExecUser {
  // No USER: as user 0 looked up like any other (root's primary group and the groups listing root, as current
  // BuildKit's GetUser does), falling back to 0:0 without groups when the image's files do not say.
  if (!spec) {
    try {
      return resolveExecUser('0', files);
    } catch {
      return { uid: 0, gid: 0, additionalGids: [0] };
    }
  }
  const colon = spec.indexOf(':');
  const user = colon < 0 ? spec : spec.slice(0, colon);
  const group = colon < 0 ? '' : spec.slice(colon + 1);
  if (isNumber(user) && isNumber(group))
    return withPrimary({ uid: Number(user), gid: Number(group), additionalGids: [] });
  const found = parsePasswd(files.passwd ?? '').find((p) => (isNumber(user) ? p.id === Number(user) : p.name === user));
  if (!found && !isNumber(user)) throw new UserError(`unable to find user ${user}: no matching entries in passwd file`);
  const uid = found ? found.id : Number(user);
  let gid = found?.gid ?? 0;
  let additionalGids: number[] = [];
  if (group !== '') {
    const g = parseGroup(files.group ?? '').find((e) => (isNumber(group) ? e.id === Number(group) : e.name === group));
    if (!g && !isNumber(group)) throw new UserError(`unable to find group ${group}: no matching entries in group file`);
    gid = g ? g.id : Number(group);
  } else if (found) {
    additionalGids = parseGroup(files.group ?? '')
      .filter((e) => e.members?.includes(found.name))
      .map((e) => e.id);
  }
  return withPrimary({ uid, gid, additionalGids });
}
