/**
 * The transmission phase: read requests, hand them to the backend, write replies.
 *
 * Requests are read one after another but run concurrently (pipelining): each is dispatched as
 * soon as its header and payload are in, and its reply is written when it completes, so replies
 * can leave out of order when the thread model lets requests overlap. Reading pauses when too
 * many requests or reply bytes are outstanding, which bounds memory whatever the client does.
 */
import { availableParallelism } from 'node:os';
import { type ExportContext, RequestError } from './backend.js';
import { nbdErrorFor } from './errno.js';
import type { InlineWait, InputReader, PayloadBuffers, ThreadTarget, WrittenByThread } from './input.js';
import { logDebug, logError } from './log.js';
import { Flag } from './plugin.js';
import { isPromise, type MaybePromise } from './serialize.js';
import {
  BASE_ALLOCATION_ID,
  Command,
  CommandFlag,
  REQUEST_MAGIC,
  ReplyFlag,
  ReplyType,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
  commandName,
} from './protocol.js';

/** Requests admitted but not yet replied to, before reading stops. */
const MAX_IN_FLIGHT = 64;
/** Payload and reply bytes held for admitted requests, before reading stops. */
const MAX_IN_FLIGHT_BYTES = 256 * 1024 * 1024;
/**
 * Reply bytes queued in the socket, unread by the client, before reading stops. Small on
 * purpose: reading further ahead than the socket can take only fills more reply buffers, and a
 * few hot buffers beat many cold ones (256 KiB reads: 230 ms to 209 ms with 16 MiB → 512 KiB).
 * Must stay above the socket's highWaterMark (16 KiB), or 'drain' would never come.
 */
const MAX_UNSENT_BYTES = 512 * 1024;

const SIMPLE_HEADER = 16;
const CHUNK_HEADER = 20;
/** Recycled reply and payload bytes the server keeps idle, for all its connections. */
const POOL_BYTES = 16 * 1024 * 1024;
/**
 * Reads at least this large may be sent by the channel itself, from the plugin's file or
 * memory, without a copy into a reply buffer. Below it, copying is cheap and replies finished in
 * one turn are better sent together in one writev (straight sends are system calls of their
 * own: 4 KiB reads with 64 in flight went from 0.83 to 1.05 s).
 */
const SEND_DIRECT_MIN = 64 * 1024;
/**
 * Reads straight from a file go up to this size: the part the socket does not take is read
 * synchronously, so this is also the most file I/O one reply does on the event loop (as the
 * file plugin's own limit for synchronous reads).
 */
const SEND_FROM_FILE_MAX = 256 * 1024;
/**
 * Waiting inline: with every reply sent and nothing in flight, the next request is waited for
 * on the socket itself (InputReader.receiveInline) instead of by the event loop, and so is the
 * rest of its payload. A client that sends one request at a time gets each reply sooner,
 * because waking a thread that sleeps in epoll costs this virtual 2-CPU machine ~25 µs per
 * request, most of it waking the idle CPU:
 * - First the socket is polled without sleeping for 50 µs, long enough for a client's
 *   turn-around (nbdcopy's is 10-20 µs). 4 KiB reads one at a time, file plugin, warm server:
 *   1.2 s to 0.44 s, where native nbdkit takes 0.73 s. The CPU is burnt only while the server
 *   has a single client, after each reply, at most this long. Not on a single CPU, where the
 *   spinning would take the client's CPU away.
 * - Then the thread sleeps in recv for up to 1 ms: a wake-up straight into recv is ~10 µs
 *   quicker than one from epoll followed by a read (1.68 s to 1.28 s without the spin).
 * - A write's payload that is still arriving is waited for the same way: 256 KiB writes from
 *   Python, 0.59 s to 0.55 s.
 * The event loop is held meanwhile, so only a server with a single client does it; a new
 * connection, a timer or a signal waits at most INLINE_STREAK_MS.
 */
const INLINE_WAIT: InlineWait = { spinMicros: availableParallelism() > 1 ? 50 : 0, timeoutMicros: 1000 };
/**
 * Requests served back to back through inline waits return to the event loop after this long,
 * so that timers, signals and deferred callbacks (reply buffers going back to the pool) run.
 */
const INLINE_STREAK_MS = 2;
/**
 * A write at least this large (or, for the file and memory plugins, a read) moves the connection's
 * receiving to a thread of its own (InputReader.receiveOnThread), for good. A single event-loop
 * thread that receives and writes the payloads of several clients leaves each client blocked on
 * its full socket while it serves the others, where a thread sleeping on each socket drains it as
 * the bytes come, as nbdkit's connection threads do. 256 KiB writes of 512 MiB from nbdcopy (four
 * connections), npm run bench: file 1.66-1.73 times native to 1.19-1.29 (its thread also does the
 * writes), memory 1.54-1.64 to 1.26-1.44, Python 1.10 to 0.85-1.00; one connection, file, before
 * the thread did the writes: 375 ms to 295 ms. For file, the thread also replying to its writes
 * (the event loop only shares the socket's output with it, see ReplyChannel.shareWithThread):
 * 242-255 ms to 204-206 ms, native nbdkit 206-213 ms, runs interleaved; memory, its disk made a
 * file the thread writes (memory-file.ts): 305 ms to 239-243 ms, native 257 ms. Not for
 * connections that only read, unless the thread can send the reads itself (file and memory):
 * handing reads on, the thread made 4 KiB reads with 64 in flight take 1.3 times as long (each
 * batch of headers is one more wake-up of the event loop). Sending them itself, it made 256 KiB
 * reads of 512 MiB take 159-176 ms instead of 173-207 from memory, 119-132 instead of 165-171 from
 * a file (native 189-204 and 185-208).
 */
const THREAD_REQUEST_MIN = 64 * 1024;

/** The socket's output as shared with a request thread that replies itself (InputReader.claimOutput). */
export interface OutputGate {
  /** True: the output is the channel's until release(). False: wait for ReplyChannel.outputFree. */
  claim(): boolean;
  release(): void;
}

export interface ReplyChannel {
  /** Queue a reply. `sent` runs once the channel no longer needs `data` (sent, or dropped). */
  write(data: Buffer, sent?: () => void): void;
  /** Send what was written in this turn now, not at its end. */
  flush(): void;
  /** Bytes written and not yet taken by the kernel. */
  readonly writableLength: number;
  /** Resolves when writableLength has dropped (the 'drain' event) or the channel closed. */
  drained(): Promise<void>;
  /** From now on, share the output with a request thread that sends replies itself. */
  shareWithThread(gate: OutputGate): void;
  /** The thread says the output it refused before is free. */
  outputFree(): void;
  /**
   * Resolves when every reply, the thread's included, has been handed to the socket (or after a
   * bound, for a client that does not read): before the connection is closed.
   */
  settled(): Promise<void>;
  /**
   * Whether the channel can send a reply itself right now: a plain socket with nothing queued.
   * Only then are sendFromFile and sendFromMemory worth preparing for.
   */
  canSendDirect(): boolean;
  /**
   * Send a read reply whose data comes straight from a host file: `header`, then `count` bytes
   * of `fileFd` at `offset`. What the socket does not take at once is read into `spill` and
   * queued behind, so the reply leaves whole and in order; `release` runs when `spill` is free
   * again. False when the channel cannot do that now: send from memory.
   */
  sendFromFile(header: Buffer, fileFd: number, offset: bigint, count: number, spill: Buffer, release: () => void): boolean;
  /**
   * The same for data in memory that is only valid now (views of a plugin's memory): `header`
   * then the `parts`, what the socket does not take at once copied into `spill` and queued.
   */
  sendFromMemory(header: Buffer, parts: Uint8Array[], count: number, spill: Buffer, release: () => void): boolean;
}

interface Request {
  flags: number;
  command: number;
  /** The request header: the cookie is copied from bytes 8-15 into the reply. */
  header: Buffer;
  offset: bigint;
  count: number;
}

/** Translate NBD command flags to the plugin's NBDKIT_FLAG_* bits. */
function pluginFlags(flags: number): number {
  let out = 0;
  if (flags & CommandFlag.FUA) out |= Flag.FUA;
  if (flags & CommandFlag.REQ_ONE) out |= Flag.REQ_ONE;
  if (flags & CommandFlag.FAST_ZERO) out |= Flag.FAST_ZERO;
  return out;
}

/**
 * Reply and payload buffers recycled once the socket or the plugin is done with them: a fresh
 * buffer per request costs an allocation, page faults, and garbage-collector pressure from the
 * external memory. Capped so that the server never keeps more than POOL_BYTES idle.
 *
 * One pool serves every connection (SHARED_BUFFERS): a pool per connection became garbage with
 * its connection, up to POOL_BYTES of buffers whose memory V8 returns only at a full collection,
 * which a server whose JavaScript heap stays small seldom does. A Lua server's RSS grew by about
 * 2 MiB per connection of 4 KiB reads (72 to 102 MiB over 16; with one pool, 70 to 83).
 */
class BufferPool implements PayloadBuffers {
  private readonly free = new Map<number, Buffer[]>();
  /** The memory this pool handed out, to tell its buffers from views of socket chunks. */
  private readonly mine = new WeakSet<ArrayBufferLike>();
  private pooled = 0;

  take(size: number): Buffer {
    const buffer = this.free.get(size)?.pop();
    if (buffer !== undefined) {
      this.pooled -= size;
      return buffer;
    }
    const fresh = Buffer.allocUnsafeSlow(size);
    this.mine.add(fresh.buffer);
    return fresh;
  }

  owns(buffer: Buffer): boolean {
    return buffer.byteOffset === 0 && buffer.length === buffer.buffer.byteLength && this.mine.has(buffer.buffer);
  }

  give(buffer: Buffer): void {
    if (this.pooled + buffer.length > POOL_BYTES) return;
    let list = this.free.get(buffer.length);
    if (list === undefined) {
      // Only a few distinct sizes are live at a time; forget old ones rather than hoard them.
      if (this.free.size >= 4) {
        this.free.clear();
        this.pooled = 0;
      }
      list = [];
      this.free.set(buffer.length, list);
    }
    list.push(buffer);
    this.pooled += buffer.length;
  }
}

const SHARED_BUFFERS = new BufferPool();

/** nbdkit_disconnect's mark on a connection: once set, requests get ESHUTDOWN. */
export interface DisconnectState {
  refusing: boolean;
}

export class Transmission {
  private inFlight = 0;
  private inFlightBytes = 0;
  private idle: (() => void) | undefined;
  private slotFreed: (() => void) | undefined;
  /** When the current run of requests received by inline waits began. */
  private inlineSince: number | undefined;
  /** Whether receiving on a thread was tried (it is tried once, on the first large write). */
  private threadTried = false;
  /** Whether the request thread is held back until unsent replies drain. */
  private threadHeld = false;
  /** Payloads that span socket chunks are assembled in pooled buffers, recycled after pwrite. */
  private readonly buffers = SHARED_BUFFERS;

  constructor(
    private readonly reader: InputReader,
    private readonly out: ReplyChannel,
    private readonly context: ExportContext,
    private readonly structuredReplies: boolean,
    private readonly baseAllocation: boolean,
    /** Whether waiting inline may hold up nobody else: this is the server's only client. */
    private readonly soleClient: () => boolean,
    /** Set when the plugin asked for the client to be disconnected (nbdkit_disconnect). */
    private readonly disconnecting: DisconnectState = { refusing: false },
  ) {}

  /**
   * Serve until the client disconnects (cleanly or not). Always waits for in-flight requests.
   * While requests are already buffered and admission allows, the loop runs without awaiting.
   */
  async run(): Promise<void> {
    try {
      for (;;) {
        if (this.mustWait()) await this.admission();
        const header = this.reader.takeNow(28) ?? this.headerInline() ?? (await this.reader.readOrEnd(28));
        if (!header) return; // client closed without NBD_CMD_DISC
        const magic = header.readUInt32BE(0);
        if (magic !== REQUEST_MAGIC) {
          logError(`invalid request: wrong magic 0x${magic.toString(16)}`);
          return;
        }
        const request: Request = {
          flags: header.readUInt16BE(4),
          command: header.readUInt16BE(6),
          header,
          offset: header.readBigUInt64BE(16),
          count: header.readUInt32BE(24),
        };
        if (request.command === Command.DISC) {
          logDebug('client sent NBD_CMD_DISC, closing connection');
          return;
        }
        const pending = this.dispatch(request);
        if (pending) await pending;
      }
    } finally {
      await this.waitIdle();
      await this.out.settled();
    }
  }

  /** The next request header if waiting inline is allowed and brings it, else undefined. */
  private headerInline(): Buffer | undefined {
    const header = this.mayWaitInline() && this.reader.receiveInline(INLINE_WAIT) ? this.reader.takeNow(28) : undefined;
    if (header === undefined) this.inlineSince = undefined;
    return header;
  }

  /** Whether the reader may wait on the socket itself now; if so, replies were sent first. */
  private mayWaitInline(): boolean {
    if (this.inFlight > 0 || !this.reader.canReceiveInline() || !this.soleClient()) return false;
    const now = performance.now();
    this.inlineSince ??= now;
    if (now - this.inlineSince > INLINE_STREAK_MS) return false;
    this.out.flush();
    return this.out.writableLength === 0;
  }

  /** Validate and start the request; a promise only when a write payload must be awaited. */
  private dispatch(request: Request): Promise<void> | undefined {
    const { command, flags, offset, count } = request;
    let errno = this.context.validate(command, flags, offset, count, this.structuredReplies, this.baseAllocation);
    // After a soft nbdkit_disconnect, valid requests fail without reaching the plugin, as in nbdkit.
    if (errno === undefined && this.disconnecting.refusing) errno = 'ESHUTDOWN';
    if (command === Command.WRITE) {
      if (errno !== undefined) {
        // Refused writes still carry their payload on the wire; drop it as it streams past.
        return this.reader.skip(count).then(() => this.sendError(request, errno));
      }
      const payload = this.reader.takeNow(count, this.buffers);
      if (payload) {
        this.start(request, payload);
        return undefined;
      }
      // In a run of inline waits, the payload is waited for inline too, within the same bound.
      const since = this.inlineSince;
      const inline = since !== undefined && this.inFlight === 0 ? { ...INLINE_WAIT, untilMs: since + INLINE_STREAK_MS } : undefined;
      return this.reader.read(count, this.buffers, inline).then((data) => this.start(request, data));
    }
    if (errno !== undefined) this.sendError(request, errno);
    else this.start(request, undefined);
    return undefined;
  }

  private start(request: Request, payload: Buffer | undefined): void {
    const command = request.command;
    if (!this.threadTried && request.count >= THREAD_REQUEST_MIN) this.tryThread(command);
    const bytes = command === Command.READ || command === Command.WRITE ? request.count : 0;
    this.inFlight++;
    this.inFlightBytes += bytes;
    this.execute(request, payload, bytes);
  }

  /**
   * Move the connection's requests to a thread, once, if this large request makes it worth it:
   * a write always (the thread receives payloads beside the event loop), a read when the thread
   * can send it itself from the plugin's file.
   */
  private tryThread(command: number): void {
    const target = this.threadTarget();
    if (command !== Command.WRITE && !(command === Command.READ && target?.reads)) return;
    this.threadTried = true;
    const out = this.out;
    if (!this.reader.receiveOnThread(target && { target, done: this.writtenByThread, outputFree: () => out.outputFree() })) {
      return;
    }
    if (target) out.shareWithThread({ claim: () => this.reader.claimOutput(), release: () => this.reader.releaseOutput() });
    const reads = target?.reads ? ', and sends reads from it' : '';
    logDebug(`receiving requests on a thread${target ? `, which writes to the file itself and replies${reads}` : ''}`);
  }

  /** What the request thread may do without the plugin, if anything (see WriteTarget). */
  private threadTarget(): ThreadTarget | undefined {
    const target = this.context.writeTarget;
    if (target === undefined) return undefined;
    const reads = this.context.readSourceFd === target.fd;
    return { ...target, reads, structured: this.structuredReplies };
  }

  /**
   * A write the request thread did itself (file and memory plugins, see WriteTarget) and could not
   * reply to, because the event loop held the socket's output, only needs its reply. The thread
   * is held back while replies pile up unsent, as a native server's thread is by its blocking
   * send.
   */
  private readonly writtenByThread: WrittenByThread = (header, errorCode, message) => {
    if (errorCode === undefined) this.sendSimple(header, 0);
    else {
      logError(`pwrite: ${message ?? errorCode}`);
      // Write errors are simple replies, structured replies or not.
      this.sendSimple(header, nbdErrorFor(errorCode, this.structuredReplies));
    }
    if (this.threadHeld || this.out.writableLength < MAX_UNSENT_BYTES) return;
    this.threadHeld = true;
    this.reader.holdThread(true);
    void this.out.drained().then(() => {
      this.threadHeld = false;
      this.reader.holdThread(false);
    });
  };

  private finished(bytes: number): void {
    this.inFlight--;
    this.inFlightBytes -= bytes;
    this.slotFreed?.();
    if (this.inFlight === 0) this.idle?.();
  }

  private mustWait(): boolean {
    return (
      this.inFlight >= MAX_IN_FLIGHT ||
      (this.inFlight > 0 && this.inFlightBytes >= MAX_IN_FLIGHT_BYTES) ||
      this.out.writableLength >= MAX_UNSENT_BYTES
    );
  }

  /** Wait until another request may be admitted. */
  private async admission(): Promise<void> {
    while (this.mustWait()) {
      if (this.out.writableLength >= MAX_UNSENT_BYTES) await this.out.drained();
      else await new Promise<void>((resolve) => (this.slotFreed = resolve));
      this.slotFreed = undefined;
    }
  }

  private async waitIdle(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  /**
   * Run one admitted request to its reply. Never throws or rejects. A request the plugin
   * answers synchronously is replied to without a promise being made.
   */
  private execute(request: Request, payload: Buffer | undefined, bytes: number): void {
    let pending: MaybePromise<void>;
    try {
      pending = this.perform(request, payload);
    } catch (error) {
      this.failed(request, error);
      this.finished(bytes);
      return;
    }
    if (!isPromise(pending)) {
      this.finished(bytes);
      return;
    }
    pending.then(
      () => this.finished(bytes),
      (error: unknown) => {
        this.failed(request, error);
        this.finished(bytes);
      },
    );
  }

  private failed(request: Request, error: unknown): void {
    if (error instanceof RequestError) this.sendError(request, error.errno, error.message);
    else {
      const message = `${commandName(request.command)}: ${(error as Error).message}`;
      logError(message);
      this.sendError(request, 'EIO', message);
    }
  }

  /** Do the request and send its successful reply; errors are thrown (or rejected). */
  private perform(request: Request, payload: Buffer | undefined): MaybePromise<void> {
    const { command, flags, offset, count } = request;
    const ctx = this.context;
    const succeeded = (): void => this.sendSimple(request.header, 0);
    switch (command) {
      case Command.READ:
        return this.read(request);
      case Command.WRITE:
        return then(this.pwrite(payload!, offset, flags), () => {
          // Only whole pooled buffers go back, never views of socket chunks.
          if (this.buffers.owns(payload!)) this.buffers.give(payload!);
          succeeded();
        });
      case Command.FLUSH:
        return then(ctx.flush(), succeeded);
      case Command.TRIM:
        return then(ctx.trim(count, offset, pluginFlags(flags)), succeeded);
      case Command.WRITE_ZEROES: {
        const mayTrim = flags & CommandFlag.NO_HOLE ? 0 : Flag.MAY_TRIM;
        return then(ctx.zero(count, offset, pluginFlags(flags) | mayTrim), succeeded);
      }
      case Command.CACHE:
        return then(ctx.cache(count, offset, 0), succeeded);
      case Command.BLOCK_STATUS:
        return this.blockStatus(request);
      default:
        // validate() lets no other command through; refuse rather than answer nothing.
        throw new RequestError('EINVAL', `${commandName(command)}: not handled`);
    }
  }

  /**
   * The plugin's pwrite. A payload in a buffer lent to the request thread goes back to it once
   * the call is over, whether it succeeded or not: the thread waits for its buffers.
   */
  private pwrite(payload: Buffer, offset: bigint, flags: number): MaybePromise<void> {
    let written: MaybePromise<void>;
    try {
      written = this.context.pwrite(payload, offset, pluginFlags(flags));
    } catch (error) {
      this.reader.recycle(payload);
      throw error;
    }
    // No closure on the synchronous path, which is every plugin but the asynchronous ones.
    if (!isPromise(written)) {
      this.reader.recycle(payload);
      return written;
    }
    return written.finally(() => this.reader.recycle(payload));
  }

  private read(request: Request): MaybePromise<void> {
    const { count, offset } = request;
    const headerSize = this.structuredReplies ? CHUNK_HEADER + 8 : SIMPLE_HEADER;
    if (count >= SEND_DIRECT_MIN) {
      const fd = this.context.readSourceFd;
      if (fd !== undefined && count <= SEND_FROM_FILE_MAX) {
        const fromFile = (header: Buffer, spill: Buffer, release: () => void): boolean =>
          this.out.sendFromFile(header, fd, offset, count, spill, release);
        if (this.sendDirect(request, headerSize, fromFile)) return;
      }
      if (this.context.readsViews) {
        return this.context.preadView(count, offset, (parts) => this.sendView(request, headerSize, parts));
      }
    }
    // The reply is built around the data so that the plugin reads straight into it.
    // A buffer whose pread failed is not recycled: the plugin might still hold it.
    const reply = this.buffers.take(headerSize + count);
    return then(this.context.pread(reply.subarray(headerSize), offset), () => {
      this.writeReadHeader(reply, request);
      this.out.write(reply, () => this.buffers.give(reply));
    });
  }

  /**
   * A read reply the channel sends itself with `send`, given the reply header and a pooled
   * buffer for what the socket does not take at once. False, having prepared nothing, when the
   * channel cannot send now.
   */
  private sendDirect(
    request: Request,
    headerSize: number,
    send: (header: Buffer, spill: Buffer, release: () => void) => boolean,
  ): boolean {
    if (!this.out.canSendDirect()) return false;
    const header = Buffer.allocUnsafe(headerSize);
    this.writeReadHeader(header, request);
    const spill = this.buffers.take(request.count);
    const release = (): void => this.buffers.give(spill);
    if (send(header, spill, release)) return true;
    release();
    return false;
  }

  /** A read reply from views of the plugin's memory, sent or copied before they go stale. */
  private sendView(request: Request, headerSize: number, parts: Uint8Array[]): void {
    const count = request.count;
    const fromMemory = (header: Buffer, spill: Buffer, release: () => void): boolean =>
      this.out.sendFromMemory(header, parts, count, spill, release);
    if (this.sendDirect(request, headerSize, fromMemory)) return;
    const reply = this.buffers.take(headerSize + count);
    this.writeReadHeader(reply, request);
    copyParts(parts, 0, reply.subarray(headerSize));
    this.out.write(reply, () => this.buffers.give(reply));
  }

  /** The header of a successful read reply, at the start of `out`. */
  private writeReadHeader(out: Buffer, request: Request): void {
    if (this.structuredReplies) {
      writeChunkHeader(out, ReplyFlag.DONE, ReplyType.OFFSET_DATA, request.header, 8 + request.count);
      out.writeBigUInt64BE(request.offset, CHUNK_HEADER);
    } else {
      writeSimpleHeader(out, 0, request.header);
    }
  }

  private async blockStatus(request: Request): Promise<void> {
    const { count, offset, flags } = request;
    const list = await this.context.extents(count, offset, pluginFlags(flags));
    const reqOne = (flags & CommandFlag.REQ_ONE) !== 0;
    const lengths: number[] = [];
    const types: number[] = [];
    if (reqOne) {
      const first = list.lengths[0];
      lengths.push(Number(first < BigInt(count) ? first : BigInt(count)));
      types.push(list.types[0] & 3);
    } else {
      const end = offset + BigInt(count);
      let position = offset;
      for (let i = 0; i < list.count; i++) {
        const length = list.lengths[i] > 0xffffffffn ? 0xffffffffn : list.lengths[i];
        lengths.push(Number(length));
        types.push(list.types[i] & 3);
        position += length;
        if (position > end || length < list.lengths[i]) break;
      }
    }
    const payloadLength = 4 + 8 * lengths.length;
    const reply = Buffer.allocUnsafe(CHUNK_HEADER + payloadLength);
    writeChunkHeader(reply, ReplyFlag.DONE, ReplyType.BLOCK_STATUS, request.header, payloadLength);
    reply.writeUInt32BE(BASE_ALLOCATION_ID, CHUNK_HEADER);
    for (let i = 0; i < lengths.length; i++) {
      reply.writeUInt32BE(lengths[i], CHUNK_HEADER + 4 + 8 * i);
      reply.writeUInt32BE(types[i], CHUNK_HEADER + 8 + 8 * i);
    }
    this.out.write(reply);
  }

  private sendSimple(header: Buffer, error: number): void {
    const reply = Buffer.allocUnsafe(SIMPLE_HEADER);
    writeSimpleHeader(reply, error, header);
    this.out.write(reply);
  }

  /**
   * An error reply. With structured replies negotiated it is a structured error chunk for reads
   * and block status, and for any command a plugin failed (`reason`, the plugin's message, which
   * libnbd and qemu show, as nbdkit 1.42 sends it); otherwise a simple reply.
   */
  private sendError(request: Request, errno: string, reason?: string): void {
    const error = nbdErrorFor(errno, this.structuredReplies);
    const structured =
      this.structuredReplies &&
      (reason !== undefined || request.command === Command.READ || request.command === Command.BLOCK_STATUS);
    if (!structured) {
      this.sendSimple(request.header, error);
      return;
    }
    const message = reason === undefined || reason === '' ? Buffer.from(errno, 'latin1') : errorText(reason);
    const reply = Buffer.allocUnsafe(CHUNK_HEADER + 6 + message.length);
    writeChunkHeader(reply, ReplyFlag.DONE, ReplyType.ERROR, request.header, 6 + message.length);
    reply.writeUInt32BE(error, CHUNK_HEADER);
    reply.writeUInt16BE(message.length, CHUNK_HEADER + 4);
    message.copy(reply, CHUNK_HEADER + 6);
    this.out.write(reply);
  }
}

/** The NBD specification bounds an error chunk's message at 4096 bytes of UTF-8. */
const MAX_ERROR_TEXT = 4096;

function errorText(reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8');
  if (text.length <= MAX_ERROR_TEXT) return text;
  // Cut at a character boundary: continuation bytes are 10xxxxxx.
  let end = MAX_ERROR_TEXT;
  while (end > 0 && (text[end] & 0xc0) === 0x80) end--;
  return text.subarray(0, end);
}

/** Copy the bytes of `parts` from `skip` onwards into `out`, which must hold them. */
export function copyParts(parts: Uint8Array[], skip: number, out: Uint8Array): void {
  let at = 0;
  for (const part of parts) {
    if (skip >= part.length) {
      skip -= part.length;
      continue;
    }
    out.set(skip > 0 ? part.subarray(skip) : part, at);
    at += part.length - skip;
    skip = 0;
  }
}

/** Run `next` after `value`: at once if it is already there, else when its promise settles. */
function then<T>(value: MaybePromise<T>, next: (value: T) => void): MaybePromise<void> {
  return isPromise(value) ? value.then(next) : next(value);
}

/** `request` is the request header: its cookie (bytes 8-15) is echoed. */
function writeSimpleHeader(out: Buffer, error: number, request: Buffer): void {
  out.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  out.writeUInt32BE(error, 4);
  request.copy(out, 8, 8, 16);
}

function writeChunkHeader(out: Buffer, flags: number, type: number, request: Buffer, length: number): void {
  out.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  out.writeUInt16BE(flags, 4);
  out.writeUInt16BE(type, 6);
  request.copy(out, 8, 8, 16);
  out.writeUInt32BE(length, 16);
}

