/**
 * The main thread's side of connection threads (connection-worker.ts): a small pool of worker
 * threads, each serving one connection at a time with its own copy of a replicable plugin.
 *
 * An accepted socket goes to an idle thread when there is one. When there is none, the main
 * thread serves it as it serves every other plugin, and another thread is started for the
 * connections to come (up to a limit): a client never waits for a thread to start. The server
 * starts a few when it starts listening.
 */
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { newConnectionId } from './connection.js';
import { detachDescriptor } from './direct-socket.js';
import type { ConnectionCount } from './inline-policy.js';
import { logDebug, logError } from './log.js';
import type { FromThread, ThreadSetup, ToThread } from './thread-messages.js';

/** Built next to this module by tsc, and next to the command by the bundler (bundle-cli.mjs). */
const WORKER_ENTRY = new URL('./connection-worker.js', import.meta.url);

/** Threads started at most: beyond that many connections at once, the main thread serves. */
const MAX_THREADS = Math.max(4, 2 * availableParallelism());
/** How long a thread may take to unload its plugin copy and end after the server stops. */
const EXIT_WAIT_MS = 2000;

interface ConnectionThread {
  worker: Worker;
  state: 'starting' | 'idle' | 'serving' | 'gone';
  /** Settles when the connection being served ends. */
  connection?: { id: number; ended: Promise<void>; end: () => void };
  exited: Promise<void>;
}

export class ConnectionThreads {
  private readonly threads = new Set<ConnectionThread>();
  private stopped = false;

  constructor(
    private readonly setup: ThreadSetup,
    /** Counts the connections handed off too. */
    private readonly count: ConnectionCount,
    /** The plugin in a thread called nbdkit_shutdown. */
    private readonly onShutdown: () => void,
  ) {}

  /** Whether threads can be used here at all (the bundled entry module is present). */
  static available(): boolean {
    return WORKER_ENTRY.protocol === 'file:' && existsSync(fileURLToPath(WORKER_ENTRY));
  }

  /**
   * Start threads ahead of the first clients. A thread's code gets fast only as V8 compiles
   * its hot paths; threads ready from the start serve the first clients too, and warm up with
   * them instead of with later ones.
   */
  prestart(count: number): void {
    for (let i = 0; i < count && this.threads.size < MAX_THREADS; i++) this.start();
  }

  /** Promises of the connections being served on threads, settling when each ends. */
  connections(): Promise<void>[] {
    const ended: Promise<void>[] = [];
    for (const thread of this.threads) if (thread.connection) ended.push(thread.connection.ended);
    return ended;
  }

  /**
   * Serve an accepted socket (that has read nothing yet) on an idle thread. False when none is
   * idle: the caller serves it, and a thread is started for later if the limit allows.
   */
  handOff(accepted: Socket): boolean {
    if (this.stopped) return false;
    const thread = [...this.threads].find((t) => t.state === 'idle');
    if (thread === undefined) {
      if (this.threads.size < MAX_THREADS) this.start();
      return false;
    }
    const fd = detachDescriptor(accepted);
    if (fd === undefined) return false;
    const id = newConnectionId();
    this.count.add(1);
    let end = (): void => undefined;
    const ended = new Promise<void>((resolve) => (end = resolve));
    void ended.then(() => this.count.add(-1));
    thread.state = 'serving';
    thread.connection = { id, ended, end };
    this.send(thread, { kind: 'serve', fd, id });
    logDebug(`connection ${id}: served on a thread of its own`);
    return true;
  }

  /** The server shuts down: connections finish what is in flight, threads unload and end. */
  stop(): void {
    this.stopped = true;
    for (const thread of this.threads) this.send(thread, { kind: 'stop' });
  }

  /** Close every thread's connection now. */
  cutOff(): void {
    for (const thread of this.threads) if (thread.connection) this.send(thread, { kind: 'cut' });
  }

  /** After stop(): wait for the threads to end, and end those that do not in time. */
  async close(): Promise<void> {
    const exits = [...this.threads].map((thread) => thread.exited);
    const timer = setTimeout(() => {
      for (const thread of this.threads) void thread.worker.terminate();
    }, EXIT_WAIT_MS);
    await Promise.allSettled(exits);
    clearTimeout(timer);
  }

  private send(thread: ConnectionThread, message: ToThread): void {
    if (thread.state !== 'gone') thread.worker.postMessage(message);
  }

  private start(): void {
    const worker = new Worker(WORKER_ENTRY, { workerData: this.setup });
    // An idle thread must not keep the process alive; the server's own life decides that.
    worker.unref();
    let exited = (): void => undefined;
    const thread: ConnectionThread = {
      worker,
      state: 'starting',
      exited: new Promise<void>((resolve) => (exited = resolve)),
    };
    this.threads.add(thread);
    worker.on('message', (message: FromThread) => this.heard(thread, message));
    worker.on('error', (error) => logError(`connection thread: ${error.message}`));
    worker.on('exit', () => {
      thread.state = 'gone';
      thread.connection?.end();
      this.threads.delete(thread);
      exited();
    });
  }

  private heard(thread: ConnectionThread, message: FromThread): void {
    switch (message.kind) {
      case 'ready':
        if (this.stopped) this.send(thread, { kind: 'stop' });
        else thread.state = 'idle';
        break;
      case 'failed':
        // A copy that cannot be made once will not be made next time either: main thread only.
        thread.state = 'gone';
        this.stopped = true;
        break;
      case 'done':
        thread.connection?.end();
        thread.connection = undefined;
        if (thread.state === 'serving') thread.state = 'idle';
        break;
      case 'shutdown':
        this.onShutdown();
        break;
    }
  }
}
