// The text formats of nbdkit-sh-plugin(3): errno prefixes on stderr and the outputs of
// thread_model, can_fua/can_cache, list_exports, default_export, block_size and extents.
import { describe, expect, it } from 'vitest';
import { CacheMode, ExtentType, Flag, ThreadModel } from '../src/host/plugin.js';
import { parseSize } from '../src/host/size.js';
import {
  flagsString,
  parseBlockSize,
  parseDefaultExport,
  parseExports,
  parseExtents,
  parseThreadModel,
  parseTriState,
} from '../src/languages/sh/parse.js';
import { parseErrorText } from '../src/languages/sh/status.js';

describe('stderr errno prefix', () => {
  it('recognises the NBD errnos case-insensitively, as a whole word', () => {
    expect(parseErrorText('ENOSPC Out of space\n')).toEqual({ errno: 'ENOSPC', message: 'Out of space' });
    expect(parseErrorText('enospc\tlower case')).toEqual({ errno: 'ENOSPC', message: 'lower case' });
    expect(parseErrorText('EROFS\n')).toEqual({ errno: 'EROFS', message: '' });
    expect(parseErrorText('EOPNOTSUPP no').errno).toBe('EOPNOTSUPP');
    expect(parseErrorText('ENOTSUP no').errno).toBe('ENOTSUP');
    expect(parseErrorText('EINVALID value')).toEqual({ errno: 'EIO', message: 'EINVALID value' });
    expect(parseErrorText('ENOENT not an NBD errno')).toEqual({ errno: 'EIO', message: 'ENOENT not an NBD errno' });
  });

  it('keeps the first line for the message and the whole text for the debug log', () => {
    expect(parseErrorText('EPERM first\nsecond\n\n')).toEqual({ errno: 'EPERM', message: 'first', full: 'EPERM first\nsecond' });
  });
});

describe('method outputs', () => {
  it('thread models in both spellings, any case', () => {
    expect(parseThreadModel('parallel\n')).toBe(ThreadModel.PARALLEL);
    expect(parseThreadModel('SERIALIZE-REQUESTS')).toBe(ThreadModel.SERIALIZE_REQUESTS);
    expect(parseThreadModel('serialize_all_requests\n')).toBe(ThreadModel.SERIALIZE_ALL_REQUESTS);
    expect(parseThreadModel('serialize_connections')).toBe(ThreadModel.SERIALIZE_CONNECTIONS);
    expect(parseThreadModel('fast')).toBeUndefined();
  });

  it('none/emulate/native', () => {
    expect(parseTriState('Native\n')).toBe(CacheMode.NATIVE);
    expect(parseTriState('emulate')).toBe(CacheMode.EMULATE);
    expect(parseTriState('none\n')).toBe(CacheMode.NONE);
    expect(parseTriState('yes')).toBeUndefined();
  });

  it('export lists in the three forms, and the default export', () => {
    expect(parseExports('a\nb\n')).toEqual([{ name: 'a' }, { name: 'b' }]);
    expect(parseExports('NAMES\na\n')).toEqual([{ name: 'a' }]);
    expect(parseExports('INTERLEAVED\na\nA\nb\n')).toEqual([
      { name: 'a', description: 'A' },
      { name: 'b', description: '' },
    ]);
    expect(parseExports('NAMES+DESCRIPTIONS\na\nb\nc\nA\nB\n')).toEqual([
      { name: 'a', description: 'A' },
      { name: 'b', description: 'B' },
      { name: 'c', description: '' },
    ]);
    expect(parseExports('')).toEqual([]);
    expect(parseDefaultExport('INTERLEAVED\nfirst\ndesc\n')).toBe('first');
    expect(parseDefaultExport('only')).toBe('only');
    expect(parseDefaultExport('')).toBe('');
  });

  it('block sizes with size suffixes, within 32 bits', () => {
    expect(parseBlockSize('1 4k 32M\n', parseSize)).toEqual({ minimum: 1, preferred: 4096, maximum: 32 * 1024 * 1024 });
    expect(parseBlockSize('512 4096', parseSize)).toBeUndefined();
    expect(parseBlockSize('512 4096 8G', parseSize)).toBeUndefined();
    expect(parseBlockSize('512 x 4096', parseSize)).toBeUndefined();
  });

  it('extents with numeric, word and absent types', () => {
    expect(parseExtents('0 1M\n1M\t1M hole,zero\n2M 4096 3\n3M 1k zero\n', parseSize)).toEqual([
      { offset: 0n, length: 1048576n, type: ExtentType.DATA },
      { offset: 1048576n, length: 1048576n, type: ExtentType.HOLE | ExtentType.ZERO },
      { offset: 2097152n, length: 4096n, type: 3 },
      { offset: 3145728n, length: 1024n, type: ExtentType.ZERO },
    ]);
    expect(() => parseExtents('0\n', parseSize)).toThrow(/cannot parse 0/);
    expect(() => parseExtents('zero 1M\n', parseSize)).toThrow(/cannot parse/);
  });

  it('flags as comma-separated words in nbdkit order', () => {
    expect(flagsString(0)).toBe('');
    expect(flagsString(Flag.FUA)).toBe('fua');
    expect(flagsString(Flag.FAST_ZERO | Flag.MAY_TRIM | Flag.FUA)).toBe('fua,may_trim,fast');
    expect(flagsString(Flag.REQ_ONE)).toBe('req_one');
  });
});
