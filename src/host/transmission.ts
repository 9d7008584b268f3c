/**
 * The transmission phase: read requests, hand them to the backend, write replies.
 *
 * Requests are read one after another but run concurrently (pipelining): each is dispatched as
 * soon as its header and payload are in, and its reply is written when it completes, so replies
 * can leave out of order when the thread model lets requests overlap. Reading pauses when too
 * many requests or reply bytes are outstanding, which bounds memory whatever the client does.
 */
import { type ExportContext, RequestError } from './backend.js';
import { nbdErrorFor } from './errno.js';
import type { InputReader } from './input.js';
import { logDebug, logError } from './log.js';
import { Flag } from './plugin.js';
import {
  BASE_ALLOCATION_ID,
  Command,
  CommandFlag,
  MAX_REQUEST_SIZE,
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
/** Reply bytes queued in the socket, unread by the client, before reading stops. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

const SIMPLE_HEADER = 16;
const CHUNK_HEADER = 20;

export interface ReplyChannel {
  write(data: Buffer): void;
  /** Bytes written and not yet taken by the kernel. */
  readonly writableLength: number;
  /** Resolves when writableLength has dropped (the 'drain' event) or the channel closed. */
  drained(): Promise<void>;
}

interface Request {
  flags: number;
  command: number;
  cookie: Buffer;
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

export class Transmission {
  private inFlight = 0;
  private inFlightBytes = 0;
  private idle: (() => void) | undefined;
  private slotFreed: (() => void) | undefined;

  constructor(
    private readonly reader: InputReader,
    private readonly out: ReplyChannel,
    private readonly context: ExportContext,
    private readonly structuredReplies: boolean,
    private readonly baseAllocation: boolean,
  ) {}

  /** Serve until the client disconnects (cleanly or not). Always waits for in-flight requests. */
  async run(): Promise<void> {
    try {
      for (;;) {
        await this.admission();
        const header = await this.reader.readOrEnd(28);
        if (!header) return; // client closed without NBD_CMD_DISC
        const magic = header.readUInt32BE(0);
        if (magic !== REQUEST_MAGIC) {
          logError(`invalid request: wrong magic 0x${magic.toString(16)}`);
          return;
        }
        const request: Request = {
          flags: header.readUInt16BE(4),
          command: header.readUInt16BE(6),
          cookie: header.subarray(8, 16),
          offset: header.readBigUInt64BE(16),
          count: header.readUInt32BE(24),
        };
        if (request.command === Command.DISC) {
          logDebug('client sent NBD_CMD_DISC, closing connection');
          return;
        }
        if (!(await this.dispatch(request))) return;
      }
    } finally {
      await this.waitIdle();
    }
  }

  /** Read the payload (if any), validate, and start the request. False ends the connection. */
  private async dispatch(request: Request): Promise<boolean> {
    const { command, flags, offset, count } = request;
    const errno = this.context.validate(command, flags, offset, count, this.structuredReplies, this.baseAllocation);
    let payload: Buffer | undefined;
    if (command === Command.WRITE) {
      if (errno !== undefined) {
        // Refused writes still carry their payload on the wire; drop it as it streams past.
        await this.reader.skip(count);
      } else {
        payload = await this.reader.read(count);
      }
    }
    if (errno !== undefined) {
      this.sendError(request, errno);
      return true;
    }
    const bytes = command === Command.READ ? count : command === Command.WRITE ? count : 0;
    this.inFlight++;
    this.inFlightBytes += bytes;
    void this.execute(request, payload).finally(() => {
      this.inFlight--;
      this.inFlightBytes -= bytes;
      this.slotFreed?.();
      if (this.inFlight === 0) this.idle?.();
    });
    return true;
  }

  /** Wait until another request may be admitted. */
  private async admission(): Promise<void> {
    while (
      this.inFlight >= MAX_IN_FLIGHT ||
      (this.inFlight > 0 && this.inFlightBytes >= MAX_IN_FLIGHT_BYTES) ||
      this.out.writableLength >= MAX_UNSENT_BYTES
    ) {
      if (this.out.writableLength >= MAX_UNSENT_BYTES) await this.out.drained();
      else await new Promise<void>((resolve) => (this.slotFreed = resolve));
      this.slotFreed = undefined;
    }
  }

  private async waitIdle(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }

  private async execute(request: Request, payload: Buffer | undefined): Promise<void> {
    const { command, flags, offset, count } = request;
    const ctx = this.context;
    try {
      switch (command) {
        case Command.READ:
          return await this.read(request);
        case Command.WRITE:
          await ctx.pwrite(payload!, offset, pluginFlags(flags));
          break;
        case Command.FLUSH:
          await ctx.flush();
          break;
        case Command.TRIM:
          await ctx.trim(count, offset, pluginFlags(flags));
          break;
        case Command.WRITE_ZEROES: {
          const mayTrim = flags & CommandFlag.NO_HOLE ? 0 : Flag.MAY_TRIM;
          await ctx.zero(count, offset, pluginFlags(flags) | mayTrim);
          break;
        }
        case Command.CACHE:
          await ctx.cache(count, offset, 0);
          break;
        case Command.BLOCK_STATUS:
          return await this.blockStatus(request);
      }
      this.sendSimple(request.cookie, 0);
    } catch (error) {
      this.sendError(request, error instanceof RequestError ? error.errno : 'EIO');
      if (!(error instanceof RequestError)) logError(`${commandName(command)}: ${(error as Error).message}`);
    }
  }

  private async read(request: Request): Promise<void> {
    const { count, offset } = request;
    // The reply is built around the data so that the plugin reads straight into it.
    const headerSize = this.structuredReplies ? CHUNK_HEADER + 8 : SIMPLE_HEADER;
    const reply = Buffer.allocUnsafe(headerSize + count);
    await this.context.pread(reply.subarray(headerSize), offset);
    if (this.structuredReplies) {
      writeChunkHeader(reply, ReplyFlag.DONE, ReplyType.OFFSET_DATA, request.cookie, 8 + count);
      reply.writeBigUInt64BE(offset, CHUNK_HEADER);
    } else {
      writeSimpleHeader(reply, 0, request.cookie);
    }
    this.out.write(reply);
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
    writeChunkHeader(reply, ReplyFlag.DONE, ReplyType.BLOCK_STATUS, request.cookie, payloadLength);
    reply.writeUInt32BE(BASE_ALLOCATION_ID, CHUNK_HEADER);
    for (let i = 0; i < lengths.length; i++) {
      reply.writeUInt32BE(lengths[i], CHUNK_HEADER + 4 + 8 * i);
      reply.writeUInt32BE(types[i], CHUNK_HEADER + 8 + 8 * i);
    }
    this.out.write(reply);
  }

  private sendSimple(cookie: Buffer, error: number): void {
    const reply = Buffer.allocUnsafe(SIMPLE_HEADER);
    writeSimpleHeader(reply, error, cookie);
    this.out.write(reply);
  }

  /** An error reply: structured for commands that carry data when structured replies are on. */
  private sendError(request: Request, errno: string): void {
    const error = nbdErrorFor(errno, this.structuredReplies);
    const structured =
      this.structuredReplies && (request.command === Command.READ || request.command === Command.BLOCK_STATUS);
    if (!structured) {
      this.sendSimple(request.cookie, error);
      return;
    }
    const message = Buffer.from(errno, 'latin1');
    const reply = Buffer.allocUnsafe(CHUNK_HEADER + 6 + message.length);
    writeChunkHeader(reply, ReplyFlag.DONE, ReplyType.ERROR, request.cookie, 6 + message.length);
    reply.writeUInt32BE(error, CHUNK_HEADER);
    reply.writeUInt16BE(message.length, CHUNK_HEADER + 4);
    message.copy(reply, CHUNK_HEADER + 6);
    this.out.write(reply);
  }
}

function writeSimpleHeader(out: Buffer, error: number, cookie: Buffer): void {
  out.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  out.writeUInt32BE(error, 4);
  cookie.copy(out, 8);
}

function writeChunkHeader(out: Buffer, flags: number, type: number, cookie: Buffer, length: number): void {
  out.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  out.writeUInt16BE(flags, 4);
  out.writeUInt16BE(type, 6);
  cookie.copy(out, 8);
  out.writeUInt32BE(length, 16);
}

