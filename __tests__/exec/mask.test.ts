// Secret masking of RUN output: whole values, each line of a multi-line value, nothing too short to matter.
import { SecretMask } from '../../src/exec/mask.js';

describe('SecretMask', () => {
  test('masks every occurrence, whole values before their lines, and leaves short values alone', () => {
    const m = new SecretMask();
    m.add(Buffer.from('hunter2-very-secret\n'));
    m.add('-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----\n');
    m.add('ab');
    expect(m.apply('token=hunter2-very-secret and again hunter2-very-secret')).toBe('token=*** and again ***');
    expect(m.apply('line: AAAABBBBCCCC')).toBe('line: ***');
    expect(m.apply('-----BEGIN KEY-----')).toBe('***');
    expect(m.apply('ab stays, abc too')).toBe('ab stays, abc too');
  });
});
