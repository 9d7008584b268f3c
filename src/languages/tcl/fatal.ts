/**
 * Faults that escape the Tcl interpreter, and refusing it afterwards.
 *
 * A Tcl error, "too many nested evaluations" or Tcl's own "out of memory" error completes as an
 * ordinary failed call: Tcl unwinds its frames and the interpreter is as good as before. What
 * is not a Tcl error escaped the WebAssembly frames without that cleanup: the JavaScript stack
 * running out inside the interpreter (deep C recursion, e.g. through `lsort -command` or
 * `time`), a WebAssembly trap, or emscripten's abort, which is how a Tcl_Panic ("unable to
 * alloc N bytes") ends. Tcl's nesting counters, call frames and allocator may then be
 * mid-update; serving a disk's data from it could serve garbage. So the callback that met the
 * fault and every later one fail with EIO without entering the interpreter, the reason is
 * printed once, and the server goes on running.
 */
import { TclError } from '#wasm-tcl';
import { PluginError, type PluginHost, ReportedPluginError } from '../../host/plugin.js';

/** Callbacks that, once the interpreter has failed, do nothing instead of failing. */
const QUIET_AFTER_FAILURE: ReadonlySet<string> = new Set(['close', 'cleanup', 'unload']);

export class TrapGuard {
  /** Why the interpreter can no longer be trusted, once that has happened. */
  private reason: string | undefined;
  private reported = false;

  /** describe: the one-line reason for a fault that escaped the interpreter (and records it). */
  constructor(
    private readonly host: PluginHost,
    private readonly describe: (error: unknown) => string,
  ) {}

  get failed(): boolean {
    return this.reason !== undefined;
  }

  /** fn, run under run(); for the quiet callbacks, a no-op once the interpreter has failed. */
  wrap<A extends unknown[], R>(callback: string, fn: (...args: A) => R): (...args: A) => R {
    if (QUIET_AFTER_FAILURE.has(callback)) {
      return (...args: A): R => (this.failed ? (undefined as R) : this.run(callback, () => fn(...args)));
    }
    return (...args: A): R => this.run(callback, () => fn(...args));
  }

  /** Runs one callback: its own failures pass through, a fault makes it and all later ones fail. */
  run<T>(callback: string, call: () => T): T {
    if (this.reason !== undefined) throw this.refusal(callback);
    try {
      return call();
    } catch (error) {
      if (error instanceof PluginError) throw error;
      // A Tcl error the adapter did not turn into a plugin error is still an ordinary failure.
      if (error instanceof TclError) throw new PluginError(`${callback}: ${error.message}`, 'EIO');
      this.reason = this.describe(error);
      throw this.refusal(callback);
    }
  }

  private refusal(callback: string): ReportedPluginError {
    if (!this.reported) {
      this.reported = true;
      this.host.error(`tcl: the interpreter suffered a fatal error in ${callback} (${this.reason}); refusing further requests`);
    } else {
      this.host.debug(`tcl: ${callback} refused: the interpreter failed earlier`);
    }
    return new ReportedPluginError(`${callback}: the Tcl interpreter is unusable after a fatal error`, 'EIO');
  }
}

/**
 * Rethrows a fault that escaped the interpreter, for the TrapGuard around the callback; returns
 * for an ordinary failure (a Tcl error, a plugin error), which the caller reports.
 */
export function passFaults(error: unknown): void {
  if (!(error instanceof TclError || error instanceof PluginError)) throw error;
}
