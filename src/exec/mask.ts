// Secret values never reach the log: what a RUN step prints (and the last lines quoted when it fails) has every
// secret the build has handed to a step replaced by ***, as GitHub Actions masks registered secrets. A multi-line
// secret is masked line by line as well; values shorter than four characters are left alone (masking them would
// garble the output and hide nothing).
const minLength = 4;

export class SecretMask {
  private values: string[] = [];

  add(secret: Buffer | string): void {
    const text = secret.toString();
    const candidates = [text, text.trim(), ...text.split(/\r?\n/).map((l) => l.trim())];
    const next = new Set(this.values);
    for (const c of candidates) if (c.length >= minLength) next.add(c);
    // Longest first, so that a whole value is masked before a line of it.
    this.values = [...next].sort((a, b) => b.length - a.length);
  }

  apply(line: string): string {
    let out = line;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join('***');
    return out;
  }
}
