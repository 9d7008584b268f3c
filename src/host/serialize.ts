/**
 * Serialisation of plugin calls by thread model. JavaScript runs one callback at a time, but an
 * asynchronous plugin yields at every await, so without these locks two requests could interleave
 * inside a plugin that declared it cannot cope with that.
 */
import { ThreadModel } from './plugin.js';

/**
 * A FIFO mutex with a synchronous fast path: when it is free, run() starts the task at once
 * without queueing, which keeps the common uncontended request path free of extra promises.
 */
export class Mutex {
  private held = false;
  private readonly waiters: Array<() => void> = [];

  async run<T>(task: () => Promise<T> | T): Promise<T> {
    if (this.held) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.held = true;
    try {
      return await task();
    } finally {
      const next = this.waiters.shift();
      if (next) next(); // ownership passes straight to the next waiter
      else this.held = false;
    }
  }

  /** Take the mutex until the returned function is called. */
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

/** Limits the number of tasks running at once (nbdkit's -t threads per connection). */
export class Semaphore {
  private readonly waiters: Array<() => void> = [];
  private available: number;

  constructor(slots: number) {
    this.available = slots;
  }

  async run<T>(task: () => Promise<T> | T): Promise<T> {
    if (this.available > 0) this.available--;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.available++;
    }
  }
}

/** The locks that apply to one connection's plugin calls under a thread model. */
export interface RequestSerializer {
  run<T>(task: () => Promise<T> | T): Promise<T>;
  /** Called once when the connection ends, to give back anything held for its lifetime. */
  release(): void;
}

function passThrough(): RequestSerializer {
  return { run: async (task) => task(), release: () => undefined };
}

function withoutLease(lock: { run: RequestSerializer['run'] }): RequestSerializer {
  return { run: (task) => lock.run(task), release: () => undefined };
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

  async run<T>(task: () => Promise<T> | T): Promise<T> {
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
        return withoutLease(this.allRequests);
      case ThreadModel.SERIALIZE_REQUESTS:
        return withoutLease(new Mutex());
      default:
        return this.threads > 0 ? withoutLease(new Semaphore(this.threads)) : passThrough();
    }
  }
}
