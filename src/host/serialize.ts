/**
 * Serialisation of plugin calls by thread model. JavaScript runs one callback at a time, but an
 * asynchronous plugin yields at every await, so without these locks two requests could interleave
 * inside a plugin that declared it cannot cope with that.
 */
import { ThreadModel } from './plugin.js';

export type MaybePromise<T> = T | Promise<T>;

export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * A FIFO counting semaphore with a synchronous fast path: when a slot is free, run() calls the
 * task at once and, if the task finishes synchronously (as the WebAssembly interpreters and the
 * built-in plugins do), returns its result without creating a single promise. Most requests
 * meet a free lock, so this keeps the per-request path short.
 */
export class Semaphore {
  private readonly waiters: Array<() => void> = [];

  constructor(private available: number) {}

  run<T>(task: () => MaybePromise<T>): MaybePromise<T> {
    if (this.available === 0) return this.queued(task);
    this.available--;
    let result: MaybePromise<T>;
    try {
      result = task();
    } catch (error) {
      this.release();
      throw error;
    }
    if (!isPromise(result)) {
      this.release();
      return result;
    }
    return result.finally(() => this.release());
  }

  private async queued<T>(task: () => MaybePromise<T>): Promise<T> {
    // release() hands the slot straight to this waiter, so `available` stays as it is.
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available++;
  }

  /** Take a slot until the returned function is called. */
  async acquire(): Promise<() => void> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let acquired!: () => void;
    const taken = new Promise<void>((resolve) => (acquired = resolve));
    void this.run(() => {
      acquired();
      return released;
    });
    await taken;
    return release;
  }
}

/** One task at a time, in arrival order. */
export class Mutex extends Semaphore {
  constructor() {
    super(1);
  }
}

/** The locks that apply to one connection's plugin calls under a thread model. */
export interface RequestSerializer {
  run<T>(task: () => MaybePromise<T>): MaybePromise<T>;
  /** Called once when the connection ends, to give back anything held for its lifetime. */
  release(): void;
}

/*
 * Serialisers are classes rather than objects of closures: every connection then calls the same
 * functions, and V8's optimised request path, specialised on the first connection's call
 * targets, is not thrown away and rebuilt when the next connection comes.
 */

class PassThrough implements RequestSerializer {
  run<T>(task: () => MaybePromise<T>): MaybePromise<T> {
    return task();
  }

  release(): void {}
}

/** Each call under `lock`, nothing held between calls. */
class PerCall implements RequestSerializer {
  constructor(private readonly lock: Semaphore) {}

  run<T>(task: () => MaybePromise<T>): MaybePromise<T> {
    return this.lock.run(task);
  }

  release(): void {}
}

/**
 * SERIALIZE_CONNECTIONS: the server-wide connection lock is taken at the connection's first
 * plugin call (its open), not at accept, so clients that never finish their handshake cannot
 * keep everyone else waiting; it is held until the connection ends.
 */
class ConnectionLease implements RequestSerializer {
  private lease: Promise<() => void> | undefined;
  private readonly requests = new Mutex();

  constructor(private readonly gate: Mutex) {}

  async run<T>(task: () => MaybePromise<T>): Promise<T> {
    this.lease ??= this.gate.acquire();
    await this.lease;
    return this.requests.run(task);
  }

  release(): void {
    void this.lease?.then((giveBack) => giveBack());
  }
}

/** Server-wide locks, shared by every connection of one server. */
export class ServerLocks {
  /** Held from open to the end of a connection under SERIALIZE_CONNECTIONS. */
  readonly connection = new Mutex();
  /** Held around each plugin call under SERIALIZE_ALL_REQUESTS. */
  readonly allRequests = new Mutex();

  constructor(readonly threadModel: ThreadModel, readonly threads: number) {}

  /** The serialiser for a new connection's plugin calls. */
  forConnection(): RequestSerializer {
    switch (this.threadModel) {
      case ThreadModel.SERIALIZE_CONNECTIONS:
        return new ConnectionLease(this.connection);
      case ThreadModel.SERIALIZE_ALL_REQUESTS:
        return new PerCall(this.allRequests);
      case ThreadModel.SERIALIZE_REQUESTS:
        return new PerCall(new Mutex());
      default:
        return this.threads > 0 ? new PerCall(new Semaphore(this.threads)) : new PassThrough();
    }
  }
}
