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

/**
 * A class, not a set of closures made per connection: every connection's replies then go through
 * the same functions, and V8's optimised request path survives the next connection.
 */
export class SocketReplyChannel implements ReplyChannel {
  private corked = false;
  private gate: OutputGate | undefined;
  /** Whether the output is the event loop's (always true without a gate). */
  private claimed = true;
  private readonly waiting: WaitingReply[] = [];
  private waitingBytes = 0;
  /** Called when `waiting` has been written out (or dropped). */
  private waitingGone: (() => void)[] = [];
  private readonly direct: NativeSocket | undefined;

  constructor(
    private readonly output: Writable,
    socketFd: number | undefined,
  ) {
    this.direct = nativeSocket(socketFd);
  }

  write(data: Buffer, sent?: () => void): void {
    if (this.output.destroyed) return;
    if (this.mayQueueNow()) this.queue(data, sent);
    else {
      this.waiting.push({ data, sent });
      this.waitingBytes += data.length;
    }
  }

  // Idempotent: flush() may have uncorked already when the end of the turn comes.
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.output.uncork();
    this.settle();
  }

  get writableLength(): number {
    return this.output.writableLength + this.waitingBytes;
  }

  // Bytes already queued (corked ones included) must leave first.
  canSendDirect(): boolean {
    return this.direct !== undefined && !this.output.destroyed && this.output.writableLength === 0 && this.mayQueueNow();
  }

  sendFromFile(header: Buffer, fileFd: number, offset: bigint, count: number, spill: Buffer, release: () => void): boolean {
    const to = this.direct;
    if (to === undefined || !this.canSendDirect()) return false;
    let sent: number;
    try {
      sent = to.native.sendReply(to.fd, header, fileFd, offset, count, spill);
    } catch (error) {
      return this.sendFailed(error, release);
    }
    this.sentDirect(header, count, spill, release, sent);
    return true;
  }

  sendFromMemory(header: Buffer, parts: Uint8Array[], count: number, spill: Buffer, release: () => void): boolean {
    const to = this.direct;
    if (to === undefined || parts.length > SEND_PARTS_MAX || !this.canSendDirect()) return false;
    let sent: number;
    try {
      sent = to.native.sendBuffers(to.fd, header, parts);
    } catch (error) {
      return this.sendFailed(error, release);
    }
    // The views are only valid now: what did not leave is copied while they still are.
    const dataSent = Math.max(0, sent - header.length);
    if (dataSent < count) copyParts(parts, dataSent, spill);
    this.sentDirect(header, count, spill, release, sent);
    return true;
  }

  shareWithThread(threadGate: OutputGate): void {
    this.gate = threadGate;
    // The thread starts with the output ours, for what is queued already. Replies queued
    // before have no callback that settles: an empty write behind them has.
    this.claimed = true;
    this.output.once('close', () => this.dropWaiting());
    if (this.output.writableLength > 0 && !this.output.destroyed) this.queue(Buffer.alloc(0), undefined);
    else this.settle();
  }

  /** The thread says the output is free: what waited goes, unless it owes bytes again already. */
  outputFree(): void {
    if (!this.output.destroyed && !this.claim()) return;
    for (const reply of this.waiting.splice(0)) {
      if (this.output.destroyed) reply.sent?.();
      else this.queue(reply.data, reply.sent);
    }
    this.waitingDone();
    this.settle();
  }

  async settled(): Promise<void> {
    if (this.gate === undefined || this.allSent()) return;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, SETTLE_WAIT_MS)));
    while (!this.allSent()) {
      const free = new Promise<void>((resolve) => this.waitingGone.push(resolve));
      if ((await Promise.race([free.then(() => true), bound.then(() => false)])) === false) break;
    }
    clearTimeout(timer);
    // Given up on (or sent): either way, nothing waits any more.
    this.dropWaiting();
  }

  async drained(): Promise<void> {
    while (this.waiting.length > 0 && !this.output.destroyed) {
      await new Promise<void>((resolve) => this.waitingGone.push(resolve));
    }
    await outputDrained(this.output);
  }

  /** Give the output back to the thread when nothing of ours is queued or about to be. */
  private settle(): void {
    const busy = this.corked || this.waiting.length > 0 || this.output.writableLength > 0;
    if (this.gate === undefined || !this.claimed || busy) return;
    this.claimed = false;
    this.gate.release();
  }

  private claim(): boolean {
    return this.claimed || (this.claimed = this.gate!.claim());
  }

  /** Whether a reply may be queued on the output now: nothing waits before it, and the output is ours. */
  private mayQueueNow(): boolean {
    return this.waiting.length === 0 && this.claim();
  }

  private queue(data: Buffer, sent: (() => void) | undefined): void {
    if (!this.corked) {
      this.corked = true;
      this.output.cork();
      process.nextTick(flushChannel, this);
    }
    if (this.gate === undefined) this.output.write(data, sent);
    else
      this.output.write(data, () => {
        sent?.();
        this.settle();
      });
  }

  /** Nothing waits any more: tell those who wait for that. */
  private waitingDone(): void {
    this.waitingBytes = 0;
    const done = this.waitingGone;
    this.waitingGone = [];
    for (const resolve of done) resolve();
  }

  /** The connection is over: what waited will never be sent. */
  private dropWaiting(): void {
    for (const reply of this.waiting.splice(0)) reply.sent?.();
    this.waitingDone();
  }

  /** Whether nothing of ours waits for the output and the thread owes nothing: then claimed. */
  private allSent(): boolean {
    return this.output.destroyed || this.mayQueueNow();
  }

  /**
   * After a direct send of `sent` bytes: the rest of the header, then the unsent data (`count`
   * bytes of it in all, at the start of `spill`), are queued behind.
   */
  private sentDirect(header: Buffer, count: number, spill: Buffer, release: () => void, sent: number): void {
    if (sent < header.length) this.write(header.subarray(sent));
    const rest = header.length + count - sent;
    if (rest === 0) release();
    else this.write(spill.subarray(0, Math.min(rest, count)), release);
    this.settle();
  }

  /** A direct send threw: false if nothing left (the usual way will meet the error), else the connection is over. */
  private sendFailed(error: unknown, release: () => void): boolean {
    if (((error as { sent?: number }).sent ?? 0) === 0) return false;
    // Half a reply cannot be taken back.
    logError(`read reply cut short, closing the connection: ${(error as Error).message}`);
    this.output.destroy(error as Error);
    release();
    return true;
  }
}

/** The end of the event-loop turn in which a channel was corked (a function shared by all). */
function flushChannel(channel: SocketReplyChannel): void {
  channel.flush();
}

function outputDrained(output: Writable): Promise<void> {
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
