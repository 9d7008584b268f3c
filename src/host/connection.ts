/**
 * One client connection from accept to close: preconnect, handshake, transmission, close.
 * Nothing a client does can throw out of here: every failure ends this connection only.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Backend } from './backend.js';
import { Handshake, HandshakeAbort, type HandshakeIO, type HandshakeOptions } from './handshake.js';
import { ConnectionClosedError, InputReader } from './input.js';
import { logDebug, logError } from './log.js';
import { type TlsConfig, upgradeToTls } from './tls.js';
import { SocketReplyChannel } from './reply-channel.js';
import { Transmission } from './transmission.js';

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

/** Resolves once at most `bytes` wait in output's queue, or output has closed. */
function drained(output: Writable, bytes: number): Promise<void> {
  if (output.destroyed || output.writableLength <= bytes) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      if (!output.destroyed && output.writableLength > bytes) return;
      output.off('drain', done);
      output.off('close', done);
      resolve();
    };
    output.on('drain', done);
    output.on('close', done);
  });
}

let nextConnectionId = 0;

/** Per-server settings every connection needs. */
export interface ConnectionOptions {
  noStructuredReplies: boolean;
  noMetaContexts: boolean;
  /** --mask-handshake: the global handshake flags offered are masked with this. */
  handshakeMask: number;
  /** TLS settings when --tls is on or require. */
  tls: TlsConfig | undefined;
  /** A client that has not chosen an export after this long is dropped. */
  handshakeTimeoutMs: number;
  /**
   * Calls the listener when the server shuts down (stop reading requests, finish those in
   * flight), until the returned function is called at the connection's end.
   */
  onStop: (listener: () => void) => () => void;
  /** Whether this is the server's only connection at the moment. */
  soleClient: () => boolean;
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
  const stopListening = options.onStop(() => reader.stop());
  // After STARTTLS, replies go to the TLS socket instead of the raw one.
  let output: Writable = streams.output;
  const io: HandshakeIO = {
    reader,
    write: (data) => writeTo(output, data),
    drained: (bytes) => drained(output, bytes),
    tls: false,
  };
  const tls = options.tls;
  const handshakeOptions: HandshakeOptions = {
    noStructuredReplies: options.noStructuredReplies,
    noMetaContexts: options.noMetaContexts,
    handshakeMask: options.handshakeMask,
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
        new SocketReplyChannel(output, output === streams.output ? streams.socketFd : undefined),
        negotiated.context,
        negotiated.structuredReplies,
        negotiated.baseAllocation,
        options.soleClient,
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
    stopListening();
    reader.detach();
    if (output !== streams.output) output.end();
    streams.close();
    serializer.release();
  }
}
