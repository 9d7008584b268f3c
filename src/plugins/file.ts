/**
 * file: serve a host file (or block device), `nbdkit-ts file disk.img` or `file=disk.img`.
 *
 * Large reads and writes go through libuv's thread pool (fs.read/fs.write), so they overlap
 * with each other and with the socket (thread model parallel); small ones are done
 * synchronously, which costs less than the trip through the pool (see SYNC_IO_MAX). flush and FUA are
 * fdatasync. Trim, zero and extents use fallocate and SEEK_DATA/SEEK_HOLE (file-sparse.ts) where
 * the fs-native addon was built; without it the backend's defaults apply (no trim, zero by
 * writing zeroes, extents all data).
 */
import { close, fdatasync, fstat, open, read, realpathSync, write, writeSync } from 'node:fs';
import { constants } from 'node:fs';
import { promisify } from 'node:util';
import { describeFsError } from '../host/errno.js';
import { CacheMode, Flag, FuaMode, type Plugin, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { SparseFile, sparseSupported } from './file-sparse.js';
import { readFullySync } from './read-fully.js';

const fstatAsync = promisify(fstat);
const fdatasyncAsync = promisify(fdatasync);
const openAsync = promisify(open);
const closeAsync = promisify(close);

interface FileHandle {
  fd: number;
  /** False when the file could only be opened read-only. */
  writable: boolean;
  sparse: SparseFile;
}

/**
 * Requests up to this size use readSync/writeSync on the event loop. Handing a request to
 * libuv's thread pool costs more than a page-cache pread itself (two thread wake-ups, futexes):
 * 4 KiB reads with 64 in flight went from 4.3 s to 1.7 s (625k futex calls to 11k), 256 KiB
 * reads from 0.55 s to 0.48 s and 256 KiB writes from 0.64 s to 0.56 s (512 MiB, nbdcopy).
 * Larger requests stay on the pool so that one of them never stalls the loop for long.
 */
const SYNC_IO_MAX = 256 * 1024;

function readFully(fd: number, buf: Uint8Array, position: bigint): Promise<void> | void {
  if (buf.length <= SYNC_IO_MAX) return readFullySync(fd, buf, position);
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = (): void => {
      read(fd, buf, done, buf.length - done, position + BigInt(done), (error, n) => {
        if (error) return reject(error);
        if (n === 0) {
          // Past the end of the file (a file that shrank under us): NBD has no short reads.
          buf.fill(0, done);
          return resolve();
        }
        done += n;
        if (done < buf.length) step();
        else resolve();
      });
    };
    step();
  });
}

function writeFully(fd: number, buf: Uint8Array, position: bigint): Promise<void> | void {
  if (buf.length <= SYNC_IO_MAX && position + BigInt(buf.length) <= BigInt(Number.MAX_SAFE_INTEGER)) {
    let done = 0;
    while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, Number(position) + done);
    return;
  }
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = (): void => {
      write(fd, buf, done, buf.length - done, Number(position) + done, (error, n) => {
        if (error) return reject(error);
        done += n;
        if (done < buf.length) step();
        else resolve();
      });
    };
    if (position + BigInt(buf.length) > BigInt(Number.MAX_SAFE_INTEGER)) {
      reject(new PluginError('pwrite: offset beyond 2^53 is not supported by Node file I/O', 'EOVERFLOW'));
      return;
    }
    step();
  });
}

/** The callbacks that exist only when fallocate and SEEK_HOLE are reachable. */
const sparseCallbacks: Pick<Plugin, 'trim' | 'zero' | 'can_extents' | 'extents'> = {
  async trim(h, count, offset, flags) {
    const handle = h as FileHandle;
    handle.sparse.trim(count, offset);
    if (flags & Flag.FUA) await fdatasyncAsync(handle.fd);
  },
  async zero(h, count, offset, flags) {
    const handle = h as FileHandle;
    handle.sparse.zero(count, offset, flags);
    if (flags & Flag.FUA) await fdatasyncAsync(handle.fd);
  },
  can_extents: (h) => (h as FileHandle).sparse.canExtents(),
  extents: (h, count, offset, flags, sink) => (h as FileHandle).sparse.extents(count, offset, flags, sink),
};

/** realpath of file=, or the start-up error nbdkit gives for it. */
function resolveFile(value: string): string {
  try {
    return realpathSync(value);
  } catch (error) {
    throw new PluginError(`realpath: ${value}: ${describeFsError(error).text}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
  }
}

const createFilePlugin: PluginFactory = (host) => {
  let filename: string | undefined;

  const plugin: Plugin = {
    name: 'file',
    longname: 'nbdkit file plugin',
    description: 'Serves a local file or block device.',
    magic_config_key: 'file',
    config_help: 'file=<FILENAME>  (required) The filename to serve.',

    config(key, value) {
      // As nbdkit: the path is resolved now, so a missing file is a start-up error and a
      // relative one still names the same file once the server has detached.
      if (key === 'file') filename = resolveFile(value);
      else if (key === 'cache' || key === 'fadvise') host.debug(`file: ${key}=${value} ignored`);
      else throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
    },
    config_complete() {
      if (filename === undefined) throw new PluginError('you must supply either [file] or [dir] parameter after the plugin name on the command line', 'EINVAL');
    },
    thread_model: () => ThreadModel.PARALLEL,

    async open(readonly): Promise<FileHandle> {
      const flags = readonly ? constants.O_RDONLY : constants.O_RDWR;
      try {
        const fd = await openAsync(filename!, flags);
        return { fd, writable: !readonly, sparse: new SparseFile(fd) };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        // As nbdkit: a file that is not writable is served read-only rather than refused.
        if (readonly || (code !== 'EACCES' && code !== 'EROFS')) {
          throw new PluginError(`open: ${filename}: ${(error as Error).message}`, code);
        }
        const fd = await openAsync(filename!, constants.O_RDONLY);
        return { fd, writable: false, sparse: new SparseFile(fd) };
      }
    },
    async close(h) {
      await closeAsync((h as FileHandle).fd);
    },
    async get_size(h) {
      return (await fstatAsync((h as FileHandle).fd, { bigint: true })).size;
    },
    can_write: (h) => (h as FileHandle).writable,
    can_fua: () => FuaMode.NATIVE,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.EMULATE,

    pread: (h, buf, offset) => readFully((h as FileHandle).fd, buf, offset),
    pread_fills_buffer: true,
    read_source_fd: (h) => (h as FileHandle).fd,
    write_target_fd: (h) => ((h as FileHandle).writable ? (h as FileHandle).fd : undefined),
    async pwrite(h, buf, offset, flags) {
      const fd = (h as FileHandle).fd;
      await writeFully(fd, buf, offset);
      if (flags & Flag.FUA) await fdatasyncAsync(fd);
    },
    async flush(h) {
      await fdatasyncAsync((h as FileHandle).fd);
    },
  };
  if (sparseSupported) Object.assign(plugin, sparseCallbacks);
  return plugin;
};

export default createFilePlugin;
