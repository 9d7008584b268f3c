/**
 * The client side of the NBD handshake (fixed newstyle, and oldstyle servers), as the nbd
 * plugin needs it: STARTTLS, structured replies, the base:allocation meta context, then
 * NBD_OPT_GO (falling back to NBD_OPT_EXPORT_NAME), NBD_OPT_LIST and NBD_OPT_INFO.
 *
 * The wire constants are the server's (src/host/protocol.ts); only the encoding of the
 * client's half lives here.
 */
import type { Duplex } from 'node:stream';
import {
  BASE_ALLOCATION,
  ClientFlag,
  HandshakeFlag,
  IHAVEOPT,
  Info,
  NBDMAGIC,
  Option,
  OptionReply,
  REPLY_MAGIC_OPTION,
} from '../../host/protocol.js';
import { ByteReader } from './byte-reader.js';

/** The "magic" that follows NBDMAGIC from an oldstyle server. */
const OLDSTYLE_MAGIC = 0x00420281861253n;

export type TlsMode = 'off' | 'on' | 'require';

/** Everything learnt about the export by NBD_OPT_GO (or the oldstyle/EXPORT_NAME header). */
export interface ExportDetails {
  size: bigint;
  /** NBD transmission flags. */
  flags: number;
  /** From NBD_INFO_BLOCK_SIZE; undefined when the server sent none. */
  blockSize?: { minimum: number; preferred: number; maximum: number };
  description?: string;
  /** The server's canonical name for the export (NBD_INFO_NAME). */
  name?: string;
}

/** The negotiated connection, ready for transmission. */
export interface Negotiated {
  stream: Duplex;
  reader: ByteReader;
  export: ExportDetails;
  structuredReplies: boolean;
  /** The id the server gave base:allocation, when it agreed to it. */
  baseAllocationId?: number;
}

export class HandshakeError extends Error {}

const OPTION_NAMES: Record<number, string> = {
  [Option.EXPORT_NAME]: 'export_name',
  [Option.LIST]: 'list',
  [Option.STARTTLS]: 'starttls',
  [Option.INFO]: 'info',
  [Option.GO]: 'go',
  [Option.STRUCTURED_REPLY]: 'structured_reply',
  [Option.SET_META_CONTEXT]: 'set_meta_context',
};

interface OptionReplyMessage {
  type: number;
  payload: Buffer;
}

function stringField(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/**
 * One connection in its option phase. `start` reads the greeting; then `list`, `info`, `go`
 * or `abort` may be called, one at a time.
 */
export class OptionSession {
  private noZeroes = false;
  private oldstyle: ExportDetails | undefined;
  structuredReplies = false;
  tlsActive = false;

  private constructor(
    private stream: Duplex,
    private reader: ByteReader,
  ) {}

  /**
   * Read the greeting and send the client flags; then STARTTLS (per `tls`, with `upgrade`
   * making the TLS socket) and ask for structured replies.
   */
  static async start(stream: Duplex, tls: TlsMode, upgrade: (raw: Duplex) => Promise<Duplex>): Promise<OptionSession> {
    const session = new OptionSession(stream, new ByteReader(stream));
    const greeting = await session.reader.read(16);
    if (greeting.readBigUInt64BE(0) !== NBDMAGIC) throw new HandshakeError('handshake: server did not send expected NBD magic');
    const style = greeting.readBigUInt64BE(8);
    if (style === OLDSTYLE_MAGIC) {
      const rest = await session.reader.read(8 + 4 + 124);
      if (tls === 'require') throw new HandshakeError('handshake: server is oldstyle, but TLS is required');
      session.oldstyle = { size: rest.readBigUInt64BE(0), flags: rest.readUInt16BE(10) };
      return session;
    }
    if (style !== IHAVEOPT) throw new HandshakeError('handshake: server is not newstyle or oldstyle');
    const serverFlags = (await session.reader.read(2)).readUInt16BE(0);
    if (!(serverFlags & HandshakeFlag.FIXED_NEWSTYLE)) {
      throw new HandshakeError('handshake: server is not fixed newstyle');
    }
    session.noZeroes = (serverFlags & HandshakeFlag.NO_ZEROES) !== 0;
    const clientFlags = Buffer.alloc(4);
    clientFlags.writeUInt32BE(ClientFlag.FIXED_NEWSTYLE | (session.noZeroes ? ClientFlag.NO_ZEROES : 0));
    stream.write(clientFlags);

    if (tls !== 'off') {
      const reply = await session.option(Option.STARTTLS, Buffer.alloc(0));
      if (reply.type === OptionReply.ACK) {
        session.reader.detach();
        session.stream = await upgrade(stream);
        session.reader = new ByteReader(session.stream);
        session.tlsActive = true;
      } else if (tls === 'require') {
        throw new HandshakeError(`handshake: server refused TLS, but TLS is required${session.errorText(reply)}`);
      }
    }
    const structured = await session.option(Option.STRUCTURED_REPLY, Buffer.alloc(0));
    session.structuredReplies = structured.type === OptionReply.ACK;
    return session;
  }

  get isOldstyle(): boolean {
    return this.oldstyle !== undefined;
  }

  /** NBD_OPT_LIST: the server's exports with their descriptions. */
  async list(): Promise<{ name: string; description: string }[]> {
    if (this.oldstyle) throw new HandshakeError('opt_list: server is oldstyle and has no export list');
    this.send(Option.LIST, Buffer.alloc(0));
    const exports: { name: string; description: string }[] = [];
    for (;;) {
      const reply = await this.readReply(Option.LIST);
      if (reply.type === OptionReply.ACK) return exports;
      if (reply.type !== OptionReply.SERVER) {
        throw new HandshakeError(`server replied with error to opt_list request${this.errorText(reply)}`);
      }
      const length = reply.payload.readUInt32BE(0);
      exports.push({
        name: reply.payload.toString('utf8', 4, 4 + length),
        description: reply.payload.toString('utf8', 4 + length),
      });
    }
  }

  /** NBD_OPT_INFO for one export: its details without entering transmission. */
  async info(exportName: string): Promise<ExportDetails> {
    if (this.oldstyle) return this.oldstyle;
    return this.exportRequest(Option.INFO, exportName);
  }

  /** Choose the export and enter transmission. */
  async go(exportName: string): Promise<Negotiated> {
    if (this.oldstyle) return { stream: this.stream, reader: this.reader, export: this.oldstyle, structuredReplies: false };
    let baseAllocationId: number | undefined;
    if (this.structuredReplies) baseAllocationId = await this.setMetaContext(exportName);
    let details: ExportDetails;
    try {
      details = await this.exportRequest(Option.GO, exportName);
    } catch (error) {
      if (!(error instanceof UnsupportedOption)) throw error;
      // A server older than NBD_OPT_GO: the old way, with no error reply possible.
      this.stream.write(this.optionHeader(Option.EXPORT_NAME, Buffer.from(exportName, 'utf8')));
      const header = await this.reader.read(this.noZeroes ? 10 : 134);
      details = { size: header.readBigUInt64BE(0), flags: header.readUInt16BE(8) };
    }
    return { stream: this.stream, reader: this.reader, export: details, structuredReplies: this.structuredReplies, baseAllocationId };
  }

  /** NBD_OPT_ABORT and close: for connections opened only to list or to ask. */
  abort(): void {
    if (!this.oldstyle) this.send(Option.ABORT, Buffer.alloc(0));
    this.reader.detach();
    this.stream.end();
    this.stream.destroy();
  }

  private async setMetaContext(exportName: string): Promise<number | undefined> {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(1);
    this.send(Option.SET_META_CONTEXT, Buffer.concat([stringField(exportName), count, stringField(BASE_ALLOCATION)]));
    let id: number | undefined;
    for (;;) {
      const reply = await this.readReply(Option.SET_META_CONTEXT);
      if (reply.type === OptionReply.META_CONTEXT) {
        if (reply.payload.toString('utf8', 4) === BASE_ALLOCATION) id = reply.payload.readUInt32BE(0);
      } else {
        // ACK ends the list; an error means no contexts, which is not fatal.
        return reply.type === OptionReply.ACK ? id : undefined;
      }
    }
  }

  private async exportRequest(option: number, exportName: string): Promise<ExportDetails> {
    const infos = [Info.NAME, Info.DESCRIPTION, Info.BLOCK_SIZE];
    const request = Buffer.alloc(2 + 2 * infos.length);
    request.writeUInt16BE(infos.length, 0);
    infos.forEach((info, i) => request.writeUInt16BE(info, 2 + 2 * i));
    this.send(option, Buffer.concat([stringField(exportName), request]));
    const details: Partial<ExportDetails> = {};
    for (;;) {
      const reply = await this.readReply(option);
      if (reply.type === OptionReply.ACK) {
        if (details.size === undefined) throw new HandshakeError(`opt_${OPTION_NAMES[option]}: server sent no export size`);
        return details as ExportDetails;
      }
      if (reply.type === OptionReply.INFO) {
        const p = reply.payload;
        switch (p.readUInt16BE(0)) {
          case Info.EXPORT:
            details.size = p.readBigUInt64BE(2);
            details.flags = p.readUInt16BE(10);
            break;
          case Info.NAME:
            details.name = p.toString('utf8', 2);
            break;
          case Info.DESCRIPTION:
            details.description = p.toString('utf8', 2);
            break;
          case Info.BLOCK_SIZE:
            details.blockSize = { minimum: p.readUInt32BE(2), preferred: p.readUInt32BE(6), maximum: p.readUInt32BE(10) };
            break;
        }
        continue;
      }
      if (reply.type === OptionReply.ERR_UNSUP && option === Option.GO) throw new UnsupportedOption();
      throw new HandshakeError(`server replied with error to opt_${OPTION_NAMES[option]} request${this.errorText(reply)}`);
    }
  }

  private optionHeader(option: number, payload: Buffer): Buffer {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(IHAVEOPT, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(payload.length, 12);
    return Buffer.concat([header, payload]);
  }

  private send(option: number, payload: Buffer): void {
    this.stream.write(this.optionHeader(option, payload));
  }

  private async option(option: number, payload: Buffer): Promise<OptionReplyMessage> {
    this.send(option, payload);
    return this.readReply(option);
  }

  private async readReply(option: number): Promise<OptionReplyMessage> {
    const header = await this.reader.read(20);
    if (header.readBigUInt64BE(0) !== REPLY_MAGIC_OPTION) throw new HandshakeError('handshake: bad option reply magic');
    if (header.readUInt32BE(8) !== option) throw new HandshakeError('handshake: option reply to another option');
    const length = header.readUInt32BE(16);
    if (length > 64 * 1024 * 1024) throw new HandshakeError('handshake: option reply too long');
    return { type: header.readUInt32BE(12), payload: length ? await this.reader.read(length) : Buffer.alloc(0) };
  }

  /** ": message" from an error reply's payload, or nothing. */
  private errorText(reply: OptionReplyMessage): string {
    const text = reply.payload.toString('utf8');
    return text ? `: ${text}` : '';
  }
}

class UnsupportedOption extends Error {}
