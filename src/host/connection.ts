/**
 * One client connection from accept to close: preconnect, handshake, transmission, close.
 * Nothing a client does can throw out of here: every failure ends this connection only.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Backend } from './backend.js';
import { fsNative } from './fs-native.js';
import { Handshake, HandshakeAbort, type HandshakeIO, type HandshakeOptions } from './handshake.js';
import { ConnectionClosedError, InputReader } from './input.js';
import { logDebug, logError } from './log.js';
import { type TlsConfig, upgradeToTls } from './tls.js';
import { Transmission, copyParts, type ReplyChannel } from './transmission.js';

/** The two directions of a client: one socket, or stdin/stdout under -s. */
export interface ClientStreams {
  /** A reader already fed by the socket (direct reads); else one is made on `input`. */
  reader?: InputReader;
  /** The socket's descriptor when it is a plain socket the server may write to itself. */
  socketFd?: number;
  input: Readable;
  output: Writable;
  /** Both directions as one stream, for wrapping in TLS (made on demand: it reads its input). */
  transport(): Duplex;
  /** Ends the connection for good; at once when `now`, else after queued replies are sent. */
  close(now?: boolean): void;
}

function writeTo(output: Writable, data: Buffer): void {
  if (!output.destroyed) output.write(data);
}

/** The most parts fs-native's sendBuffers takes in one reply. */
const SEND_PARTS_MAX = 64;

let nextConnectionId = 0;

/**
 * Replies completed in the same event-loop turn leave in one writev: the stream is corked at the
 * first reply of a turn and uncorked once that turn's callbacks and microtasks have run.
 * `socketFd` (a plain socket) lets read replies go straight from a file with sendfile.
 */
function replyChannel(output: Writable, socketFd: number | undefined): ReplyChannel {
  let corked = false;
  const uncork = (): void => {
    corked = false;
    output.uncork();
  };
  const write = (data: Buffer, sent?: () => void): void => {
    if (output.destroyed) return;
    if (!corked) {
      corked = true;
      output.cork();
      process.nextTick(uncork);
    }
    output.write(data, sent);
  };
  /**
   * Send a reply on the socket itself when nothing is queued in front of it: `send` returns the
   * bytes that left and leaves the unsent data (`count` bytes of it in all) at the start of
   * `spill`, which is queued behind with the rest of the header. False when it cannot be done.
   */
  const sendDirect = (header: Buffer, count: number, spill: Buffer, release: () => void, send: () => number): boolean => {
    // Bytes already queued (corked ones included) must leave first.
    if (output.destroyed || output.writableLength > 0) return false;
    let sent: number;
    try {
      sent = send();
    } catch (error) {
      // Nothing sent: the usual way will meet (and report) the same error properly.
      if (((error as { sent?: number }).sent ?? 0) === 0) return false;
      // Half a reply cannot be taken back: the connection is over.
      logError(`read reply cut short, closing the connection: ${(error as Error).message}`);
      output.destroy(error as Error);
      release();
      return true;
    }
    if (sent < header.length) write(header.subarray(sent));
    const rest = header.length + count - sent;
    if (rest === 0) release();
    else write(spill.subarray(0, Math.min(rest, count)), release);
    return true;
  };
  const native = fsNative;
  const direct = socketFd !== undefined && native !== null ? { fd: socketFd, native } : undefined;
  return {
    write,
    sendFromFile: direct
      ? (header, fileFd, offset, count, spill, release) =>
          sendDirect(header, count, spill, release, () => direct.native.sendReply(direct.fd, header, fileFd, offset, count, spill))
      : undefined,
    sendFromMemory: direct
      ? (header, parts, count, spill, release) =>
          parts.length <= SEND_PARTS_MAX &&
          sendDirect(header, count, spill, release, () => {
            const sent = direct.native.sendBuffers(direct.fd, header, parts);
            // The views are only valid now: what did not leave is copied while they still are.
            const dataSent = Math.max(0, sent - header.length);
            if (dataSent < count) copyParts(parts, dataSent, spill);
            return sent;
          })
      : undefined,
    get writableLength() {
      return output.writableLength;
    },
    drained: () =>
      new Promise<void>((resolve) => {
        if (output.destroyed || !output.writableNeedDrain) return resolve();
        const done = (): void => {
          output.off('drain', done);
          output.off('close', done);
          resolve();
        };
        output.on('drain', done);
        output.on('close', done);
      }),
  };
}

/** Per-server settings every connection needs. */
export interface ConnectionOptions {
  noStructuredReplies: boolean;
  noMetaContexts: boolean;
  /** TLS settings when --tls is on or require. */
  tls: TlsConfig | undefined;
  /** A client that has not chosen an export after this long is dropped. */
  handshakeTimeoutMs: number;
  /** Resolves when the server shuts down: stop reading requests, finish those in flight. */
  stopping: Promise<void>;
}

export async function serveConnection(
  streams: ClientStreams,
  backend: Backend,
  options: ConnectionOptions,
): Promise<void> {
  const id = nextConnectionId++;
  // A vanished client surfaces as an 'error' on write; without a listener Node would crash.
  streams.output.on('error', (error) => logDebug(`connection ${id}: write: ${error.message}`));
  const serializer = backend.serverLocks.forConnection();
  const reader = streams.reader ?? new InputReader(streams.input);
  void options.stopping.then(() => reader.stop());
  // After STARTTLS, replies go to the TLS socket instead of the raw one.
  let output: Writable = streams.output;
  const io: HandshakeIO = { reader, write: (data) => writeTo(output, data), tls: false };
  const tls = options.tls;
  const handshakeOptions: HandshakeOptions = {
    noStructuredReplies: options.noStructuredReplies,
    noMetaContexts: options.noMetaContexts,
    tlsRequired: tls?.required ?? false,
    startTls: tls
      ? async () => {
          if (reader.pending > 0) throw new HandshakeAbort('client sent data before the TLS handshake');
          reader.detach();
          const secure = await upgradeToTls(streams.transport(), tls);
          secure.on('error', (error) => logDebug(`connection ${id}: tls: ${error.message}`));
          output = secure;
          reader.attach(secure);
          io.tls = true;
          logDebug(`connection ${id}: TLS established`);
        }
      : undefined,
  };
  const timer = setTimeout(() => {
    logError(`connection ${id}: handshake not finished after ${options.handshakeTimeoutMs / 1000} s, dropping the client`);
    streams.close(true);
  }, options.handshakeTimeoutMs);
  try {
    await backend.preconnect(backend.readonly);
    const handshake = new Handshake(io, backend, serializer, handshakeOptions);
    const negotiated = await handshake.run();
    clearTimeout(timer);
    if (!negotiated) return;
    logDebug(`connection ${id}: handshake complete, export "${negotiated.exportName}"`);
    try {
      const transmission = new Transmission(
        reader,
        // After STARTTLS the bytes must go through TLS: no writing to the socket underneath.
        replyChannel(output, output === streams.output ? streams.socketFd : undefined),
        negotiated.context,
        negotiated.structuredReplies,
        negotiated.baseAllocation,
      );
      await transmission.run();
    } finally {
      await negotiated.context.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (error instanceof ConnectionClosedError || code === 'EPIPE' || code === 'ECONNRESET') {
      // A client going away is its own business, not an error of the server.
      logDebug(`connection ${id}: client closed the connection`);
    } else if (error instanceof HandshakeAbort) logError(error.message);
    else logError(`connection ${id}: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
    reader.detach();
    if (output !== streams.output) output.end();
    streams.close();
    serializer.release();
  }
}
