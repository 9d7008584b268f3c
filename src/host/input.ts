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

  /** Exactly n bytes; a view into the received chunk when possible. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n) {
      this.need = n;
      await this.waitForData();
    }
    this.need = 0;
    return this.take(n);
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

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length === n) {
      this.chunks.shift();
      out = first;
    } else if (first.length > n) {
      out = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[0];
        const used = Math.min(chunk.length, n - filled);
        chunk.copy(out, filled, 0, used);
        filled += used;
        if (used === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(used);
      }
    }
    this.buffered -= n;
    if (this.source?.isPaused() && this.buffered <= READ_AHEAD) this.source.resume();
    return out;
  }

  /** Discard n bytes without ever holding them all: for payloads the server refuses. */
  async skip(n: number): Promise<void> {
    let remaining = n;
    while (remaining > 0 && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const used = Math.min(chunk.length, remaining);
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
      this.buffered -= used;
      remaining -= used;
    }
    this.skipping = remaining;
    while (this.skipping > 0) {
      await this.waitForData();
    }
  }
}
