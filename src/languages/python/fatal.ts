/**
 * Pyodide's fatal errors: noticing them, keeping their report to one line, and refusing the
 * interpreter afterwards.
 *
 * A JavaScript exception that unwinds through the interpreter's WebAssembly frames (the JS stack
 * overflowing under deep recursion, a WebAssembly trap) skips CPython's own cleanup: thread
 * state, frame stack and the C stack pointer are left mid-call. Pyodide then declares itself
 * fatally failed, prints a page of diagnostics, and every later call into it prints more
 * ("lost sys.stderr", "Internal error occurred while formatting traceback"). The interpreter
 * cannot be trusted with a disk's data after that, so the adapter stops entering it.
 */
import type { PyodideAPI } from 'pyodide';
import { inspect } from 'node:util';

/** The part of pyodide's internal API used here (not in its public types). */
interface PyodideInternals {
  _api: { fatal_error: (error: unknown) => never };
}

/** The interpreter's stdout or stderr; diverted while pyodide reports a fatal error. */
export interface DivertableOutput {
  divert(sink: ((text: string) => void) | undefined): void;
}

/** True for the error pyodide throws (or rethrows) once it has fatally failed. */
export function isPyodideFatal(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { pyodide_fatal_error?: unknown }).pyodide_fatal_error === true;
}

/**
 * The status of the script's os._exit, if that is what error is (pyodide's Exit, or emscripten's
 * ExitStatus, which is no Error subclass); native nbdkit's process exits with it.
 */
export function exitStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { name, status } = error as { name?: unknown; status?: unknown };
  return (name === 'Exit' || name === 'ExitStatus') && typeof status === 'number' ? status : undefined;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

export class FatalWatch {
  /** Why the interpreter failed, once it has. */
  reason: string | undefined;
  /** What pyodide printed about the failure (shown only with -v). */
  readonly suppressed: string[] = [];

  /**
   * Wrap pyodide's fatal-error handler so that its report is collected instead of printed.
   * Pyodide looks the handler up on every use, so the wrapper sees every fatal error.
   */
  install(pyodide: PyodideAPI, outputs: readonly DivertableOutput[]): void {
    const api = (pyodide as unknown as PyodideInternals)._api;
    const original = api.fatal_error;
    const collect = (text: string): void => {
      this.suppressed.push(text);
    };
    api.fatal_error = (error: unknown): never => {
      // An error already marked fatal is pyodide rethrowing its own: nothing new to note.
      if (!isPyodideFatal(error)) this.reason ??= describe(error);
      const consoleError = console.error;
      console.error = (...args: unknown[]): void =>
        collect(`${args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ')}\n`);
      for (const output of outputs) output.divert(collect);
      try {
        return original.call(api, error);
      } finally {
        console.error = consoleError;
        for (const output of outputs) output.divert(undefined);
      }
    };
  }

  get failed(): boolean {
    return this.reason !== undefined;
  }

  /** Note a fatal error pyodide signalled without going through its handler. */
  noteFrom(error: unknown): void {
    this.reason ??= describe(error);
  }
}
