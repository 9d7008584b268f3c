/**
 * memory: a sparse RAM disk, `nbdkit-ts memory 64M` or `memory size=64M`. Contents live for
 * the life of the server and are shared by all connections, as with nbdkit's memory plugin.
 */
import {
  CacheMode,
  FuaMode,
  type Plugin,
  type PluginFactory,
  PluginError,
  ThreadModel,
} from '../host/plugin.js';
import { type AllocatorChoice, createRamDisk, parseAllocator } from './memory-allocator.js';
import type { RamDisk } from './ram-disk.js';
import { SparsePages } from './sparse-pages.js';
import { zstdAvailable } from './zstd.js';

const createMemoryPlugin: PluginFactory = (host) => {
  let size: bigint | undefined;
  let allocator: AllocatorChoice = { type: 'sparse', mlock: false };
  // Made once the size is known, by the allocator chosen (memory-allocator.ts).
  let disk: RamDisk = new SparsePages();

  const plugin: Plugin = {
    name: 'memory',
    longname: 'nbdkit memory plugin',
    description: 'A sparse RAM disk, shared by all connections and lost when the server exits.',
    magic_config_key: 'size',
    config_help: [
      'size=<SIZE>  (required) Size of the backing disk',
      'allocator=sparse|malloc[,mlock=true]|zstd  How the disk is kept in memory (default sparse)',
    ].join('\n'),

    config(key, value) {
      if (key === 'size') size = host.parseSize(value);
      else if (key === 'allocator') allocator = parseAllocator(value);
      else throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
    },
    config_complete() {
      if (size === undefined) throw new PluginError('you must specify size=<SIZE> on the command line', 'EINVAL');
      disk = createRamDisk(allocator, size);
      // Views of pages in JavaScript spare a copy; a memory file's replies are sent from its mapping.
      if (disk.views) plugin.pread_view = (_h, count, offset) => disk.views!(count, offset);
    },
    // As nbdkit's memory plugin: whether mlock and zstd can be used here.
    dump_plugin: () => ['mlock=yes', `zstd=${zstdAvailable() ? 'yes' : 'no'}`],
    thread_model: () => ThreadModel.PARALLEL,

    open: () => ({}),
    get_size: () => size!,
    can_fua: () => FuaMode.NATIVE,
    can_multi_conn: () => true,
    // Everything is in memory already: advertise cache and let it be a no-op.
    can_cache: () => CacheMode.NATIVE,
    can_fast_zero: () => true,

    pread: (_h, buf, offset) => disk.read(buf, offset),
    pread_fills_buffer: true,
    pwrite: (_h, buf, offset) => disk.write(buf, offset),
    zero: (_h, count, offset) => disk.zero(count, offset),
    trim: (_h, count, offset) => disk.zero(count, offset),
    flush: () => undefined,
    extents: (_h, count, offset, _flags, extents) => disk.extents(count, offset, extents),
    read_source_fd: () => disk.fd,
    write_target_fd: () => disk.fd,
  };
  return plugin;
};

export default createMemoryPlugin;
