/**
 * full: `nbdkit-ts full 1G`, a disk that reads as zeroes and fails every write, zero and trim
 * with ENOSPC, like /dev/full (nbdkit-full-plugin(1)). For testing how clients handle a full disk.
 */
import { CacheMode, ExtentType, type PluginFactory, PluginError, ReportedPluginError, ThreadModel } from '../host/plugin.js';
import { unknownParameter } from './parse-number.js';

const createFullPlugin: PluginFactory = (host) => {
  let size: bigint | undefined;
  // nbdkit's full plugin fails with the errno alone and logs nothing: neither does this.
  const noSpace = (): never => {
    throw new ReportedPluginError('No space left on device', 'ENOSPC');
  };
  return {
    name: 'full',
    longname: 'nbdkit full plugin',
    description: 'A disk that reads as zeroes and fails every write with ENOSPC.',
    magic_config_key: 'size',
    config_help: 'size=<SIZE>  (required) Size of the backing disk',
    config(key, value) {
      if (key === 'size') size = host.parseSize(value);
      else throw unknownParameter(key);
    },
    config_complete() {
      if (size === undefined) throw new PluginError('size parameter is required', 'EINVAL');
    },
    thread_model: () => ThreadModel.PARALLEL,
    open: () => ({}),
    get_size: () => size!,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.NATIVE,
    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread: (_h, buf) => {
      buf.fill(0);
    },
    // No zero callback: as in nbdkit, zero is emulated by a write, which fails the same way.
    pwrite: noSpace,
    trim: noSpace,
    extents: (_h, _count, _offset, _flags, extents) => extents.add(0n, size!, ExtentType.HOLE | ExtentType.ZERO),
  };
};

export default createFullPlugin;
