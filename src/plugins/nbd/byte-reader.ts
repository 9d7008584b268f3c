/**
 * Exact-length reads from a stream: `await reader.read(n)` resolves with the next n bytes.
 * The NBD client reads fixed-size headers and known-length payloads, never "whatever came";
 * this queues the stream's chunks and hands them out in those sizes.
 */
import type { Duplex } from 'node:stream';

export class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiting:
    | { length: number; into?: { target: Uint8Array; at: number }; resolve: (b: Buffer) => void; reject: (e: Error) => void }
    | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.serve();
  };
  private readonly onEnd = (): void => this.fail(new Error('server closed the connection'));
  private readonly onError = (error: Error): void => this.fail(error);

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  /** The next `length` bytes; rejects if the stream ends or fails first. One read at a time. */
  read(length: number): Promise<Buffer> {
    if (this.waiting) throw new Error('ByteReader: concurrent reads');
    if (this.buffered >= length) return Promise.resolve(this.take(length));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { length, resolve, reject };
    });
  }

  /**
   * The next `length` bytes copied straight into target at `at`, sparing the copy into a
   * buffer of their own (read data goes from the socket's chunks to the client's buffer).
   */
  readInto(target: Uint8Array, at: number, length: number): Promise<void> {
    if (this.waiting) throw new Error('ByteReader: concurrent reads');
    if (this.buffered >= length) {
      this.copyOut(target, at, length);
      return Promise.resolve();
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { length, into: { target, at }, resolve: () => resolve(), reject };
    });
  }

  /**
   * Stop listening, so that the stream can be handed to something else (a TLS socket after
   * STARTTLS). Bytes already queued would be lost; NBD's STARTTLS leaves none.
   */
  detach(): void {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    this.stream.pause();
  }

  private take(length: number): Buffer {
    const first = this.chunks[0];
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      this.buffered -= length;
      return first.subarray(0, length);
    }
    const out = Buffer.allocUnsafe(length);
    this.copyOut(out, 0, length);
    return out;
  }

  private copyOut(target: Uint8Array, at: number, length: number): void {
    let done = 0;
    while (done < length) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, length - done);
      target.set(n === chunk.length ? chunk : chunk.subarray(0, n), at + done);
      done += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    this.buffered -= length;
  }

  private serve(): void {
    const w = this.waiting;
    if (w && this.buffered >= w.length) {
      this.waiting = undefined;
      if (w.into) {
        this.copyOut(w.into.target, w.into.at, w.length);
        w.resolve(Buffer.alloc(0));
      } else w.resolve(this.take(w.length));
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const w = this.waiting;
    if (w && this.buffered < w.length) {
      this.waiting = undefined;
      w.reject(error);
    }
  }
}
