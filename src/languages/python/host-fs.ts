/**
 * The host's files, seen from inside pyodide at their real paths.
 *
 * pyodide's file system is an in-memory one with its own /lib (the standard library), /dev and
 * /proc. Every other top-level directory of the host is mounted at the same path, so that
 * `open("/var/tmp/disk.img")` and relative paths (after a chdir to the server's working
 * directory) reach the real files, and tracebacks can quote the script's source lines. So is
 * the host's /dev/shm (in place of pyodide's empty one): disk images are often kept there.
 */
import { fdatasyncSync, fsyncSync, readdirSync, realpathSync, statSync } from 'node:fs';
import type { PyodideAPI } from 'pyodide';

/** pyodide's own directories, which must stay as they are. */
const RESERVED = new Set(['dev', 'proc', 'sys', 'lib']);
/** Directories inside those that are the host's all the same. */
const HOST_SUBDIRECTORIES = ['/dev/shm'];

type FileSystem = PyodideAPI['FS'];

/** Remove a directory tree made only of empty directories (pyodide's default /home/...). */
function removeEmptyTree(fs: FileSystem, path: string): boolean {
  let entries: string[];
  try {
    entries = fs.readdir(path).filter((name) => name !== '.' && name !== '..');
  } catch {
    return true;
  }
  for (const name of entries) {
    const child = `${path}/${name}`;
    if (!fs.isDir(fs.stat(child, false).mode) || !removeEmptyTree(fs, child)) return false;
  }
  fs.rmdir(path);
  return true;
}

/** Mount the host's top-level directories and /dev/shm. Returns the ones that could not be (for debug output). */
export function mountHostDirectories(pyodide: PyodideAPI): string[] {
  const skipped: string[] = [];
  let names: string[];
  try {
    names = readdirSync('/');
  } catch {
    return ['/'];
  }
  const paths = names.filter((name) => !RESERVED.has(name)).map((name) => `/${name}`);
  for (const path of [...paths, ...HOST_SUBDIRECTORIES]) {
    try {
      // Top-level symlinks (/bin -> usr/bin) are mounted at their target: pyodide wants a real directory.
      const target = realpathSync(path);
      if (!statSync(target).isDirectory()) continue;
      if (!removeEmptyTree(pyodide.FS, path)) {
        skipped.push(path);
        continue;
      }
      pyodide.mountNodeFS(path, target);
    } catch {
      skipped.push(path);
    }
  }
  return skipped;
}

interface HostStream {
  nfd?: number;
}

/**
 * fsync/fdatasync of a pyodide descriptor on the host file behind it. pyodide's own fsync does
 * nothing on mounted files. Returns an errno name on failure, undefined otherwise.
 */
export function syncHostDescriptor(pyodide: PyodideAPI, fd: number, kind: string): string | undefined {
  let stream: HostStream | null;
  try {
    stream = pyodide.FS.getStream(fd) as unknown as HostStream | null;
  } catch {
    return 'EBADF';
  }
  if (!stream || stream.nfd === undefined) return undefined;
  try {
    if (kind === 'fdatasync') fdatasyncSync(stream.nfd);
    else fsyncSync(stream.nfd);
    return undefined;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : 'EIO';
  }
}

/**
 * Read from a pyodide descriptor straight into WASM memory (FS.read, which for a host file is
 * one readSync into the heap). Returns the byte count, or minus the errno pyodide's Python uses.
 */
export function readIntoHeap(pyodide: PyodideAPI, fd: number, heap: Uint8Array, address: number, length: number, position: number): number {
  try {
    const stream = pyodide.FS.getStream(fd);
    if (!stream) return -BAD_DESCRIPTOR;
    return pyodide.FS.read(stream, heap, address, length, position);
  } catch (error) {
    const errno = (error as { errno?: unknown }).errno;
    return typeof errno === 'number' ? -errno : -IO_ERROR;
  }
}

// pyodide's errno values (WASI numbering), as its os module raises them.
const BAD_DESCRIPTOR = 8;
const IO_ERROR = 29;
