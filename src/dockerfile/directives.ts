// Parser directives: `# syntax=…`, `# escape=…`, `# check=…`, recognised only in the comment lines at the very
// top of the file. The first line that is not a directive ends them for good (a blank line, another comment, an
// instruction), as in BuildKit.
import { trimLeftSpace } from './chars.js';
import { DockerfileError } from './errors.js';

export type DirectiveName = 'syntax' | 'escape' | 'check';

export interface Directive {
  name: DirectiveName;
  value: string;
  /** 1-based line */
  line: number;
}

const known = new Set<string>(['syntax', 'escape', 'check']);
// Go's \s in RE2 is [\t\n\f\r ]
const directiveLine = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;

export class DirectiveParser {
  private done = false;
  private readonly seen = new Set<string>();
  readonly directives: Directive[] = [];

  /** Look at one line (newline removed); returns the directive it holds, if it is one and directives are still open. */
  parseLine(text: string, line: number): Directive | undefined {
    if (this.done) return undefined;
    if (!text.startsWith('#')) {
      this.done = true;
      return undefined;
    }
    const m = directiveLine.exec(trimLeftSpace(text.slice(1)));
    if (!m || !known.has(m[1].toLowerCase())) {
      this.done = true;
      return undefined;
    }
    const name = m[1].toLowerCase() as DirectiveName;
    if (this.seen.has(name)) {
      throw new DockerfileError(
        `only one ${name} parser directive can be used`,
        { line },
        {
          hint: `remove the second "# ${name}=" line`,
        },
      );
    }
    this.seen.add(name);
    const d: Directive = { name, value: m[2], line };
    this.directives.push(d);
    return d;
  }
}

/** Validates an `escape` directive's value: only backslash and backtick are allowed. */
export function escapeTokenOf(d: Directive): string {
  if (d.value !== '\\' && d.value !== '`') {
    throw new DockerfileError(
      `invalid escape token '${d.value}' does not match \` or \\`,
      { line: d.line },
      {
        hint: 'use "# escape=\\" (the default) or "# escape=`" (common on Windows)',
      },
    );
  }
  return d.value;
}
