// --chmod values: octal (0755, 644) or symbolic like chmod(1): `u+x`, `go-w`, `a=rX`, `u=rwx,g=rx,o=`, `+x`
// (no who means all). X sets execute only on directories and on files that already have an execute bit.

export class ChmodError extends Error {
  override readonly name = 'ChmodError';
}

export type ChmodFn = (mode: number, isDir: boolean) => number;

const whoBits: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007 };

export function parseChmod(text: string): ChmodFn {
  if (/^\d+$/.test(text)) {
    const n = /^[0-7]+$/.test(text) ? parseInt(text, 8) : Number.POSITIVE_INFINITY;
    if (n > 0o7777)
      throw new ChmodError(`invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`);
    return () => n;
  }
  const clauses = text.split(',').map((clause) => {
    const m = clause.match(/^([ugoa]*)((?:[-+=][rwxXst]*)+)$/);
    if (!m)
      throw new ChmodError(
        `invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777, or symbolic as chmod takes it (u+x,go-w)`,
      );
    let who = m[1].replace(/a/g, 'ugo') || 'ugo';
    who = [...new Set(who)].join('');
    const ops = [...m[2].matchAll(/([-+=])([rwxXst]*)/g)].map((o) => ({ op: o[1], perms: o[2] }));
    return { who, ops };
  });
  return (mode, isDir) => {
    let out = mode & 0o7777;
    for (const { who, ops } of clauses) {
      let mask = 0;
      for (const w of who) mask |= whoBits[w];
      for (const { op, perms } of ops) {
        let bits = 0;
        for (const p of perms) {
          if (p === 'r') bits |= 0o444;
          else if (p === 'w') bits |= 0o222;
          else if (p === 'x') bits |= 0o111;
          else if (p === 'X') {
            if (isDir || (out & 0o111) !== 0) bits |= 0o111;
          } else if (p === 's') bits |= 0o6000;
          else if (p === 't') bits |= 0o1000;
        }
        bits &= mask;
        if (op === '+') out |= bits;
        else if (op === '-') out &= ~bits;
        else out = (out & ~((mask & 0o7777 & ~0o1000) | (who.includes('o') ? 0o1000 : 0))) | bits;
      }
    }
    return out & 0o7777;
  };
}
