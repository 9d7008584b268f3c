/**
 * One client connection from accept to close: preconnect, handshake, transmission, close.
 * Nothing a client does can throw out of here: every failure ends this connection only.
 */
import type { Readable, Writable } from 'node:stream';
import type { Backend } from './backend.js';
import { Handshake, HandshakeAbort, type HandshakeOptions } from './handshake.js';
import { ConnectionClosedError, InputReader } from './input.js';
import { logDebug, logError } from './log.js';
import { ThreadModel } from './plugin.js';
import { Transmission, type ReplyChannel } from './transmission.js';

/** The two directions of a client: one socket, or stdin/stdout under -s. */
export interface ClientStreams {
  input: Readable;
  output: Writable;
  /** Ends the connection for good (both directions). */
  close(): void;
}

let nextConnectionId = 0;

function replyChannel(output: Writable): ReplyChannel {
  return {
    write: (data) => {
      if (!output.destroyed) output.write(data);
    },
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

export async function serveConnection(
  streams: ClientStreams,
  backend: Backend,
  options: HandshakeOptions,
): Promise<void> {
  const id = nextConnectionId++;
  // A vanished client surfaces as an 'error' on write; without a listener Node would crash.
  streams.output.on('error', (error) => logDebug(`connection ${id}: write: ${error.message}`));
  const locks = backend.serverLocks;
  const serve = async (): Promise<void> => {
    const reader = new InputReader(streams.input);
    const channel = replyChannel(streams.output);
    try {
      await backend.preconnect(backend.readonly);
      const handshake = new Handshake(
        { reader, write: channel.write, tls: false },
        backend,
        locks.forConnection(),
        options,
      );
      const negotiated = await handshake.run();
      if (!negotiated) return;
      logDebug(`connection ${id}: handshake complete, export "${negotiated.exportName}"`);
      try {
        const transmission = new Transmission(
          reader,
          channel,
          negotiated.context,
          negotiated.structuredReplies,
          negotiated.baseAllocation,
        );
        await transmission.run();
      } finally {
        await negotiated.context.close();
      }
    } catch (error) {
      if (error instanceof ConnectionClosedError) logDebug(`connection ${id}: client closed the connection`);
      else if (error instanceof HandshakeAbort) logError(error.message);
      else logError(`connection ${id}: ${(error as Error).message}`);
    } finally {
      reader.detach();
      streams.close();
    }
  };
  if (backend.threadModel === ThreadModel.SERIALIZE_CONNECTIONS) await locks.connection.run(serve);
  else await serve();
}
