/**
 * Pull-style reading from a connection: "give me exactly N bytes" or "throw N bytes away".
 *
 * Bytes are kept as the chunks the socket delivered, so a request that arrived in one chunk is
 * handed out as a view of it without copying. The source is paused while the buffered bytes
 * exceed what the current read needs plus a small allowance: a client can never make the server
 * hold more than one request's payload plus that allowance in memory.
 */
import type { Readable } from 'node:stream';

/** Bytes read ahead of the current need before the source is paused. */
const READ_AHEAD = 1024 * 1024;

export class ConnectionClosedError extends Error {
  constructor(message = 'connection closed by client') {
    super(message);
    this.name = 'ConnectionClosedError';
  }
}

export class InputReader {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed: advancing an index is cheaper than re-slicing. */
  private head = 0;
  private buffered = 0;
  private need = 0;
  private skipping = 0;
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: Error | undefined;
  private source: Readable | undefined;
  private readonly onData = (chunk: Buffer): void => this.push(chunk);
  private readonly onEnd = (): void => this.finish();
  private readonly onError = (error: Error): void => this.finish(error);

  constructor(source: Readable) {
    this.attach(source);
  }

  /** Read from a (new) source, e.g. the TLS socket after STARTTLS. */
  attach(source: Readable): void {
    this.source = source;
    source.on('data', this.onData);
    source.on('end', this.onEnd);
    source.on('close', this.onEnd);
    source.on('error', this.onError);
  }

  /** Stop reading from the current source, leaving buffered bytes in place. */
  detach(): void {
    const source = this.source;
    if (!source) return;
    source.off('data', this.onData);
    source.off('end', this.onEnd);
    source.off('close', this.onEnd);
    source.off('error', this.onError);
    source.pause();
    this.source = undefined;
  }

  /** Stop reading for good (server shutdown): pending and later reads see the end of input. */
  stop(): void {
    this.detach();
    this.finish();
  }

  /** Bytes received and not yet consumed (for STARTTLS: none may be pending). */
  get pending(): number {
    return this.buffered;
  }

  private push(chunk: Buffer): void {
    if (this.skipping > 0) {
      const dropped = Math.min(this.skipping, chunk.length);
      this.skipping -= dropped;
      if (dropped === chunk.length) {
        if (this.skipping === 0) this.signal();
        return;
      }
      chunk = chunk.subarray(dropped);
      this.signal();
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered > this.need + READ_AHEAD) this.source?.pause();
    if (this.buffered >= this.need) this.signal();
  }

  private finish(error?: Error): void {
    if (error && !this.failure) this.failure = error;
    this.ended = true;
    this.signal();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private waitForData(): Promise<void> {
    if (this.ended) {
      return Promise.reject(this.failure ?? new ConnectionClosedError());
    }
    this.source?.resume();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  /**
   * Exactly n bytes; a view into the received chunk when possible, else assembled into a
   * buffer from `alloc` (so that the caller can recycle it).
   */
  async read(n: number, alloc?: (n: number) => Buffer): Promise<Buffer> {
    while (this.buffered < n) {
      this.need = n;
      await this.waitForData();
    }
    this.need = 0;
    return this.take(n, alloc);
  }

  /** Like read() but returns undefined when the input is cleanly at its end before any byte. */
  async readOrEnd(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n) {
      if (this.ended && this.buffered === 0 && !this.failure) return undefined;
      this.need = n;
      await this.waitForData();
    }
    this.need = 0;
    return this.take(n);
  }

  /**
   * Exactly n bytes if they are already buffered, else undefined: lets the request loop go on
   * without a promise per request while the client keeps it fed.
   */
  takeNow(n: number, alloc?: (n: number) => Buffer): Buffer | undefined {
    return this.buffered >= n ? this.take(n, alloc) : undefined;
  }

  private take(n: number, alloc?: (n: number) => Buffer): Buffer {
    const first = this.chunks[0];
    const available = first.length - this.head;
    let out: Buffer;
    if (available >= n) {
      // A view: the common case of a request that arrived within one chunk.
      out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) this.dropFirst();
    } else {
      out = alloc ? alloc(n) : Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[0];
        const used = Math.min(chunk.length - this.head, n - filled);
        chunk.copy(out, filled, this.head, this.head + used);
        filled += used;
        this.head += used;
        if (this.head === chunk.length) this.dropFirst();
      }
    }
    this.buffered -= n;
    if (this.buffered <= READ_AHEAD && this.source?.isPaused()) this.source.resume();
    return out;
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.head = 0;
  }

  /** Discard n bytes without ever holding them all: for payloads the server refuses. */
  async skip(n: number): Promise<void> {
    let remaining = n;
    while (remaining > 0 && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const used = Math.min(chunk.length - this.head, remaining);
      this.head += used;
      if (this.head === chunk.length) this.dropFirst();
      this.buffered -= used;
      remaining -= used;
    }
    this.skipping = remaining;
    while (this.skipping > 0) {
      await this.waitForData();
    }
  }
}
