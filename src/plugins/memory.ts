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
import { openMemoryFile } from './memory-file.js';
import type { RamDisk } from './ram-disk.js';
import { SparsePages } from './sparse-pages.js';

const createMemoryPlugin: PluginFactory = (host) => {
  let size: bigint | undefined;
  // Made once the size is known: a memory file when the addon can, else pages in JavaScript.
  let disk: RamDisk = new SparsePages();

  const plugin: Plugin = {
    name: 'memory',
    longname: 'nbdkit memory plugin',
    description: 'A sparse RAM disk, shared by all connections and lost when the server exits.',
    magic_config_key: 'size',
    config_help: 'size=<SIZE>  (required) Size of the backing disk',

    config(key, value) {
      if (key === 'size') size = host.parseSize(value);
      else if (key === 'allocator') {
        if (value !== 'sparse') throw new PluginError(`memory: allocator=${value} is not supported (only sparse)`);
      } else throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
    },
    config_complete() {
      if (size === undefined) throw new PluginError('you must specify size=<SIZE> on the command line', 'EINVAL');
      disk = openMemoryFile(size) ?? disk;
      // Views of pages in JavaScript spare a copy; a memory file's replies are sent from its mapping.
      if (disk.views) plugin.pread_view = (_h, count, offset) => disk.views!(count, offset);
    },
    dump_plugin: () => ['allocators=sparse'],
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
