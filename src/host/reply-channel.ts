/**
 * Where a connection's replies go. Replies completed in the same event-loop turn leave in one
 * writev: the stream is corked at the first reply of a turn and uncorked once that turn's
 * callbacks and microtasks have run. On a plain socket (its descriptor known), a large read
 * reply may instead be sent by the server itself, from a file or from a plugin's memory.
 */
import type { Writable } from 'node:stream';
import { type NativeSocket, nativeSocket } from './fs-native.js';
import { logError } from './log.js';
import { copyParts, type ReplyChannel } from './transmission.js';

/** The most parts fs-native's sendBuffers takes in one reply. */
const SEND_PARTS_MAX = 64;

export function replyChannel(output: Writable, socketFd: number | undefined): ReplyChannel {
  let corked = false;
  // Idempotent: flush() may have uncorked already when the end of the turn comes.
  const uncork = (): void => {
    if (!corked) return;
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
  const direct = nativeSocket(socketFd);
  // Bytes already queued (corked ones included) must leave first.
  const canSendDirect = (): boolean => direct !== undefined && !output.destroyed && output.writableLength === 0;

  /**
   * Send a reply on the socket itself: `send` returns the bytes that left and leaves the unsent
   * data (`count` bytes of it in all) at the start of `spill`, which is queued behind with the
   * rest of the header. False when it cannot be done.
   */
  const sendDirect = (
    header: Buffer,
    count: number,
    spill: Buffer,
    release: () => void,
    send: (to: NativeSocket) => number,
  ): boolean => {
    if (direct === undefined || !canSendDirect()) return false;
    let sent: number;
    try {
      sent = send(direct);
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

  return {
    write,
    flush: uncork,
    canSendDirect,
    sendFromFile: (header, fileFd, offset, count, spill, release) =>
      sendDirect(header, count, spill, release, (to) => to.native.sendReply(to.fd, header, fileFd, offset, count, spill)),
    sendFromMemory: (header, parts, count, spill, release) =>
      parts.length <= SEND_PARTS_MAX &&
      sendDirect(header, count, spill, release, (to) => {
        const sent = to.native.sendBuffers(to.fd, header, parts);
        // The views are only valid now: what did not leave is copied while they still are.
        const dataSent = Math.max(0, sent - header.length);
        if (dataSent < count) copyParts(parts, dataSent, spill);
        return sent;
      }),
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
