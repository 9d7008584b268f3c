/**
 * Waiting inline: with every reply sent and nothing in flight, the next request is waited for
 * on the socket itself (InputReader.receiveInline) instead of by the event loop, and so is the
 * rest of its payload. A client that sends one request at a time gets each reply sooner,
 * because waking a thread that sleeps in epoll costs this virtual 2-CPU machine ~25 µs per
 * request, most of it waking the idle CPU:
 * - First the socket is polled without sleeping for 50 µs, long enough for a client's
 *   turn-around (nbdcopy's is 10-20 µs). 4 KiB reads one at a time, file plugin, warm server:
 *   1.2 s to 0.44 s, where native nbdkit takes 0.73 s. The CPU is burnt only while the server
 *   has a single client, after each reply, at most this long; never on a single CPU, where the
 *   spinning would take the client's CPU away, and never with other clients, whose threads
 *   (or the client processes themselves) need the CPU.
 * - Then the thread sleeps in recv: a wake-up straight into recv is ~10 µs quicker than one
 *   from epoll followed by a read (1.68 s to 1.28 s without the spin).
 * - A write's payload that is still arriving is waited for the same way: 256 KiB writes from
 *   Python, 0.59 s to 0.55 s.
 * The thread's event loop is held meanwhile, so a new connection, a timer, a signal or a
 * message waits at most InlinePolicy.streakMs.
 */
import { availableParallelism } from 'node:os';
import type { InlineWait } from './input.js';

export interface InlinePolicy {
  /** How to wait inline now, or undefined when the thread must not. */
  wait(): InlineWait | undefined;
  /**
   * Requests served back to back through inline waits return to the event loop after this long,
   * so that timers, signals and deferred callbacks (reply buffers going back to the pool) run.
   */
  streakMs: number;
}

/**
 * The number of connections the server has open, kept by the main thread and read by every
 * thread: in shared memory, since a connection thread must read it without a message.
 */
export class ConnectionCount {
  constructor(readonly shared: Int32Array = new Int32Array(new SharedArrayBuffer(4))) {}

  add(n: number): void {
    Atomics.add(this.shared, 0, n);
  }

  get value(): number {
    return Atomics.load(this.shared, 0);
  }
}

const MAY_SPIN = availableParallelism() > 1;

/**
 * The main thread serves every client of a plugin that is not replicable, and may have other
 * work: it waits inline only for a server's only client, and sleeps at most 1 ms in recv.
 */
export function mainThreadInline(connections: ConnectionCount): InlinePolicy {
  const wait: InlineWait = { spinMicros: MAY_SPIN ? 50 : 0, timeoutMicros: 1000 };
  return { wait: () => (connections.value === 1 ? wait : undefined), streakMs: 2 };
}

/**
 * A connection thread (connection-worker.ts) has nothing but its one client to serve, so it
 * always waits inline, spinning only as the main thread would. It sleeps longer in recv, and
 * goes back to its event loop less often: messages from the main thread (stop, cut) may wait
 * that long.
 */
export function ownThreadInline(connections: ConnectionCount): InlinePolicy {
  const spin: InlineWait = { spinMicros: MAY_SPIN ? 50 : 0, timeoutMicros: 100_000 };
  const sleep: InlineWait = { spinMicros: 0, timeoutMicros: 100_000 };
  return { wait: () => (connections.value === 1 ? spin : sleep), streakMs: 50 };
}
