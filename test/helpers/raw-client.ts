/**
 * A deliberately impolite NBD client for tests: it sends exactly the bytes it is told to, so that
 * tests can send what libnbd and qemu never would (unknown options and commands, bad ranges,
 * oversized requests) and read the server's raw replies.
 */
import { connect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

export const NBD_OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8, LIST_META_CONTEXT: 9, SET_META_CONTEXT: 10 };
export const NBD_REP = { ACK: 1, SERVER: 2, INFO: 3, META_CONTEXT: 4, ERR_UNSUP: 0x80000001, ERR_POLICY: 0x80000002, ERR_INVALID: 0x80000003, ERR_UNKNOWN: 0x80000006 };
export const NBD_CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 };
export const NBD_ERR = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95 };

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export interface SimpleReply {
  error: number;
  cookie: bigint;
  data: Buffer;
}

export class RawClient {
  private buffered = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private closed = false;
  handshakeFlags = 0;

  private constructor(public socket: Socket) {
    this.listen(socket);
  }

  private listen(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => undefined);
  }

  /**
   * NBD_OPT_STARTTLS, then the client side of the TLS handshake with these options (a client
   * certificate, the CA to trust, ...). Rejects if the server refuses STARTTLS or the handshake.
   */
  async startTls(options: ConnectionOptions): Promise<void> {
    this.sendOption(NBD_OPT.STARTTLS);
    const reply = await this.readOptionReply();
    if (reply.type !== NBD_REP.ACK) throw new Error(`STARTTLS refused: 0x${reply.type.toString(16)}`);
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = tlsConnect({ socket: plain, servername: 'localhost', ...options });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.listen(secure);
  }

  /** A client on a connected socket (one end of a pair whose other end a server was given). */
  static over(socket: Socket): RawClient {
    return new RawClient(socket);
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Exactly n bytes from the server; rejects if it closes first. */
  async read(n: number, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered.length < n) {
      if (this.closed) throw new Error(`server closed the connection (wanted ${n} bytes, have ${this.buffered.length})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = undefined;
    }
    const out = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return out;
  }

  /** Resolves true when the server closes the connection within the time limit. */
  async closedByServer(timeoutMs = 10_000): Promise<boolean> {
    if (this.closed) return true;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.closed;
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  end(): void {
    this.socket.destroy();
  }

  /** Read the greeting and send client flags (fixed newstyle, no zeroes by default). */
  async greet(clientFlags = 3): Promise<void> {
    const greeting = await this.read(18);
    if (greeting.readBigUInt64BE(0) !== NBDMAGIC || greeting.readBigUInt64BE(8) !== IHAVEOPT) {
      throw new Error('bad greeting');
    }
    this.handshakeFlags = greeting.readUInt16BE(16);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(clientFlags, 0);
    this.write(flags);
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): void {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(IHAVEOPT, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(declaredLength, 12);
    this.write(Buffer.concat([header, data]));
  }

  async readOptionReply(timeoutMs?: number): Promise<OptionReply> {
    const header = await this.read(20, timeoutMs);
    if (header.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw new Error('bad option reply magic');
    const length = header.readUInt32BE(16);
    return { option: header.readUInt32BE(8), type: header.readUInt32BE(12), data: await this.read(length, timeoutMs) };
  }

  /** NBD_OPT_GO on an export; returns the size and transmission flags. */
  async go(name = ''): Promise<{ size: bigint; flags: number }> {
    const nameBytes = Buffer.from(name);
    const data = Buffer.alloc(4 + nameBytes.length + 2);
    data.writeUInt32BE(nameBytes.length, 0);
    nameBytes.copy(data, 4);
    this.sendOption(NBD_OPT.GO, data);
    let size = -1n;
    let flags = 0;
    for (;;) {
      const reply = await this.readOptionReply();
      if (reply.type === NBD_REP.ACK) break;
      if (reply.type !== NBD_REP.INFO) throw new Error(`GO failed with reply type 0x${reply.type.toString(16)}`);
      if (reply.data.readUInt16BE(0) === 0) {
        size = reply.data.readBigUInt64BE(2);
        flags = reply.data.readUInt16BE(10);
      }
    }
    return { size, flags };
  }

  /** Greet and GO on the default export. */
  async handshake(): Promise<{ size: bigint; flags: number }> {
    await this.greet();
    return this.go('');
  }

  sendRequest(command: number, offset: bigint, length: number, options: { flags?: number; cookie?: bigint; payload?: Buffer } = {}): void {
    const header = Buffer.alloc(28);
    header.writeUInt32BE(REQUEST_MAGIC, 0);
    header.writeUInt16BE(options.flags ?? 0, 4);
    header.writeUInt16BE(command, 6);
    header.writeBigUInt64BE(options.cookie ?? 1n, 8);
    header.writeBigUInt64BE(offset, 16);
    header.writeUInt32BE(length, 24);
    this.write(options.payload ? Buffer.concat([header, options.payload]) : header);
  }

  /** A simple reply; dataLength bytes of payload follow a successful read. */
  async readSimpleReply(dataLength = 0): Promise<SimpleReply> {
    const header = await this.read(16);
    if (header.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new Error(`bad reply magic 0x${header.readUInt32BE(0).toString(16)}`);
    const error = header.readUInt32BE(4);
    const data = error === 0 && dataLength > 0 ? await this.read(dataLength) : Buffer.alloc(0);
    return { error, cookie: header.readBigUInt64BE(8), data };
  }
}
