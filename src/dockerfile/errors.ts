// Every problem with a Dockerfile is reported as a DockerfileError: where it is (file, line, column when known),
// the offending source lines, and what to do about it. Nothing in src/dockerfile throws anything else for bad input.

export interface Location {
  /** 1-based first line of the instruction or token */
  line: number;
  /** 1-based last line (continuations and heredocs make instructions span lines) */
  endLine?: number;
  /** 1-based column, when the error is about one spot in the line */
  column?: number;
}

export class DockerfileError extends Error {
  override readonly name = 'DockerfileError';
  /** the file name as the user gave it; set by whoever knows it (the parser only sees text) */
  file: string;
  line: number;
  endLine: number;
  column: number | undefined;
  hint: string | undefined;
  /** the source lines from line to endLine, for printing */
  source: string[] = [];
  /** the bare message without location, for tools that format themselves */
  readonly detail: string;

  constructor(detail: string, loc: Location, opts: { hint?: string; file?: string } = {}) {
    super(detail);
    this.detail = detail;
    this.line = loc.line;
    this.endLine = loc.endLine ?? loc.line;
    this.column = loc.column;
    this.hint = opts.hint;
    this.file = opts.file ?? 'Dockerfile';
    this.message = this.headline();
  }

  /** Attach the file name and the text the error points into. */
  withSource(file: string, text: string): this {
    this.file = file;
    this.message = this.headline();
    const lines = text.split('\n');
    if (this.line >= 1) this.source = lines.slice(this.line - 1, Math.max(this.line, this.endLine));
    return this;
  }

  /** `file:line[:column]: detail`, also the Error's message */
  headline(): string {
    const where = this.column ? `${this.file}:${this.line}:${this.column}` : `${this.file}:${this.line}`;
    return `${where}: ${this.detail}`;
  }

  /** The error as a person should see it in a log: location, the lines, the message, the hint. */
  format(): string {
    const out = [this.headline()];
    if (this.source.length > 0) {
      const width = String(this.line + this.source.length - 1).length;
      out.push('--------------------');
      this.source.forEach((text, i) => {
        const n = String(this.line + i).padStart(width, ' ');
        out.push(` ${n} | >>> ${text.replace(/\r$/, '')}`);
      });
      out.push('--------------------');
    }
    if (this.hint) out.push(`hint: ${this.hint}`);
    return out.join('\n');
  }
}

export function isDockerfileError(e: unknown): e is DockerfileError {
  return e instanceof DockerfileError;
}
