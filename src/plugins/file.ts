/**
 * file: serve a host file (or block device), `nbdkit-ts file disk.img` or `file=disk.img`.
 *
 * Reads and writes go through libuv's thread pool (fs.read/fs.write), so slow storage never
 * blocks the event loop and requests overlap (thread model parallel). flush and FUA are
 * fdatasync. Node exposes neither fallocate nor SEEK_DATA/SEEK_HOLE, so trim is not offered,
 * zero is emulated by writing zeroes, and extents report all data: correct, if not sparse.
 */
import { close, fdatasync, fstat, open, read, write } from 'node:fs';
import { constants } from 'node:fs';
import { promisify } from 'node:util';
import { CacheMode, Flag, FuaMode, type Plugin, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';

const fstatAsync = promisify(fstat);
const fdatasyncAsync = promisify(fdatasync);
const openAsync = promisify(open);
const closeAsync = promisify(close);

interface FileHandle {
  fd: number;
  /** False when the file could only be opened read-only. */
  writable: boolean;
}

function readFully(fd: number, buf: Uint8Array, position: bigint): Promise<void> {
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

function writeFully(fd: number, buf: Uint8Array, position: bigint): Promise<void> {
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

const createFilePlugin: PluginFactory = (host) => {
  let filename: string | undefined;

  const plugin: Plugin = {
    name: 'file',
    longname: 'nbdkit file plugin',
    description: 'Serves a local file or block device.',
    magic_config_key: 'file',
    config_help: 'file=<FILENAME>  (required) The filename to serve.',

    config(key, value) {
      if (key === 'file') filename = value;
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
        return { fd: await openAsync(filename!, flags), writable: !readonly };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        // As nbdkit: a file that is not writable is served read-only rather than refused.
        if (readonly || (code !== 'EACCES' && code !== 'EROFS')) {
          throw new PluginError(`open: ${filename}: ${(error as Error).message}`, code);
        }
        return { fd: await openAsync(filename!, constants.O_RDONLY), writable: false };
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
    async pwrite(h, buf, offset, flags) {
      const fd = (h as FileHandle).fd;
      await writeFully(fd, buf, offset);
      if (flags & Flag.FUA) await fdatasyncAsync(fd);
    },
    async flush(h) {
      await fdatasyncAsync((h as FileHandle).fd);
    },
  };
  return plugin;
};

export default createFilePlugin;
