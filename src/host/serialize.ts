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

  get locked(): boolean {
    return this.held;
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

/** The locks that apply to one connection under a thread model. */
export interface RequestSerializer {
  run<T>(task: () => Promise<T> | T): Promise<T>;
}

const PASS_THROUGH: RequestSerializer = { run: async (task) => task() };

/** Server-wide locks, shared by every connection of one server. */
export class ServerLocks {
  /** Held for the whole life of a connection under SERIALIZE_CONNECTIONS. */
  readonly connection = new Mutex();
  /** Held around each plugin call under SERIALIZE_ALL_REQUESTS. */
  readonly allRequests = new Mutex();

  constructor(readonly threadModel: ThreadModel, readonly threads: number) {}

  /** The serialiser for a new connection's plugin calls. */
  forConnection(): RequestSerializer {
    switch (this.threadModel) {
      case ThreadModel.SERIALIZE_ALL_REQUESTS:
        return this.allRequests;
      case ThreadModel.SERIALIZE_CONNECTIONS:
      case ThreadModel.SERIALIZE_REQUESTS:
        return new Mutex();
      default:
        return this.threads > 0 ? new Semaphore(this.threads) : PASS_THROUGH;
    }
  }
}
