/**
 * The transmission phase of an NBD client: requests sent as they come, any number in flight,
 * replies (simple or structured) matched to them by cookie. One instance per connection to
 * the upstream server; the nbd plugin shares one among all its clients when shared=true.
 */
import type { Duplex } from 'node:stream';
import { errnoName } from '../../host/errno.js';
import { PluginError } from '../../host/plugin.js';
import {
  Command,
  CommandFlag,
  REQUEST_MAGIC,
  ReplyFlag,
  ReplyType,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
  TransmissionFlag,
} from '../../host/protocol.js';
import type { ByteReader } from './byte-reader.js';
import type { ExportDetails, Negotiated } from './client-handshake.js';

/** Called with each base:allocation extent of a block status reply. */
export type ExtentCallback = (offset: bigint, length: number, flags: number) => void;

interface Pending {
  command: number;
  offset: bigint;
  /** The destination of a read. */
  buffer?: Uint8Array;
  onExtent?: ExtentCallback;
  /** The first error a structured reply reported; the request fails with it when done. */
  error?: PluginError;
  /** Bytes of a read that structured reply chunks have filled so far. */
  filled?: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The errno the server's NBD error value stands for (unknown values read as EINVAL). */
function errorOf(value: number, message: string): PluginError {
  const name = value === 0 ? 'EIO' : errnoName(value);
  const known = ['EPERM', 'EIO', 'ENOMEM', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'ENOTSUP', 'ESHUTDOWN'];
  const errno = name && known.includes(name) ? name : name === 'EOPNOTSUPP' ? 'ENOTSUP' : 'EINVAL';
  return new PluginError(message || `server replied with error ${errno}`, errno);
}

export class NbdClient {
  readonly details: ExportDetails;
  readonly structuredReplies: boolean;
  readonly baseAllocationId: number | undefined;
  private readonly stream: Duplex;
  private readonly reader: ByteReader;
  private readonly pending = new Map<bigint, Pending>();
  private nextCookie = 1n;
  /** Set once the connection failed or was closed: every later request fails with it. */
  private dead: PluginError | undefined;

  constructor(negotiated: Negotiated) {
    this.details = negotiated.export;
    this.structuredReplies = negotiated.structuredReplies;
    this.baseAllocationId = negotiated.baseAllocationId;
    this.stream = negotiated.stream;
    this.reader = negotiated.reader;
    void this.receive();
  }

  has(flag: number): boolean {
    return (this.details.flags & flag) !== 0;
  }

  get readOnly(): boolean {
    return this.has(TransmissionFlag.READ_ONLY);
  }

  pread(buffer: Uint8Array, offset: bigint): Promise<void> {
    return this.request(Command.READ, 0, offset, buffer.length, { buffer });
  }

  pwrite(data: Uint8Array, offset: bigint, fua: boolean): Promise<void> {
    return this.request(Command.WRITE, fua ? CommandFlag.FUA : 0, offset, data.length, {}, data);
  }

  flush(): Promise<void> {
    return this.request(Command.FLUSH, 0, 0n, 0, {});
  }

  trim(count: number, offset: bigint, flags: number): Promise<void> {
    return this.request(Command.TRIM, flags, offset, count, {});
  }

  zero(count: number, offset: bigint, flags: number): Promise<void> {
    return this.request(Command.WRITE_ZEROES, flags, offset, count, {});
  }

  cache(count: number, offset: bigint): Promise<void> {
    return this.request(Command.CACHE, 0, offset, count, {});
  }

  blockStatus(count: number, offset: bigint, reqOne: boolean, onExtent: ExtentCallback): Promise<void> {
    return this.request(Command.BLOCK_STATUS, reqOne ? CommandFlag.REQ_ONE : 0, offset, count, { onExtent });
  }

  /** NBD_CMD_DISC, then close. Requests still in flight fail. */
  disconnect(): void {
    if (this.dead) return;
    const header = Buffer.alloc(28);
    header.writeUInt32BE(REQUEST_MAGIC, 0);
    header.writeUInt16BE(Command.DISC, 6);
    this.fail(new PluginError('connection to the NBD server closed', 'ESHUTDOWN'), header);
  }

  private request(
    command: number,
    flags: number,
    offset: bigint,
    length: number,
    extra: Pick<Pending, 'buffer' | 'onExtent'>,
    payload?: Uint8Array,
  ): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const cookie = this.nextCookie++;
    const header = Buffer.alloc(28);
    header.writeUInt32BE(REQUEST_MAGIC, 0);
    header.writeUInt16BE(flags, 4);
    header.writeUInt16BE(command, 6);
    header.writeBigUInt64BE(cookie, 8);
    header.writeBigUInt64BE(offset, 16);
    header.writeUInt32BE(length, 24);
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, { command, offset, ...extra, resolve, reject });
      if (payload && payload.length <= 64 * 1024) {
        this.stream.write(Buffer.concat([header, payload]));
      } else {
        this.stream.write(header);
        // Not copied: the caller's buffer stays valid until we settle, and the server replies
        // only once it has read all of it (a failed connection drops what it had queued).
        if (payload) this.stream.write(payload);
      }
    });
  }

  /** The reply loop: runs until the connection ends. */
  private async receive(): Promise<void> {
    try {
      for (;;) {
        const magic = (await this.reader.read(4)).readUInt32BE(0);
        if (magic === SIMPLE_REPLY_MAGIC) await this.simpleReply();
        else if (magic === STRUCTURED_REPLY_MAGIC) await this.structuredChunk();
        else throw new Error(`invalid reply magic 0x${magic.toString(16)}`);
      }
    } catch (error) {
      this.fail(new PluginError(`NBD server connection: ${(error as Error).message}`, 'EIO'));
    }
  }

  private take(cookie: bigint): Pending {
    const p = this.pending.get(cookie);
    if (!p) throw new Error(`reply with unknown cookie ${cookie}`);
    return p;
  }

  private async simpleReply(): Promise<void> {
    const head = await this.reader.read(12);
    const error = head.readUInt32BE(0);
    const cookie = head.readBigUInt64BE(4);
    const p = this.take(cookie);
    this.pending.delete(cookie);
    if (error) return p.reject(errorOf(error, ''));
    if (p.command === Command.READ && p.buffer && p.buffer.length > 0) {
      await this.reader.readInto(p.buffer, 0, p.buffer.length);
    }
    p.resolve();
  }

  private async structuredChunk(): Promise<void> {
    const head = await this.reader.read(16);
    const flags = head.readUInt16BE(0);
    const type = head.readUInt16BE(2);
    const cookie = head.readBigUInt64BE(4);
    const length = head.readUInt32BE(12);
    const p = this.take(cookie);
    if (type === ReplyType.OFFSET_DATA) {
      // The data goes from the socket straight into the read's buffer.
      if (length < 8) throw new Error('read data chunk too short');
      const at = Number((await this.reader.read(8)).readBigUInt64BE(0) - p.offset);
      const size = length - 8;
      if (!p.buffer || at < 0 || at + size > p.buffer.length) throw new Error('read data chunk outside the request');
      await this.reader.readInto(p.buffer, at, size);
      p.filled = (p.filled ?? 0) + size;
    }
    const payload = length && type !== ReplyType.OFFSET_DATA ? await this.reader.read(length) : Buffer.alloc(0);
    switch (type) {
      case ReplyType.NONE:
      case ReplyType.OFFSET_DATA:
        break;
      case ReplyType.OFFSET_HOLE: {
        const at = Number(payload.readBigUInt64BE(0) - p.offset);
        const size = payload.readUInt32BE(8);
        if (!p.buffer || at < 0 || at + size > p.buffer.length) throw new Error('read hole chunk outside the request');
        p.buffer.fill(0, at, at + size);
        p.filled = (p.filled ?? 0) + size;
        break;
      }
      case ReplyType.BLOCK_STATUS: {
        if (payload.readUInt32BE(0) !== this.baseAllocationId || !p.onExtent) break;
        let offset = p.offset;
        try {
          for (let i = 4; i + 8 <= payload.length; i += 8) {
            const extentLength = payload.readUInt32BE(i);
            p.onExtent(offset, extentLength, payload.readUInt32BE(i + 4));
            offset += BigInt(extentLength);
          }
        } catch (error) {
          // The sink refused an extent: that request fails, the connection goes on.
          p.error ??= error instanceof PluginError ? error : new PluginError((error as Error).message);
        }
        break;
      }
      default:
        if (type & 0x8000) {
          const messageLength = payload.readUInt16BE(4);
          const message = payload.toString('utf8', 6, 6 + messageLength);
          p.error ??= errorOf(payload.readUInt32BE(0), message);
        }
    }
    if (flags & ReplyFlag.DONE) {
      this.pending.delete(cookie);
      // A read the server answered without covering all of it must not return stale bytes.
      if (!p.error && p.command === Command.READ && (p.filled ?? 0) < (p.buffer?.length ?? 0)) {
        p.error = new PluginError('server sent too little data for a read', 'EIO');
      }
      if (p.error) p.reject(p.error);
      else p.resolve();
    }
  }

  /** Fail every request, now and later; `last` is sent before the stream closes. */
  private fail(error: PluginError, last?: Buffer): void {
    if (this.dead) return;
    this.dead = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    this.reader.detach();
    this.stream.on('error', () => undefined);
    if (last) this.stream.end(last, () => this.stream.destroy());
    else this.stream.destroy();
  }
}
