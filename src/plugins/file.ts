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
import {
  close,
  fdatasync,
  fstat,
  fstatSync,
  open,
  type Dirent,
  opendirSync,
  read,
  readFileSync,
  realpathSync,
  type Stats,
  statSync,
  write,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:fs';
import { promisify } from 'node:util';
import { describeFsError } from '../host/errno.js';
import { fsNative } from '../host/fs-native.js';
import {
  CacheMode,
  type ExportInfo,
  Flag,
  FuaMode,
  type Plugin,
  type PluginFactory,
  PluginError,
  type PluginHost,
  ThreadModel,
} from '../host/plugin.js';
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
  /** False for fd=: the descriptor is not the connection's to close. */
  owned: boolean;
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

/** Drop a range from the page cache (cache=none); a hint whose failure is ignored. */
function dropPages(fd: number, offset: bigint, length: number): void {
  try {
    fsNative!.fadvise(fd, offset, BigInt(length), POSIX_FADV_DONTNEED);
  } catch {
    // only a hint
  }
}

/**
 * cache=none for writes, as nbdkit does it: each write starts being written out at once, and
 * the write 8 writes before it is waited for and dropped from the page cache, so that writing
 * never waits for the disk unless it falls that far behind.
 */
class WriteEvictor {
  private readonly window: Array<{ fd: number; offset: bigint; length: number }> = [];

  written(fd: number, offset: bigint, length: number): void {
    const native = fsNative!;
    try {
      if (this.window.length === EVICT_WINDOW) {
        const oldest = this.window.shift()!;
        native.syncFileRange(oldest.fd, oldest.offset, BigInt(oldest.length), SYNC_WAIT_BEFORE | SYNC_WRITE | SYNC_WAIT_AFTER);
        native.fadvise(oldest.fd, oldest.offset, BigInt(oldest.length), POSIX_FADV_DONTNEED);
      }
      native.syncFileRange(fd, offset, BigInt(length), SYNC_WRITE);
    } catch {
      // only a hint: the data is written either way
    }
    this.window.push({ fd, offset, length });
  }

  /** A closing descriptor's writes can no longer be dropped. */
  forget(fd: number): void {
    for (let i = this.window.length - 1; i >= 0; i--) if (this.window[i].fd === fd) this.window.splice(i, 1);
  }
}

const EVICT_WINDOW = 8;
const SYNC_WAIT_BEFORE = 1;
const SYNC_WRITE = 2;
const SYNC_WAIT_AFTER = 4;

/** config_complete's checks of what file=, dir=, fd= or dirfd= names. */
function checkSource(source: Source): void {
  const describe = (fd: number): Stats | undefined => {
    try {
      return fstatSync(fd);
    } catch {
      return undefined;
    }
  };
  switch (source.mode) {
    case 'file': {
      let stat: Stats | undefined;
      try {
        stat = statSync(source.path);
      } catch {
        stat = undefined;
      }
      if (stat?.isDirectory()) throw new PluginError(`use dir= to serve files within ${source.path}`, 'EINVAL');
      if (!stat || !(stat.isFile() || stat.isBlockDevice())) {
        throw new PluginError(`file is not regular or block device: ${source.path}`, 'EINVAL');
      }
      return;
    }
    case 'dir': {
      let isDirectory = false;
      try {
        isDirectory = statSync(source.path).isDirectory();
      } catch {
        // reported below
      }
      if (!isDirectory) throw new PluginError(`expecting a directory: ${source.path}`, 'EINVAL');
      return;
    }
    case 'fd': {
      const stat = describe(source.fd);
      if (!stat || !(stat.isFile() || stat.isBlockDevice())) {
        throw new PluginError(`fd is not regular or block device: ${source.fd}`, 'EINVAL');
      }
      return;
    }
    case 'dirfd': {
      if (!describe(source.fd)?.isDirectory()) throw new PluginError(`dirfd is not a directory: ${source.fd}`, 'EINVAL');
      return;
    }
  }
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

/** realpath of file= or dir=, or the start-up error nbdkit gives for it. */
function resolvePath(value: string): string {
  try {
    return realpathSync(value);
  } catch (error) {
    throw new PluginError(`realpath: ${value}: ${describeFsError(error).text}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
  }
}

/** What the plugin serves: one file (by name or descriptor), or the files of a directory. */
type Source =
  | { mode: 'file'; path: string }
  | { mode: 'dir'; path: string }
  | { mode: 'fd'; fd: number }
  | { mode: 'dirfd'; fd: number };

/** fd= / dirfd=: an inherited descriptor, never stdin, stdout or stderr. */
function parseDescriptor(key: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new PluginError(`${key}: could not parse number: "${value}"`, 'EINVAL');
  const fd = Number(value.trim());
  if (fd <= 2) throw new PluginError(`${key} must be > 2`, 'EINVAL');
  return fd;
}

/** The access mode of an open descriptor (O_RDONLY, O_WRONLY or O_RDWR), from /proc: Node has no fcntl. */
function accessModeOf(fd: number): number {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return flags ? parseInt(flags[1], 8) & 3 : constants.O_RDWR;
}

/** The directory a dir= or dirfd= source names, as a path (a descriptor's through /proc). */
function directoryOf(source: Source): string {
  if (source.mode === 'dir') return source.path;
  if (source.mode === 'dirfd') return `/proc/self/fd/${source.fd}`;
  throw new Error('not a directory source');
}

/** The regular files and block devices directly in a directory (symbolic links followed). */
function listDirectory(dir: string): ExportInfo[] {
  const exports: ExportInfo[] = [];
  // In readdir's own order, as nbdkit lists them (readdirSync would sort them by name).
  const handle = opendirSync(dir);
  const entries: Dirent[] = [];
  try {
    for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) entries.push(entry);
  } finally {
    handle.closeSync();
  }
  for (const entry of entries) {
    let wanted = entry.isFile() || entry.isBlockDevice();
    // A symbolic link, or an entry whose type the file system does not say: look at the file.
    const unknownType = ![entry.isDirectory(), entry.isCharacterDevice(), entry.isFIFO(), entry.isSocket()].some(Boolean);
    if (!wanted && (entry.isSymbolicLink() || unknownType)) {
      try {
        const target = statSync(join(dir, entry.name));
        wanted = target.isFile() || target.isBlockDevice();
      } catch {
        // a dangling link: not served
      }
    }
    if (wanted) exports.push({ name: entry.name });
  }
  return exports;
}

/** POSIX_FADV_* (Linux) by fadvise= word. */
const FADVISE: Readonly<Record<string, number>> = { normal: 0, random: 1, sequential: 2 };
const POSIX_FADV_DONTNEED = 4;

/** Open `path` read-write, or read-only when that is all the file allows (as nbdkit). */
async function openFile(path: string, readonly: boolean, host: PluginHost): Promise<{ fd: number; writable: boolean }> {
  try {
    return { fd: await openAsync(path, readonly ? constants.O_RDONLY : constants.O_RDWR), writable: !readonly };
  } catch (error) {
    if (readonly) throw new PluginError(`${path}: ${describeFsError(error).text}`, errnoOf(error));
    host.debug(`open O_RDWR failed, falling back to read-only: ${path}: ${describeFsError(error).text}`);
  }
  try {
    return { fd: await openAsync(path, constants.O_RDONLY), writable: false };
  } catch (error) {
    throw new PluginError(`${path}: ${describeFsError(error).text}`, errnoOf(error));
  }
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'EIO';
}

const createFilePlugin: PluginFactory = (host) => {
  let source: Source | undefined;
  let fadvise = FADVISE.normal;
  let cacheNone = false;
  // cache=none: the last writes, written out and dropped from the page cache a few writes later.
  const evictor = new WriteEvictor();

  const setSource = (next: Source): void => {
    // Repeating a parameter replaces it, as nbdkit 1.32 does; mixing two kinds is a mistake.
    if (source && source.mode !== next.mode) {
      throw new PluginError('file=, dir=, fd= and dirfd= cannot be used at the same time', 'EINVAL');
    }
    source = next;
  };

  const plugin: Plugin = {
    name: 'file',
    longname: 'nbdkit file plugin',
    description: 'Serves a local file, or the files of a directory as exports.',
    magic_config_key: 'file',
    config_help: [
      '[file=]<FILENAME>        The filename to serve.',
      'fd=<FILE_DESCRIPTOR>     Serve the file open on this descriptor.',
      'dir=<DIRNAME>            A directory containing files to serve.',
      'dirfd=<FILE_DESCRIPTOR>  Serve the directory open on this descriptor.',
      'cache=<MODE>             Set use of caching (default, none).',
      'fadvise=<LEVEL>          Set fadvise hint (normal, random, sequential).',
    ].join('\n'),

    config(key, value) {
      // As nbdkit: paths are resolved now, so a missing file is a start-up error and a
      // relative one still names the same file once the server has detached.
      switch (key) {
        case 'file':
          return setSource({ mode: 'file', path: resolvePath(value) });
        case 'dir':
        case 'directory':
          return setSource({ mode: 'dir', path: resolvePath(value) });
        case 'fd':
          return setSource({ mode: 'fd', fd: parseDescriptor(key, value) });
        case 'dirfd':
          return setSource({ mode: 'dirfd', fd: parseDescriptor(key, value) });
        case 'fadvise':
          if (!(value in FADVISE)) throw new PluginError(`unknown fadvise mode: ${value}`, 'EINVAL');
          fadvise = FADVISE[value];
          return;
        case 'cache':
          if (value !== 'default' && value !== 'none') throw new PluginError(`unknown cache mode: ${value}`, 'EINVAL');
          cacheNone = value === 'none';
          return;
        case 'rdelay':
        case 'wdelay':
          throw new PluginError(`${key} is nbdkit's delay filter's now, and nbdkit-ts has no filters`, 'EINVAL');
        default:
          throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
      }
    },
    config_complete() {
      if (source === undefined) {
        throw new PluginError(
          'you must supply [file=]<FILENAME>, dir=<DIRNAME>, fd=<FD> or dirfd=<FD> parameter after the plugin name on the command line',
          'EINVAL',
        );
      }
      checkSource(source);
      // The fast paths read and write the file behind the plugin's back: not when every
      // read and write must also drop its pages from the cache.
      if (cacheNone) {
        if (fsNative === null) host.debug('file: cache=none needs the fs-native addon: ignored');
        else {
          delete plugin.read_source_fd;
          delete plugin.write_target_fd;
        }
      }
    },
    thread_model: () => ThreadModel.PARALLEL,
    dump_plugin: () =>
      sparseSupported ? ['file_falloc_fl_punch_hole=yes', 'file_falloc_fl_zero_range=yes'] : [],

    list_exports() {
      if (source!.mode === 'file' || source!.mode === 'fd') return [{ name: '' }];
      try {
        return listDirectory(directoryOf(source!));
      } catch (error) {
        throw new PluginError(`opendir: ${describeFsError(error).text}`, errnoOf(error));
      }
    },

    async open(readonly, connection): Promise<FileHandle> {
      const s = source!;
      let opened: { fd: number; writable: boolean; owned: boolean };
      if (s.mode === 'fd') {
        // The descriptor is shared by every connection (Node cannot dup it) and never closed.
        const access = accessModeOf(s.fd);
        opened = { fd: s.fd, writable: !readonly && access !== constants.O_RDONLY, owned: false };
      } else {
        let path = s.mode === 'file' ? s.path : undefined;
        if (path === undefined) {
          const name = connection.exportName;
          if (name.includes('/')) throw new PluginError('exportname cannot contain /', 'EINVAL');
          // As nbdkit: the default export names no file of the directory.
          if (name === '') throw new PluginError(': No such file or directory', 'ENOENT');
          path = join(directoryOf(s), name);
        }
        opened = { ...(await openFile(path, readonly, host)), owned: true };
        const stat = await fstatAsync(opened.fd);
        if (!stat.isFile() && !stat.isBlockDevice()) {
          await closeAsync(opened.fd);
          throw new PluginError(`file is not regular or block device: ${path}`, 'EINVAL');
        }
      }
      if (fsNative !== null && fadvise !== FADVISE.normal) {
        // A hint: failures are ignored, as nbdkit ignores them.
        try {
          fsNative.fadvise(opened.fd, 0n, 0n, fadvise);
        } catch (error) {
          host.debug(`posix_fadvise: ${(error as Error).message} (ignored)`);
        }
      }
      return { fd: opened.fd, writable: opened.writable, owned: opened.owned, sparse: new SparseFile(opened.fd) };
    },
    async close(h) {
      const handle = h as FileHandle;
      evictor.forget(handle.fd);
      if (handle.owned) await closeAsync(handle.fd);
    },
    async get_size(h) {
      return (await fstatAsync((h as FileHandle).fd, { bigint: true })).size;
    },
    can_write: (h) => (h as FileHandle).writable,
    can_fua: () => FuaMode.NATIVE,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.EMULATE,

    pread(h, buf, offset) {
      const fd = (h as FileHandle).fd;
      if (!cacheNone || fsNative === null) return readFully(fd, buf, offset);
      // cache=none: drop the pages just read from the page cache.
      return Promise.resolve(readFully(fd, buf, offset)).then(() => dropPages(fd, offset, buf.length));
    },
    pread_fills_buffer: true,
    read_source_fd: (h) => (h as FileHandle).fd,
    write_target_fd: (h) => ((h as FileHandle).writable ? (h as FileHandle).fd : undefined),
    async pwrite(h, buf, offset, flags) {
      const fd = (h as FileHandle).fd;
      await writeFully(fd, buf, offset);
      if (flags & Flag.FUA) await fdatasyncAsync(fd);
      if (cacheNone && fsNative !== null) evictor.written(fd, offset, buf.length);
    },
    async flush(h) {
      await fdatasyncAsync((h as FileHandle).fd);
    },
  };
  if (sparseSupported) Object.assign(plugin, sparseCallbacks);
  return plugin;
};

export default createFilePlugin;
