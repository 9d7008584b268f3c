/**
 * split: `nbdkit-ts split file1 file2 ...` (or file=... repeated), several host files served
 * one after another as a single disk (nbdkit-split-plugin(1)). Each file's size is read when a
 * client connects; reads and writes cross from one file into the next, and extents come from
 * each file's holes (SEEK_DATA/SEEK_HOLE through the fs-native addon, as in the file plugin).
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, writeSync } from 'node:fs';
import { describeFsError } from '../host/errno.js';
import { CacheMode, ExtentType, Flag, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { SparseFile } from './file-sparse.js';
import { unknownParameter } from './parse-number.js';

interface Part {
  name: string;
  fd: number;
  /** Where the file starts on the disk. */
  offset: bigint;
  size: bigint;
  sparse: SparseFile;
  canExtents: boolean;
}

interface SplitHandle {
  /** Every file opened, to close. */
  all: Part[];
  /** The files that take room on the disk (not the empty ones), in order. */
  parts: Part[];
  size: bigint;
}

function fsError(what: string, error: unknown): PluginError {
  return new PluginError(`${what}: ${describeFsError(error).text}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
}

/** The part holding byte `offset` (binary search: there may be many files). */
function partAt(parts: Part[], offset: bigint): Part {
  let low = 0;
  let high = parts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (parts[middle].offset <= offset) low = middle;
    else high = middle - 1;
  }
  return parts[low];
}

/** Walk [offset, offset+count) file by file: visit(part, offset in the file, length, offset in buf). */
function eachPart(
  handle: SplitHandle,
  count: number,
  offset: bigint,
  visit: (part: Part, fileOffset: bigint, length: number, done: number) => void,
): void {
  let done = 0;
  while (done < count) {
    const position = offset + BigInt(done);
    const part = partAt(handle.parts, position);
    const fileOffset = position - part.offset;
    const length = Math.min(count - done, Number(part.size - fileOffset));
    visit(part, fileOffset, length, done);
    done += length;
  }
}

const createSplitPlugin: PluginFactory = (host) => {
  const files: string[] = [];
  return {
    name: 'split',
    longname: 'nbdkit split plugin',
    description: 'Several host files served one after another as a single disk.',
    magic_config_key: 'file',
    config_help: 'file=<FILENAME>  (required) File(s) to serve.',
    config(key, value) {
      if (key !== 'file') throw unknownParameter(key);
      try {
        files.push(realpathSync(value));
      } catch (error) {
        throw fsError(`realpath: ${value}`, error);
      }
    },
    // As nbdkit: requests are serialised per connection.
    thread_model: () => ThreadModel.SERIALIZE_REQUESTS,

    open(readonly): SplitHandle {
      const parts: Part[] = [];
      const closeAll = (): void => parts.forEach((part) => closeSync(part.fd));
      let offset = 0n;
      for (const name of files) {
        let fd: number;
        try {
          fd = openSync(name, readonly ? constants.O_RDONLY : constants.O_RDWR);
        } catch (error) {
          closeAll();
          throw fsError(`open: ${name}`, error);
        }
        const size = fstatSync(fd, { bigint: true }).size;
        const sparse = new SparseFile(fd);
        parts.push({ name, fd, offset, size, sparse, canExtents: sparse.canExtents() });
        host.debug(`file[${parts.length - 1}]=${name}: offset=${offset}, size=${size}`);
        offset += size;
      }
      host.debug(`total size=${offset}`);
      return { all: parts, parts: parts.filter((part) => part.size > 0n), size: offset };
    },
    close(h) {
      for (const part of (h as SplitHandle).all) closeSync(part.fd);
    },
    get_size: (h) => (h as SplitHandle).size,
    can_cache: () => CacheMode.NATIVE,

    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread(h, buf, offset) {
      eachPart(h as SplitHandle, buf.length, offset, (part, fileOffset, length, done) => {
        let got = 0;
        while (got < length) {
          let n: number;
          try {
            n = readSync(part.fd, buf, done + got, length - got, fileOffset + BigInt(got));
          } catch (error) {
            throw fsError('pread', error);
          }
          if (n === 0) throw new PluginError('pread: unexpected end of file', 'EIO');
          got += n;
        }
      });
    },
    pwrite(h, buf, offset) {
      eachPart(h as SplitHandle, buf.length, offset, (part, fileOffset, length, done) => {
        let put = 0;
        while (put < length) {
          try {
            put += writeSync(part.fd, buf, done + put, length - put, Number(fileOffset) + put);
          } catch (error) {
            throw fsError('pwrite', error);
          }
        }
      });
    },
    // nbdkit asks the kernel to read ahead (posix_fadvise), which Node cannot: caching is a no-op.
    cache: () => undefined,
    extents(h, count, offset, flags, extents) {
      const reqOne = (flags & Flag.REQ_ONE) !== 0;
      let first = true;
      eachPart(h as SplitHandle, count, offset, (part, fileOffset, length) => {
        if (reqOne && !first) return;
        first = false;
        if (!part.canExtents) {
          extents.add(part.offset + fileOffset, BigInt(length), ExtentType.DATA);
          return;
        }
        // The file's own extents, moved to where the file sits on the disk.
        part.sparse.extents(length, fileOffset, flags, {
          add: (at, size, type) => extents.add(part.offset + at, size, type),
        });
      });
    },
  };
};

export default createSplitPlugin;
