/**
 * The local end of the streaming plugin: a FIFO (created when the name does not exist), any
 * other openable file, or a Unix socket, seen as a plain sequential byte sink or source.
 * All I/O is asynchronous, so a slow reader or writer on the other side never stalls the
 * event loop. FIFOs are driven as non-blocking pipes by the event loop rather than with
 * blocking reads and writes in libuv's worker threads: a write stuck on a full FIFO must not
 * keep the server from shutting down.
 */
import { execFileSync } from 'node:child_process';
import { close, constants, fstat, open, read, write } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Socket, createConnection } from 'node:net';
import { promisify } from 'node:util';

// Plain descriptors rather than FileHandles: a FIFO's descriptor is handed to a net.Socket,
// which must be its only owner (a FileHandle would close it when collected).
const openFd = promisify(open);
const closeFd = promisify(close);
const fstatFd = promisify(fstat);
const readFd = promisify(read);
const writeFd = promisify(write);

export interface ByteSink {
  /** Write all of buf. */
  write(buf: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface ByteSource {
  /** Fill all of buf; throws at end of stream. */
  readFully(buf: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export class EndOfStream extends Error {
  constructor() {
    super('unexpected end of file reading from the pipe');
  }
}

/** A regular file or device: sequential writes at the current position. */
class FileSink implements ByteSink {
  constructor(private readonly fd: number) {}
  async write(buf: Uint8Array): Promise<void> {
    for (let done = 0; done < buf.length; ) {
      done += (await writeFd(this.fd, buf, done, buf.length - done, null)).bytesWritten;
    }
  }
  close(): Promise<void> {
    return closeFd(this.fd);
  }
}

class FileSource implements ByteSource {
  constructor(private readonly fd: number) {}
  async readFully(buf: Uint8Array): Promise<void> {
    for (let done = 0; done < buf.length; ) {
      const { bytesRead } = await readFd(this.fd, buf, done, buf.length - done, null);
      if (bytesRead === 0) throw new EndOfStream();
      done += bytesRead;
    }
  }
  close(): Promise<void> {
    return closeFd(this.fd);
  }
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

class SocketSink implements ByteSink {
  private failure: Error | undefined;
  constructor(private readonly socket: Socket) {
    socket.on('error', (err) => (this.failure = err));
  }
  write(buf: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    // Copy: the caller's buffer is only valid until this promise settles, but a socket may
    // still hold it in its queue after the callback for an earlier write.
    const copy = Buffer.from(buf);
    return new Promise((resolve, reject) => {
      this.socket.write(copy, (err) => (err ? reject(err) : resolve()));
    });
  }
  close(): Promise<void> {
    // Every write has completed (pwrite awaits it), so what is left sits in the kernel's
    // buffer for the reader; closing never waits for a reader that may be gone.
    this.socket.destroy();
    return Promise.resolve();
  }
}

/** How often a FIFO without a reader is tried again. */
const READER_POLL_MS = 20;

/**
 * The write end of a FIFO, opened (write-only) once a reader has it open. The server holds
 * no read end of its own: when the reader goes away, writes fail with EPIPE at once, where
 * a read end of the server's would have kept them waiting forever for room in the pipe.
 */
class FifoSink implements ByteSink {
  private sink: SocketSink | undefined;
  private closed = false;

  constructor(private readonly path: string) {}

  private async writer(): Promise<SocketSink> {
    while (this.sink === undefined) {
      if (this.closed) throw new Error('closed');
      try {
        const fd = await openFd(this.path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
        this.sink = new SocketSink(new Socket({ fd, readable: false, writable: true }));
      } catch (err) {
        // ENXIO: nobody has the FIFO open for reading yet.
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
        await new Promise((resolve) => setTimeout(resolve, READER_POLL_MS).unref());
      }
    }
    return this.sink;
  }

  async write(buf: Uint8Array): Promise<void> {
    const sink = await this.writer();
    try {
      await sink.write(buf);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
        throw new Error(`${this.path}: the reader closed the pipe (EPIPE)`);
      }
      throw err;
    }
  }

  close(): Promise<void> {
    this.closed = true;
    return this.sink?.close() ?? Promise.resolve();
  }
}

/** Pull-style reads over a socket, with back-pressure: at most HIGH_WATER bytes queued. */
class SocketSource implements ByteSource {
  private static readonly HIGH_WATER = 1 << 20;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.queued += chunk.length;
      if (this.queued >= SocketSource.HIGH_WATER) socket.pause();
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('error', (err) => {
      this.failure = err;
      this.notify();
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async readFully(buf: Uint8Array): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      if (this.queue.length === 0) {
        if (this.failure) throw this.failure;
        if (this.ended) throw new EndOfStream();
        this.socket.resume();
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const head = this.queue[0];
      const n = Math.min(head.length, buf.length - done);
      buf.set(head.subarray(0, n), done);
      done += n;
      this.queued -= n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    if (this.queued < SocketSource.HIGH_WATER) this.socket.resume();
  }

  close(): Promise<void> {
    this.socket.destroy();
    return Promise.resolve();
  }
}

type Mode = 'read' | 'write';

/** Open the named file for the mode; a missing name becomes a FIFO, as nbdkit does. */
async function openFile(path: string, mode: Mode): Promise<number> {
  // Read-only on a FIFO waits (in a worker thread) for a writer, as nbdkit does. (A FIFO to
  // write to is not opened here: see FifoSink.)
  const flags = (mode === 'write' ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NOCTTY;
  try {
    return await openFd(path, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await makeFifo(path);
  return openFd(path, flags);
}

async function makeFifo(path: string): Promise<void> {
  // Node has no mknod(2); mkfifo(1) makes the same FIFO (mode 0666 less the umask).
  try {
    execFileSync('mkfifo', ['--', path], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`mknod: ${path}: ${detail || (err as Error).message}`);
  }
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

/** A FIFO becomes a pipe driven by the event loop; anything else stays a plain descriptor. */
async function isFifo(fd: number): Promise<boolean> {
  return (await fstatFd(fd)).isFIFO();
}

export async function openSink(path: string): Promise<ByteSink> {
  if (await isSocket(path)) return new SocketSink(await connect(path));
  if (!(await exists(path))) await makeFifo(path);
  if ((await stat(path)).isFIFO()) return new FifoSink(path);
  return new FileSink(await openFile(path, 'write'));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function openSource(path: string): Promise<ByteSource> {
  if (await isSocket(path)) return new SocketSource(await connect(path));
  const fd = await openFile(path, 'read');
  if (await isFifo(fd)) return new SocketSource(new Socket({ fd, readable: true, writable: false }));
  return new FileSource(fd);
}
