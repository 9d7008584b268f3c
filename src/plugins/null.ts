/** null: a disk that reads as zeroes and discards writes, `nbdkit-ts null 1G` (default size 0). */
import { CacheMode, ExtentType, FuaMode, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';

const createNullPlugin: PluginFactory = (host) => {
  let size = 0n;
  return {
    name: 'null',
    longname: 'nbdkit null plugin',
    description: 'A disk that reads as zeroes and discards every write.',
    magic_config_key: 'size',
    config_help: 'size=<SIZE>  Size of the disk (default 0)',
    config(key, value) {
      if (key === 'size') size = host.parseSize(value);
      else throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
    },
    thread_model: () => ThreadModel.PARALLEL,
    open: () => ({}),
    get_size: () => size,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.NATIVE,
    can_fua: () => FuaMode.NATIVE,
    can_fast_zero: () => true,
    pread: (_h, buf) => {
      buf.fill(0);
    },
    pread_fills_buffer: true,
    pwrite: () => undefined,
    zero: () => undefined,
    trim: () => undefined,
    flush: () => undefined,
    extents: (_h, count, offset, _flags, extents) => extents.add(offset, BigInt(count), ExtentType.HOLE | ExtentType.ZERO),
  };
};

export default createNullPlugin;
