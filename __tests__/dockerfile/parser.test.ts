// The parser beyond BuildKit's golden files: heredocs, directives, comments, line numbers and errors.
import { DockerfileError, dump, parse } from '../../src/dockerfile/index.js';

function parseError(text: string): DockerfileError {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof DockerfileError) return e;
    throw e;
  }
  throw new Error('expected a DockerfileError');
}

describe('heredocs', () => {
  test('RUN <<EOF reads the body up to the delimiter', () => {
    const { nodes } = parse('FROM busybox\nRUN <<EOF\necho hello\necho $HOME\nEOF\nCMD ["sh"]\n');
    expect(nodes[1].heredocs).toEqual([
      { name: 'EOF', fileDescriptor: 0, expand: true, chomp: false, content: 'echo hello\necho $HOME\n' },
    ]);
    expect([nodes[1].startLine, nodes[1].endLine]).toEqual([2, 5]);
    expect(nodes[2].startLine).toBe(6);
  });

  test('a quoted delimiter turns expansion off; <<- strips tabs from the terminator', () => {
    const { nodes } = parse('FROM x\nRUN <<-"EOT" bash\n\techo a\n\tEOT\n');
    expect(nodes[1].heredocs[0]).toMatchObject({ name: 'EOT', expand: false, chomp: true, content: '\techo a\n' });
    expect(nodes[1].args).toEqual(['<<-"EOT" bash']);
  });

  test('several heredocs in one COPY, read in order', () => {
    const { nodes } = parse("FROM x\nCOPY <<one.txt <<'two.txt' /dest/\n1\none.txt\n2\ntwo.txt\n");
    expect(nodes[1].heredocs.map((h) => [h.name, h.content, h.expand])).toEqual([
      ['one.txt', '1\n', true],
      ['two.txt', '2\n', false],
    ]);
    expect(dump(nodes)).toBe('(from "x")\n(copy "<<one.txt" "<<\'two.txt\'" "/dest/")\n');
  });

  test('a file descriptor prefix is recorded', () => {
    const { nodes } = parse('FROM x\nRUN 3<<EOF cat /dev/fd/3\nhi\nEOF\n');
    expect(nodes[1].heredocs[0].fileDescriptor).toBe(3);
  });

  test('exec form and other instructions do not open heredocs', () => {
    const { nodes } = parse('FROM x\nRUN ["cat", "<<EOF"]\nLABEL a=<<EOF\n');
    expect(nodes.map((n) => n.heredocs.length)).toEqual([0, 0, 0]);
  });

  test('ONBUILD RUN <<EOF attaches the body', () => {
    const { nodes } = parse('FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n');
    expect(nodes[1].heredocs[0].content).toBe('echo hi\n');
    expect(nodes[1].sub?.keyword).toBe('RUN');
  });

  test('an unterminated heredoc is an error naming the instruction', () => {
    const e = parseError('FROM x\nRUN <<EOF\necho hi\n');
    expect(e.detail).toBe('unterminated heredoc');
    expect([e.line, e.endLine]).toEqual([2, 3]);
    expect(e.hint).toContain('EOF');
  });
});

describe('parser directives', () => {
  test('escape=` makes the backtick the continuation character', () => {
    const { nodes, escapeToken, directives } = parse('# escape=`\nFROM x\nRUN a `\n  b\nRUN c \\\n');
    expect(escapeToken).toBe('`');
    expect(directives).toEqual([{ name: 'escape', value: '`', line: 1 }]);
    expect(nodes[1].args).toEqual(['a   b']);
    expect(nodes[2].args).toEqual(['c \\']);
  });

  test('syntax and check directives are recorded and not taken as comments', () => {
    const { nodes, directives } = parse(
      '# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended\n# the base\nFROM x\n',
    );
    expect(directives.map((d) => d.name)).toEqual(['syntax', 'check']);
    expect(nodes[0].comments).toEqual(['the base']);
  });

  test('a directive after a blank line or comment is an ordinary comment', () => {
    expect(parse('\n# escape=`\nFROM x\n').escapeToken).toBe('\\');
    expect(parse('# hello\n# escape=`\nFROM x\n').escapeToken).toBe('\\');
  });

  test('a repeated directive and a bad escape token are errors', () => {
    expect(parseError('# escape=`\n# escape=\\\nFROM x\n').detail).toBe('only one escape parser directive can be used');
    const e = parseError('# escape=x\nFROM x\n');
    expect(e.detail).toContain("invalid escape token 'x'");
    expect(e.line).toBe(1);
  });

  test('a byte order mark at the start is ignored', () => {
    expect(parse('\ufeff# escape=`\nFROM x\n').escapeToken).toBe('`');
  });
});

describe('lines and continuations', () => {
  test('comments and blank lines inside a continuation are skipped; an empty one is warned about', () => {
    const r = parse('FROM x\nRUN a \\\n# comment\n  b \\\n\n  c\n');
    expect(r.nodes[1].args).toEqual(['a   b   c']);
    expect([r.nodes[1].startLine, r.nodes[1].endLine]).toEqual([2, 6]);
    expect(r.warnings).toEqual([{ message: 'Empty continuation line found in: RUN a   b   c', line: 6 }]);
  });

  test('CRLF line endings parse like LF', () => {
    expect(dump(parse('FROM x\r\nRUN a \\\r\n b\r\n').nodes)).toBe('(from "x")\n(run "a  b")\n');
  });

  test('an escaped escape character does not continue the line', () => {
    expect(parse('FROM x\nRUN echo \\\\\nRUN b\n').nodes.length).toBe(3);
  });

  test('keywords are case-insensitive and keep their spelling', () => {
    const { nodes } = parse('from x\nRuN echo\n');
    expect(nodes.map((n) => n.keyword)).toEqual(['from', 'RuN']);
    expect(dump(nodes)).toBe('(from "x")\n(run "echo")\n');
  });

  test('a line longer than 64 KiB is rejected as BuildKit does', () => {
    expect(parseError(`FROM x\nRUN ${'a'.repeat(70000)}\n`).detail).toContain('greater than max allowed size');
  });
});

describe('errors', () => {
  test('carry the file, the lines and the source, and format for a log', () => {
    let err: DockerfileError | undefined;
    try {
      parse('FROM x\n\nENV PATH\n', { file: 'app/Dockerfile' });
    } catch (e) {
      err = e as DockerfileError;
    }
    expect(err).toBeInstanceOf(DockerfileError);
    expect(err!.message).toBe('app/Dockerfile:3: ENV must have two arguments');
    expect(err!.format()).toBe(
      [
        'app/Dockerfile:3: ENV must have two arguments',
        '--------------------',
        ' 3 | >>> ENV PATH',
        '--------------------',
        'hint: write ENV PATH=VALUE',
      ].join('\n'),
    );
  });

  test('JSON arrays must hold only strings', () => {
    expect(parseError('FROM x\nCMD ["a", 1]\n').detail).toContain('arrays must be comprised of strings only');
  });

  test('an empty file and a file of comments have no instructions', () => {
    expect(parseError('').detail).toBe('file with no instructions');
    expect(parseError('# a\n\n# b\n').detail).toBe('file with no instructions');
  });
});
