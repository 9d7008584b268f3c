/**
 * The fixed newstyle handshake: option haggling until the client picks an export with
 * NBD_OPT_EXPORT_NAME or NBD_OPT_GO. Mirrors nbdkit's replies option by option.
 */
import type { Backend, ExportContext } from './backend.js';
import { RequestError } from './backend.js';
import type { InputReader } from './input.js';
import { logDebug } from './log.js';
import {
  BASE_ALLOCATION,
  BASE_ALLOCATION_ID,
  ClientFlag,
  HandshakeFlag,
  IHAVEOPT,
  Info,
  MAX_OPTIONS,
  MAX_OPTION_SIZE,
  MAX_STRING,
  NBDMAGIC,
  Option,
  OptionReply,
  REPLY_MAGIC_OPTION,
  TransmissionFlag,
} from './protocol.js';
import type { RequestSerializer } from './serialize.js';

/** What the handshake settled, handed to the transmission phase. */
export interface Negotiated {
  context: ExportContext;
  structuredReplies: boolean;
  baseAllocation: boolean;
  exportName: string;
}

export interface HandshakeOptions {
  noStructuredReplies: boolean;
  /** --no-mc: refuse meta contexts, so no block status. */
  noMetaContexts: boolean;
  /** --mask-handshake: the global handshake flags offered are masked with this. */
  handshakeMask: number;
  /** STARTTLS support: undefined when TLS is off. Resolves once the connection is upgraded. */
  startTls?: () => Promise<void>;
  /** --tls=require: only STARTTLS and ABORT are allowed before TLS. */
  tlsRequired: boolean;
}

/** A protocol violation that ends the connection without a reply. */
export class HandshakeAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandshakeAbort';
  }
}

export interface HandshakeIO {
  reader: InputReader;
  write(data: Buffer): void;
  /** Resolves once at most `bytes` of what was written wait to be sent (or the client has gone). */
  drained(bytes: number): Promise<void>;
  tls: boolean;
}

/**
 * Option replies queued for a client beyond this wait until the client reads some: a long
 * export list to a client that never reads must not be buffered whole (as transmission's
 * replies are bounded too).
 */
const MAX_UNSENT_OPTION_BYTES = 256 * 1024;

function optionName(option: number): string {
  for (const [name, value] of Object.entries(Option)) if (value === option) return `NBD_OPT_${name}`;
  return `option ${option}`;
}

function optionReply(option: number, type: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(20 + length);
  out.writeBigUInt64BE(REPLY_MAGIC_OPTION, 0);
  out.writeUInt32BE(option, 8);
  out.writeUInt32BE(type >>> 0, 12);
  out.writeUInt32BE(length, 16);
  payload?.copy(out, 20);
  return out;
}

/** Read a length-prefixed string out of an option payload, or undefined if it does not fit. */
function lengthPrefixed(data: Buffer, at: number): { text: string; next: number } | undefined {
  if (at + 4 > data.length) return undefined;
  const length = data.readUInt32BE(at);
  if (length > MAX_STRING || at + 4 + length > data.length) return undefined;
  return { text: data.toString('utf8', at + 4, at + 4 + length), next: at + 4 + length };
}

export class Handshake {
  private structuredReplies = false;
  /** The export list goes out once per connection; nbdkit refuses a repeat with ERR_INVALID. */
  private listSent = false;
  private baseAllocation = false;
  private metaContextExport: string | undefined;

  constructor(
    private readonly io: HandshakeIO,
    private readonly backend: Backend,
    private readonly serializer: RequestSerializer,
    private readonly options: HandshakeOptions,
  ) {}

  async run(): Promise<Negotiated | undefined> {
    const greeting = Buffer.allocUnsafe(18);
    greeting.writeBigUInt64BE(NBDMAGIC, 0);
    greeting.writeBigUInt64BE(IHAVEOPT, 8);
    const offered = (HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES) & this.options.handshakeMask;
    greeting.writeUInt16BE(offered, 16);
    this.io.write(greeting);

    // The client may only echo what was offered (the client flags mirror the handshake flags).
    const clientFlags = (await this.io.reader.read(4)).readUInt32BE(0);
    if (clientFlags & ~offered) {
      throw new HandshakeAbort(`client sent unknown flags 0x${clientFlags.toString(16)}`);
    }
    const fixed = (clientFlags & ClientFlag.FIXED_NEWSTYLE) !== 0;
    const noZeroes = (clientFlags & ClientFlag.NO_ZEROES) !== 0;

    for (let count = 0; count < MAX_OPTIONS; count++) {
      const header = await this.io.reader.read(16);
      if (header.readBigUInt64BE(0) !== IHAVEOPT) {
        throw new HandshakeAbort(`unknown option version 0x${header.readBigUInt64BE(0).toString(16)}`);
      }
      const option = header.readUInt32BE(8);
      const length = header.readUInt32BE(12);
      if (length > MAX_OPTION_SIZE) throw new HandshakeAbort(`client option data too long (${length})`);
      logDebug(`newstyle negotiation: ${optionName(option)}: length ${length}`);

      if (!fixed && option !== Option.EXPORT_NAME) {
        await this.io.reader.skip(length);
        this.io.write(optionReply(option, OptionReply.ERR_INVALID));
        continue;
      }
      if (this.options.tlsRequired && !this.io.tls && option !== Option.ABORT && option !== Option.STARTTLS) {
        if (option === Option.EXPORT_NAME) throw new HandshakeAbort('NBD_OPT_EXPORT_NAME before TLS under --tls=require');
        await this.io.reader.skip(length);
        this.io.write(optionReply(option, OptionReply.ERR_TLS_REQD));
        continue;
      }

      switch (option) {
        case Option.EXPORT_NAME: {
          if (length > MAX_STRING) throw new HandshakeAbort('export name too long');
          const name = (await this.io.reader.read(length)).toString('utf8');
          const context = await this.openOrAbort(name);
          const reply = Buffer.alloc(noZeroes ? 10 : 134);
          reply.writeBigUInt64BE(context.size, 0);
          reply.writeUInt16BE(this.transmissionFlags(context), 8);
          this.io.write(reply);
          return this.negotiated(context, name);
        }
        case Option.ABORT:
          await this.io.reader.skip(length);
          this.io.write(optionReply(option, OptionReply.ACK));
          return undefined;
        case Option.LIST:
          await this.list(length);
          break;
        case Option.STARTTLS:
          await this.startTls(length);
          break;
        case Option.INFO:
        case Option.GO: {
          const data = await this.io.reader.read(length);
          const context = await this.infoOrGo(option, data);
          if (context) return this.negotiated(context, this.goName(data));
          break;
        }
        case Option.STRUCTURED_REPLY:
          await this.io.reader.skip(length);
          if (length !== 0) this.io.write(optionReply(option, OptionReply.ERR_INVALID));
          else if (this.options.noStructuredReplies) this.io.write(optionReply(option, OptionReply.ERR_UNSUP));
          else {
            this.structuredReplies = true;
            this.io.write(optionReply(option, OptionReply.ACK));
          }
          break;
        case Option.LIST_META_CONTEXT:
        case Option.SET_META_CONTEXT:
          if (this.options.noMetaContexts) {
            await this.io.reader.skip(length);
            this.io.write(optionReply(option, OptionReply.ERR_UNSUP));
          } else {
            this.metaContext(option, await this.io.reader.read(length));
          }
          break;
        default:
          await this.io.reader.skip(length);
          this.io.write(optionReply(option, OptionReply.ERR_UNSUP));
      }
    }
    throw new HandshakeAbort('client spent too much time negotiating without selecting an export');
  }

  private negotiated(context: ExportContext, name: string): Negotiated {
    // A meta context chosen for another export does not carry over (NBD spec, SET_META_CONTEXT).
    const baseAllocation = this.baseAllocation && this.metaContextExport === name;
    return { context, structuredReplies: this.structuredReplies, baseAllocation, exportName: name };
  }

  private goName(data: Buffer): string {
    return data.toString('utf8', 4, 4 + data.readUInt32BE(0));
  }

  private transmissionFlags(context: ExportContext): number {
    return this.structuredReplies ? context.eflags | TransmissionFlag.SEND_DF : context.eflags;
  }

  private async open(name: string): Promise<ExportContext> {
    return this.backend.open(name, this.io.tls, this.serializer);
  }

  private async openOrAbort(name: string): Promise<ExportContext> {
    try {
      return await this.open(name);
    } catch (error) {
      throw new HandshakeAbort(`open of export "${name}" failed: ${(error as Error).message}`);
    }
  }

  private async list(length: number): Promise<void> {
    await this.io.reader.skip(length);
    if (length !== 0) {
      this.io.write(optionReply(Option.LIST, OptionReply.ERR_INVALID));
      return;
    }
    if (this.listSent) {
      logDebug('newstyle negotiation: NBD_OPT_LIST: export list already advertised');
      this.io.write(optionReply(Option.LIST, OptionReply.ERR_INVALID));
      return;
    }
    let exports;
    try {
      exports = await this.backend.listExports(this.backend.readonly, this.io.tls);
    } catch {
      this.io.write(optionReply(Option.LIST, OptionReply.ERR_PLATFORM));
      return;
    }
    for (const entry of exports) {
      const name = Buffer.from(entry.name, 'utf8');
      const description = Buffer.from(entry.description ?? '', 'utf8');
      const payload = Buffer.allocUnsafe(4 + name.length + description.length);
      payload.writeUInt32BE(name.length, 0);
      name.copy(payload, 4);
      description.copy(payload, 4 + name.length);
      this.io.write(optionReply(Option.LIST, OptionReply.SERVER, payload));
      await this.io.drained(MAX_UNSENT_OPTION_BYTES);
    }
    this.io.write(optionReply(Option.LIST, OptionReply.ACK));
    this.listSent = true;
  }

  private async startTls(length: number): Promise<void> {
    await this.io.reader.skip(length);
    if (length !== 0) {
      this.io.write(optionReply(Option.STARTTLS, OptionReply.ERR_INVALID));
      return;
    }
    if (!this.options.startTls) {
      this.io.write(optionReply(Option.STARTTLS, OptionReply.ERR_POLICY));
      return;
    }
    if (this.io.tls) {
      this.io.write(optionReply(Option.STARTTLS, OptionReply.ERR_INVALID));
      return;
    }
    this.io.write(optionReply(Option.STARTTLS, OptionReply.ACK));
    await this.options.startTls();
    // Nothing negotiated in plaintext survives into the secure session: a man in the middle
    // could have sent it (the class of nbdkit's CVE-2021-3716).
    this.structuredReplies = false;
    this.baseAllocation = false;
    this.metaContextExport = undefined;
  }

  /** NBD_OPT_INFO and NBD_OPT_GO. Returns the open export for a successful GO. */
  private async infoOrGo(option: number, data: Buffer): Promise<ExportContext | undefined> {
    const invalid = (why: string): undefined => {
      logDebug(`newstyle negotiation: ${optionName(option)}: ${why}`);
      this.io.write(optionReply(option, OptionReply.ERR_INVALID));
      return undefined;
    };
    if (data.length < 6) return invalid('option length < 6');
    const nameLength = data.readUInt32BE(0);
    if (nameLength > data.length - 6 || nameLength > MAX_STRING) return invalid('export name too long');
    const infoCount = data.readUInt16BE(4 + nameLength);
    if (data.length !== 4 + nameLength + 2 + 2 * infoCount) return invalid('number of information requests incorrect');
    const name = data.toString('utf8', 4, 4 + nameLength);

    let context: ExportContext;
    try {
      context = await this.open(name);
    } catch (error) {
      const message = error instanceof RequestError ? error.message : String(error);
      logDebug(`newstyle negotiation: ${optionName(option)}: open failed: ${message}`);
      this.io.write(optionReply(option, OptionReply.ERR_UNKNOWN));
      return undefined;
    }

    const exportInfo = Buffer.allocUnsafe(12);
    exportInfo.writeUInt16BE(Info.EXPORT, 0);
    exportInfo.writeBigUInt64BE(context.size, 2);
    exportInfo.writeUInt16BE(this.transmissionFlags(context), 10);
    this.io.write(optionReply(option, OptionReply.INFO, exportInfo));

    for (let i = 0; i < infoCount; i++) {
      const request = data.readUInt16BE(4 + nameLength + 2 + 2 * i);
      if (request === Info.NAME) {
        const text = Buffer.from(context.exportName, 'utf8');
        this.io.write(optionReply(option, OptionReply.INFO, Buffer.concat([u16(Info.NAME), text])));
      } else if (request === Info.DESCRIPTION && context.description !== undefined) {
        const text = Buffer.from(context.description, 'utf8');
        this.io.write(optionReply(option, OptionReply.INFO, Buffer.concat([u16(Info.DESCRIPTION), text])));
      } else if (request === Info.BLOCK_SIZE && context.blockSize) {
        const payload = Buffer.allocUnsafe(14);
        payload.writeUInt16BE(Info.BLOCK_SIZE, 0);
        payload.writeUInt32BE(context.blockSize.minimum, 2);
        payload.writeUInt32BE(context.blockSize.preferred, 6);
        payload.writeUInt32BE(context.blockSize.maximum >>> 0, 10);
        this.io.write(optionReply(option, OptionReply.INFO, payload));
      }
    }
    this.io.write(optionReply(option, OptionReply.ACK));
    if (option === Option.INFO) {
      await context.close();
      return undefined;
    }
    return context;
  }

  private metaContext(option: number, data: Buffer): void {
    const invalid = (why: string): void => {
      logDebug(`newstyle negotiation: ${optionName(option)}: invalid option: ${why}`);
      this.io.write(optionReply(option, OptionReply.ERR_INVALID));
    };
    const isSet = option === Option.SET_META_CONTEXT;
    if (isSet && !this.structuredReplies) return invalid('structured replies not negotiated');
    const exportName = lengthPrefixed(data, 0);
    if (!exportName) return invalid('bad export name');
    if (exportName.next + 4 > data.length) return invalid('missing number of queries');
    const queryCount = data.readUInt32BE(exportName.next);
    let at = exportName.next + 4;
    const queries: string[] = [];
    for (let i = 0; i < queryCount; i++) {
      const query = lengthPrefixed(data, at);
      if (!query) return invalid('bad query');
      queries.push(query.text);
      at = query.next;
    }
    if (at !== data.length) return invalid('trailing bytes after queries');

    if (isSet) {
      this.baseAllocation = false;
      this.metaContextExport = exportName.text;
    }
    const replyContext = (id: number): void => {
      const name = Buffer.from(BASE_ALLOCATION, 'latin1');
      const payload = Buffer.allocUnsafe(4 + name.length);
      payload.writeUInt32BE(id, 0);
      name.copy(payload, 4);
      this.io.write(optionReply(option, OptionReply.META_CONTEXT, payload));
    };
    if (queryCount === 0 && !isSet) replyContext(0);
    for (const query of queries) {
      if (!isSet && query === 'base:') replyContext(0);
      else if (query === BASE_ALLOCATION) {
        replyContext(isSet ? BASE_ALLOCATION_ID : 0);
        if (isSet) this.baseAllocation = true;
      }
    }
    this.io.write(optionReply(option, OptionReply.ACK));
  }
}

function u16(value: number): Buffer {
  const out = Buffer.allocUnsafe(2);
  out.writeUInt16BE(value, 0);
  return out;
}
