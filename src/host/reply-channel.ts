/**
 * Where a connection's replies go. Replies completed in the same event-loop turn leave in one
 * writev: the stream is corked at the first reply of a turn and uncorked once that turn's
 * callbacks and microtasks have run. On a plain socket (its descriptor known), a large read
 * reply may instead be sent by the server itself, from a file or from a plugin's memory.
 *
 * The socket's output may also be shared with a request thread that replies to the writes it
 * did itself (shareWithThread, see ThreadWrites). Then the channel claims the output before it
 * queues anything and releases it once Node's queue is empty; while the thread still has reply
 * bytes the socket has not taken, replies wait here in order (`waiting`) until it says the
 * output is free (outputFree).
 */
import type { Writable } from 'node:stream';
import { type NativeSocket, nativeSocket } from './fs-native.js';
import { logError } from './log.js';
import { copyParts, type OutputGate, type ReplyChannel } from './transmission.js';

/** The most parts fs-native's sendBuffers takes in one reply. */
const SEND_PARTS_MAX = 64;
/**
 * How long settled() waits for replies that cannot leave yet (a client that sent NBD_CMD_DISC
 * but does not read), as the socket is destroyed this long after it is ended.
 */
const SETTLE_WAIT_MS = 5000;

interface WaitingReply {
  data: Buffer;
  sent: (() => void) | undefined;
}

export function replyChannel(output: Writable, socketFd: number | undefined): ReplyChannel {
  let corked = false;
  let gate: OutputGate | undefined;
  /** Whether the output is the event loop's (always true without a gate). */
  let claimed = true;
  const waiting: WaitingReply[] = [];
  let waitingBytes = 0;
  /** Called when `waiting` has been written out (or dropped). */
  let waitingGone: (() => void)[] = [];

  /** Give the output back to the thread when nothing of ours is queued or about to be. */
  const settle = (): void => {
    if (gate === undefined || !claimed || corked || waiting.length > 0 || output.writableLength > 0) return;
    claimed = false;
    gate.release();
  };
  const claim = (): boolean => claimed || (claimed = gate!.claim());
  /** Whether a reply may be queued on the output now: nothing waits before it, and the output is ours. */
  const mayQueueNow = (): boolean => waiting.length === 0 && claim();
  // Idempotent: flush() may have uncorked already when the end of the turn comes.
  const uncork = (): void => {
    if (!corked) return;
    corked = false;
    output.uncork();
    settle();
  };
  const queue = (data: Buffer, sent: (() => void) | undefined): void => {
    if (!corked) {
      corked = true;
      output.cork();
      process.nextTick(uncork);
    }
    if (gate === undefined) output.write(data, sent);
    else
      output.write(data, () => {
        sent?.();
        settle();
      });
  };
  const write = (data: Buffer, sent?: () => void): void => {
    if (output.destroyed) return;
    if (mayQueueNow()) queue(data, sent);
    else {
      waiting.push({ data, sent });
      waitingBytes += data.length;
    }
  };
  /** Nothing waits any more: tell those who wait for that. */
  const waitingDone = (): void => {
    waitingBytes = 0;
    const done = waitingGone;
    waitingGone = [];
    for (const resolve of done) resolve();
  };
  /** The thread says the output is free: what waited goes, unless it owes bytes again already. */
  const outputFree = (): void => {
    if (!output.destroyed && !claim()) return;
    for (const reply of waiting.splice(0)) {
      if (output.destroyed) reply.sent?.();
      else queue(reply.data, reply.sent);
    }
    waitingDone();
    settle();
  };
  /** The connection is over: what waited will never be sent. */
  const dropWaiting = (): void => {
    for (const reply of waiting.splice(0)) reply.sent?.();
    waitingDone();
  };
  const direct = nativeSocket(socketFd);
  // Bytes already queued (corked ones included) must leave first.
  const canSendDirect = (): boolean =>
    direct !== undefined && !output.destroyed && output.writableLength === 0 && mayQueueNow();

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
    settle();
    return true;
  };

  /** Whether nothing of ours waits for the output and the thread owes nothing: then claimed. */
  const allSent = (): boolean => output.destroyed || mayQueueNow();

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
      return output.writableLength + waitingBytes;
    },
    shareWithThread(threadGate: OutputGate) {
      gate = threadGate;
      // The thread starts with the output ours, for what is queued already. Replies queued
      // before have no callback that settles: an empty write behind them has.
      claimed = true;
      output.once('close', dropWaiting);
      if (output.writableLength > 0 && !output.destroyed) queue(Buffer.alloc(0), undefined);
      else settle();
    },
    outputFree,
    settled: async () => {
      if (gate === undefined || allSent()) return;
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, SETTLE_WAIT_MS)));
      while (!allSent()) {
        const free = new Promise<void>((resolve) => waitingGone.push(resolve));
        if ((await Promise.race([free.then(() => true), bound.then(() => false)])) === false) break;
      }
      clearTimeout(timer);
      // Given up on (or sent): either way, nothing waits any more.
      dropWaiting();
    },
    drained: async () => {
      while (waiting.length > 0 && !output.destroyed) await new Promise<void>((resolve) => waitingGone.push(resolve));
      await outputDrained();
    },
  };

  function outputDrained(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (output.destroyed || !output.writableNeedDrain) return resolve();
      const done = (): void => {
        output.off('drain', done);
        output.off('close', done);
        resolve();
      };
      output.on('drain', done);
      output.on('close', done);
    });
  }
}
