/**
 * Pull-style reading from a connection: "give me exactly N bytes" or "throw N bytes away".
 *
 * Bytes are kept as the chunks the socket delivered, so a request that arrived in one chunk is
 * handed out as a view of it without copying. The source is paused while the buffered bytes
 * exceed what the current read needs plus a small allowance: a client can never make the server
 * hold more than one request's payload plus that allowance in memory.
 *
 * Two kinds of source feed it. A stream (stdin, a TLS socket) delivers chunks of its own
 * choosing through 'data' events. A plain socket taken over by direct-socket.ts instead reads
 * into memory the reader chooses: a large payload that has not fully arrived is read straight
 * into its destination buffer, so a 256 KiB write costs one or two socket reads and almost no
 * copying instead of four 64 KiB chunks assembled by hand; everything else lands in one of two
 * 64 KiB arenas that are used again and again, so reading allocates nothing. For that, what is
 * handed out from an arena is always a copy (a request header, a small payload), never a view:
 * an arena is reused as soon as no buffered bytes are left in it.
 */
import type { Readable } from 'node:stream';
import { type NativeSocket, type RequestReaderHandle, nativeSocket } from './fs-native.js';
import { logDebug } from './log.js';

/** Bytes read ahead of the current need before the source is paused. */
const READ_AHEAD = 1024 * 1024;
/** Size of each arena that direct reads of headers and small payloads land in. */
const ARENA_BYTES = 64 * 1024;
/** A new arena is started when the current one has less room than this for the next read. */
const ARENA_MIN_READ = 16 * 1024;
/** Payloads at least this large are read straight into their destination when possible. */
const DIRECT_PAYLOAD_MIN = 16 * 1024;
/** A request header's size. */
const HEADER_BYTES = 28;
/** Lent to a request thread, per connection: buffers for payloads up to this size, this much in all. */
const LEND_PAYLOAD_MAX = 4 * 1024 * 1024;
const LEND_BYTES = 2 * 1024 * 1024;

/**
 * A host file that writes to an export may go to straight from the thread receiving requests:
 * what the thread may write without the plugin (see Plugin.write_target_fd).
 */
export interface WriteTarget {
  fd: number;
  /** The export's size: a write past it is the event loop's to refuse. */
  size: bigint;
  /** Whether FUA may be done as an fdatasync of the file. */
  fua: boolean;
  maxLength: number;
}

/**
 * A write target as the request thread is given it: whether it may also send reads from it (the
 * event loop would send them from that same file), and whether replies are structured.
 */
export interface ThreadTarget extends WriteTarget {
  reads: boolean;
  structured: boolean;
}

/** Writes the request thread did itself: each one's header, and its errno and message if it failed. */
export type WrittenByThread = (header: Buffer, errorCode: string | undefined, message: string | undefined) => void;

/** The slot numbers with which the thread tells of writes it did itself: one (failed, with its error), or a list. */
const SLOT_WRITTEN = -2;
const SLOT_WRITTEN_LIST = -3;
/** The slot number with which the thread tells that the socket's output a claim was refused is free. */
const SLOT_OUTPUT_FREE = -4;

/**
 * What the request thread needs when it writes to a target itself: whom to tell of the writes
 * it could not reply to itself, and that the socket's output (claimOutput) is free again.
 */
export interface ThreadWrites {
  target: ThreadTarget;
  done: WrittenByThread;
  outputFree: () => void;
}

/** The addon's thread receiving a connection's requests, and the buffers lent to it. */
interface RequestThread {
  socket: NativeSocket;
  handle: RequestReaderHandle;
  /** By slot number. */
  lent: Buffer[];
  slotOf: Map<ArrayBufferLike, number>;
  lentBytes: number;
  writes: ThreadWrites | undefined;
}

/**
 * Where payloads that must be assembled get their buffers (so that the caller can recycle them).
 * An object with a method rather than a function made per connection, for the reason given in
 * serialize.ts.
 */
export interface PayloadBuffers {
  take(size: number): Buffer;
}

/**
 * How long receiveInline() and read() may wait on the socket itself, on the event loop's
 * thread: polling it without sleeping for up to `spinMicros`, then sleeping in recv for up to
 * `timeoutMicros`. Transmission says when this pays.
 */
export interface InlineWait {
  spinMicros: number;
  timeoutMicros: number;
  /** For a payload read in several waits: no new wait after this performance.now(). */
  untilMs?: number;
}

/** Bytes read into `into` within `wait`, 0 if none came. */
function receiveWithin(socket: NativeSocket, into: Uint8Array, wait: InlineWait): number {
  return socket.native.receiveWithin(socket.fd, into, wait.spinMicros, wait.timeoutMicros);
}

/** What a socket with direct reads needs from its reader: where to read next, and what came. */
export interface DirectReadSink {
  /** The memory the next socket read may fill (called by Node before every read). */
  nextReadBuffer(): Uint8Array;
  /** `n` bytes were read into the buffer last returned by nextReadBuffer(). False: pause. */
  received(n: number): boolean;
}

export class ConnectionClosedError extends Error {
  constructor(message = 'connection closed by client') {
    super(message);
    this.name = 'ConnectionClosedError';
  }
}

export class InputReader implements DirectReadSink {
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
  /** True when the source reads into buffers from nextReadBuffer() instead of emitting 'data'. */
  private direct = false;
  private paused = false;
  /** See holdThread(). */
  private held = false;
  /** Whether the request thread was last told to pause (it is while paused or held). */
  private threadPaused = false;
  private arena: Buffer = Buffer.allocUnsafeSlow(0);
  private arenaUsed = 0;
  /** The arena used before the current one, taken again once nothing buffered is in it. */
  private spareArena: Buffer | undefined;
  /** Whether the read in progress fills the payload target (else the arena). */
  private readingTarget = false;
  /** A payload being filled by direct reads, and how much of it has arrived. */
  private target: Buffer | undefined;
  private targetFilled = 0;
  /** The socket and the addon that reads it inline (receiveInline); only for direct reads. */
  private inlineSocket: NativeSocket | undefined;
  /**
   * Where receiveInline() reads: memory of its own, because Node may have armed a read with
   * the current arena, and used only while nothing buffered is in it.
   */
  private inlineBuffer: Buffer | undefined;
  /** The addon's thread receiving whole requests, once receiveOnThread() started it. */
  private thread: RequestThread | undefined;
  private readonly onData = (chunk: Buffer): void => this.push(chunk);
  private readonly onEnd = (): void => this.finish();
  private readonly onError = (error: Error): void => this.finish(error);

  /** Without a source, the reader waits for attach() or attachDirect(). */
  constructor(source?: Readable) {
    if (source) this.attach(source);
  }

  /** Read from a (new) source, e.g. the TLS socket after STARTTLS. */
  attach(source: Readable): void {
    this.source = source;
    this.direct = false;
    source.on('data', this.onData);
    this.watchEnd(source);
  }

  /**
   * Read from a socket whose reads go to this reader's buffers (see direct-socket.ts): it
   * emits no 'data', only its end and errors.
   */
  attachDirect(source: Readable, socketFd?: number): void {
    this.source = source;
    this.direct = true;
    this.inlineSocket = nativeSocket(socketFd);
    this.watchEnd(source);
  }

  /**
   * Wait for input on the socket itself, on this thread, and buffer what came: see InlineWait.
   * False when nothing came (or it cannot be done: not a direct socket, or bytes are still
   * buffered); the event loop's own read then sees whatever comes next.
   */
  receiveInline(wait: InlineWait): boolean {
    const socket = this.socketForInline();
    if (socket === undefined || this.buffered > 0 || this.skipping > 0) return false;
    this.inlineBuffer ??= Buffer.allocUnsafeSlow(ARENA_BYTES);
    const n = receiveWithin(socket, this.inlineBuffer, wait);
    if (n === 0) return false;
    this.push(this.inlineBuffer.subarray(0, n));
    return true;
  }

  /**
   * From now on, receive on a thread of the addon that sleeps on the socket and hands on whole
   * requests (runtimes/fs-native/src/request_reader.c), instead of on the event loop. Only for a
   * direct socket, between requests. False when it cannot be done; reading goes on as before.
   * With `writes`, the thread writes to their target what it may (see WriteTarget), and
   * replies to those writes itself while the event loop has not claimed the socket's output
   * (claimOutput, claimed at the start); `writes.done` hears of the others.
   */
  receiveOnThread(writes?: ThreadWrites): boolean {
    const socket = this.socketForInline();
    const source = this.source;
    if (socket === undefined || source === undefined || this.target !== undefined || this.skipping > 0) return false;
    // For a socket with direct reads, pause() stops the handle reading (readStop).
    source.pause();
    try {
      const handle = socket.native.startRequestReader(
        socket.fd,
        (bytes, slot, payloadLength, errorCode, message) => {
          // An exception must not escape into the addon's call: it would end the process.
          try {
            this.fromThread(bytes, slot, payloadLength, errorCode, message);
          } catch (error) {
            this.finish(error as Error);
          }
        },
        writes?.target,
      );
      this.thread = { socket, handle, lent: [], slotOf: new Map(), lentBytes: 0, writes };
    } catch (error) {
      logDebug(`cannot receive requests on a thread: ${(error as Error).message}`);
      source.resume();
      return false;
    }
    // Bytes Node already read stay buffered. The arenas they are in are never written again,
    // so from here on handing out views is safe.
    this.direct = false;
    this.paused = false;
    return true;
  }

  private fromThread(
    bytes: Buffer | null,
    slot: number,
    payloadLength: number,
    errorCode: string | undefined,
    message: string | undefined,
  ): void {
    const thread = this.thread;
    // Calls the thread queued before it was stopped still arrive.
    if (thread === undefined) return;
    if (slot === SLOT_WRITTEN_LIST) {
      const headers = thread.socket.native.takeWrittenRequests(thread.handle);
      for (let at = 0; headers !== null && at < headers.length; at += HEADER_BYTES) {
        thread.writes?.done(headers.subarray(at, at + HEADER_BYTES), undefined, undefined);
      }
      return;
    }
    if (slot === SLOT_OUTPUT_FREE) {
      thread.writes?.outputFree();
      return;
    }
    if (bytes === null) {
      this.finish(errorCode === undefined ? undefined : Object.assign(new Error(`recv: ${errorCode}`), { code: errorCode }));
      return;
    }
    if (slot === SLOT_WRITTEN) {
      thread.writes?.done(bytes, errorCode, message);
      return;
    }
    if (bytes.length > 0) this.push(bytes);
    if (slot >= 0) this.push(thread.lent[slot].subarray(0, payloadLength));
    else if (bytes.length >= HEADER_BYTES + DIRECT_PAYLOAD_MIN) this.lend(thread, bytes.length - HEADER_BYTES);
  }

  /**
   * A payload of `size` found no lent buffer free and came copied: lend buffers of its size, so
   * that the next ones land in memory that is used again (within LEND_BYTES).
   */
  private lend(thread: RequestThread, size: number): void {
    for (let i = 0; i < 2 && size <= LEND_PAYLOAD_MAX && thread.lentBytes + size <= LEND_BYTES; i++) {
      const buffer = Buffer.allocUnsafeSlow(size);
      const slot = thread.socket.native.lendRequestBuffer(thread.handle, buffer);
      if (slot < 0) return;
      thread.lent[slot] = buffer;
      thread.slotOf.set(buffer.buffer, slot);
      thread.lentBytes += size;
    }
  }

  /**
   * A payload the plugin is done with: if it is in a buffer lent to the request thread, the
   * thread may fill that again. Call once per payload, and only when nothing holds it any more.
   */
  recycle(payload: Buffer): void {
    const thread = this.thread;
    const slot = thread?.slotOf.get(payload.buffer);
    if (slot !== undefined) thread!.socket.native.returnRequestBuffer(thread!.handle, slot);
  }

  /**
   * Whether the event loop may queue bytes on the socket now, when the request thread replies to
   * its own writes: see ThreadWrites. If so, the output is the event loop's until releaseOutput();
   * if not, `outputFree` is called once it may claim again. Always true without such a thread.
   */
  claimOutput(): boolean {
    const thread = this.thread;
    return thread?.writes === undefined || thread.socket.native.claimReplyOutput(thread.handle);
  }

  releaseOutput(): void {
    const thread = this.thread;
    if (thread?.writes !== undefined) thread.socket.native.releaseReplyOutput(thread.handle);
  }

  /** Whether receiveInline() can be tried now. */
  canReceiveInline(): boolean {
    return this.socketForInline() !== undefined && this.buffered === 0 && this.skipping === 0;
  }

  /** The socket to read inline: a direct one, not at its end. */
  private socketForInline(): NativeSocket | undefined {
    return this.direct && !this.ended ? this.inlineSocket : undefined;
  }

  private watchEnd(source: Readable): void {
    source.on('end', this.onEnd);
    source.on('close', this.onEnd);
    source.on('error', this.onError);
  }

  /** Part of DirectReadSink: an arena tail, or the rest of the payload being filled. */
  nextReadBuffer(): Uint8Array {
    const target = this.target;
    this.readingTarget = target !== undefined && this.targetFilled < target.length;
    if (this.readingTarget) return target!.subarray(this.targetFilled);
    // Reuse is decided only here, where no read is in progress: a read already armed must find
    // its bytes where it was pointed. With nothing buffered, the whole arena is free again.
    if (this.chunks.length === 0) this.arenaUsed = 0;
    if (this.arena.length - this.arenaUsed < ARENA_MIN_READ) this.switchArena();
    return this.arena.subarray(this.arenaUsed);
  }

  /** Continue in the spare arena if nothing buffered is in it, else in a new one. */
  private switchArena(): void {
    const spare = this.spareArena;
    if (this.arena.length === ARENA_BYTES) this.spareArena = this.arena;
    const spareFree = spare !== undefined && !this.chunks.some((chunk) => chunk.buffer === spare.buffer);
    this.arena = spareFree ? spare : Buffer.allocUnsafeSlow(ARENA_BYTES);
    this.arenaUsed = 0;
  }

  /** Part of DirectReadSink. */
  received(n: number): boolean {
    if (this.thread !== undefined) {
      // The handle read again although it was paused: these bytes belong between the
      // thread's, and no order can be trusted any more.
      this.finish(new Error('the socket was read outside its request thread'));
      return false;
    }
    const target = this.target;
    if (this.readingTarget) {
      // (No target left means the read that was filling it outlived the connection's end.)
      if (target !== undefined) {
        this.targetFilled += n;
        if (this.targetFilled === target.length) this.signal();
      }
    } else if (this.skipping >= n) {
      // Dropped whole: the arena space can hold the next read.
      this.skipping -= n;
      if (this.skipping === 0) this.signal();
    } else {
      const start = this.arenaUsed;
      this.arenaUsed += n;
      this.push(this.arena.subarray(start, start + n));
      // The payload target was set after this read had been armed with the arena.
      if (target !== undefined) this.fillTarget();
    }
    if (this.buffered > this.need + READ_AHEAD) this.paused = true;
    return !this.paused;
  }

  /** Stop reading from the current source, leaving buffered bytes in place. */
  detach(): void {
    const source = this.source;
    if (!source) return;
    if (!this.direct) source.off('data', this.onData);
    source.off('end', this.onEnd);
    source.off('close', this.onEnd);
    source.off('error', this.onError);
    source.pause();
    this.source = undefined;
    const thread = this.thread;
    this.thread = undefined;
    if (thread === undefined) return;
    const readsSent = thread.socket.native.stopRequestReader(thread.handle);
    if (readsSent > 0) logDebug(`the request thread sent ${readsSent} read replies itself`);
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
    if (this.direct) {
      // received() pauses by its return value; a payload being filled is signalled by fillTarget.
      if (this.target === undefined && this.buffered >= this.need) this.signal();
      return;
    }
    if (this.buffered > this.need + READ_AHEAD) this.pauseSource();
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
    this.resumeSource();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  private pauseSource(): void {
    if (this.thread === undefined) this.source?.pause();
    else {
      this.paused = true;
      this.tellThread();
    }
  }

  private resumeSource(): void {
    if (this.thread === undefined) this.source?.resume();
    this.paused = false;
    this.tellThread();
  }

  /**
   * Hold the request thread back (true) or let it go on (false) whatever is buffered: while
   * replies to the writes it does itself pile up unsent, it must not take more from the client.
   */
  holdThread(held: boolean): void {
    this.held = held;
    this.tellThread();
  }

  /** Pause or resume the request thread when whether it should run has changed. */
  private tellThread(): void {
    const thread = this.thread;
    const pause = this.paused || this.held;
    if (thread === undefined || pause === this.threadPaused) return;
    this.threadPaused = pause;
    if (pause) thread.socket.native.pauseRequestReader(thread.handle);
    else thread.socket.native.resumeRequestReader(thread.handle);
  }

  private isPaused(): boolean {
    return this.direct || this.thread !== undefined ? this.paused : this.source?.isPaused() === true;
  }

  /**
   * Exactly n bytes; a view into the received chunk when possible, else assembled into a
   * buffer from `alloc` (so that the caller can recycle it).
   */
  async read(n: number, alloc?: PayloadBuffers, inline?: InlineWait): Promise<Buffer> {
    if (this.direct && alloc && n >= DIRECT_PAYLOAD_MIN && this.buffered < n) return this.readDirect(n, alloc, inline);
    while (this.buffered < n) {
      this.need = n;
      await this.waitForData();
    }
    this.need = 0;
    return this.take(n, alloc);
  }

  /**
   * A payload that has not fully arrived: what is buffered is copied into its destination, and
   * the socket reads the rest straight into it, waiting inline first if `inline` allows.
   */
  private async readDirect(n: number, alloc: PayloadBuffers, inline: InlineWait | undefined): Promise<Buffer> {
    const out = alloc.take(n);
    this.target = out;
    this.targetFilled = 0;
    try {
      this.fillTarget();
      if (inline !== undefined) this.fillTargetInline(out, inline);
      while (this.targetFilled < n) await this.waitForData();
      return out;
    } finally {
      this.target = undefined;
    }
  }

  /** Read into the payload being filled by inline waits, while they bring bytes in time. */
  private fillTargetInline(target: Buffer, wait: InlineWait): void {
    const socket = this.socketForInline();
    const until = wait.untilMs ?? Infinity;
    // Not once a socket read has been armed with the payload: it would land where the inline
    // reads already put bytes.
    while (socket !== undefined && this.targetFilled < target.length && !this.readingTarget && performance.now() < until) {
      const received = receiveWithin(socket, target.subarray(this.targetFilled), wait);
      if (received === 0) return;
      this.targetFilled += received;
    }
  }

  /** Move buffered bytes into the payload being filled. */
  private fillTarget(): void {
    const target = this.target!;
    while (this.targetFilled < target.length && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const used = Math.min(chunk.length - this.head, target.length - this.targetFilled);
      chunk.copy(target, this.targetFilled, this.head, this.head + used);
      this.targetFilled += used;
      this.buffered -= used;
      this.head += used;
      if (this.head === chunk.length) this.dropFirst();
    }
    if (this.targetFilled === target.length) this.signal();
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
  takeNow(n: number, alloc?: PayloadBuffers): Buffer | undefined {
    return this.buffered >= n ? this.take(n, alloc) : undefined;
  }

  private take(n: number, alloc?: PayloadBuffers): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    const available = first.length - this.head;
    let out: Buffer;
    if (available >= n && !this.direct) {
      // A view: the common case of a request that arrived within one chunk. (Not of an arena,
      // which is written again.)
      out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) this.dropFirst();
    } else {
      out = alloc ? alloc.take(n) : Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[0];
        const used = Math.min(chunk.length - this.head, n - filled);
        chunk.copy(out, filled, this.head, this.head + used);
        filled += used;
        this.head += used;
        if (this.head === chunk.length) this.dropCopied();
      }
    }
    this.buffered -= n;
    if (this.buffered <= READ_AHEAD && this.isPaused()) this.resumeSource();
    return out;
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.head = 0;
  }

  /** Drop the first chunk, whose bytes were copied out or skipped: none of it is in use. */
  private dropCopied(): void {
    this.recycle(this.chunks[0]);
    this.dropFirst();
  }

  /** Discard n bytes without ever holding them all: for payloads the server refuses. */
  async skip(n: number): Promise<void> {
    let remaining = n;
    while (remaining > 0 && this.chunks.length > 0) {
      const chunk = this.chunks[0];
      const used = Math.min(chunk.length - this.head, remaining);
      this.head += used;
      if (this.head === chunk.length) this.dropCopied();
      this.buffered -= used;
      remaining -= used;
    }
    this.skipping = remaining;
    while (this.skipping > 0) {
      await this.waitForData();
    }
  }
}
