// Types for @nbdkit-ts/wasm-tcl (index.js).

/** A Tcl object: its address in the WebAssembly heap. */
export type TclObj = number & { readonly __tclObj?: never };

/** Values newValue/setVar/command results accept. Arrays become Tcl lists. */
export type TclValue = string | Uint8Array | number | bigint | boolean | null | undefined | TclValue[];

export const libraryPath: string;

export const TCL_OK: 0;
export const TCL_ERROR: 1;
export const TCL_RETURN: 2;
export const TCL_BREAK: 3;
export const TCL_CONTINUE: 4;

export class TclError extends Error {
  constructor(
    message: string,
    details?: { code?: number; errorInfo?: string; errorCode?: string; line?: number },
  );
  /** The completion code (TCL_ERROR, or TCL_BREAK/TCL_CONTINUE at top level). */
  readonly code: number;
  /**
   * Tcl's errorInfo: the message followed by the stack of where it happened; past 64 KiB, its
   * middle is replaced by a line `    ... (N lines omitted)`.
   */
  readonly errorInfo: string;
  /** Tcl's errorCode list, as a string. */
  readonly errorCode: string;
  /** For evalFile: the line of the script where the error happened. */
  line?: number;
}

/**
 * A fault that escaped the interpreter (the JavaScript stack running out inside it, a
 * WebAssembly trap, emscripten's abort after a Tcl_Panic): the runtime refuses every later call.
 */
export class TclTrap extends Error {
  constructor(message: string, details?: { cause?: unknown; printed?: string });
  /** What the interpreter printed on stderr just before (a Tcl_Panic's message), held back. */
  readonly printed: string;
}

/** Instantiates the WebAssembly module once per process. */
export function loadTcl(): Promise<TclRuntime>;

export type OutputSink = (bytes: Uint8Array) => void;

export class TclRuntime {
  private constructor();
  /** "8.6" */
  readonly version: string;
  /** "8.6.13" */
  readonly patchLevel: string;
  /**
   * Why the interpreter can no longer be trusted, once a trap has escaped it. From then on the
   * evaluating calls throw a TclTrap without entering it, and no other call may be made.
   */
  readonly failure: string | undefined;
  /** The TclTrap for an exception that escaped a call into the interpreter (records failure). */
  trapFrom(error: unknown): TclTrap;
  /** Where bytes the script writes to stdout (1) or stderr (2) go. */
  setOutput(which: 1 | 2, sink: OutputSink): void;
  /** Called with the status when a script runs `exit`; the default exits the process. */
  setExitHandler(handler: (status: number) => void): void;
  /** A new interpreter, Tcl_Init done. Throws TclError if Tcl_Init fails. */
  createInterp(options?: { library?: string }): TclInterp;
}

export type CommandFunction = (args: TclObj[], interp: TclInterp) => TclValue | void;

export class TclInterp {
  private constructor();
  delete(): void;

  eval(script: string): string;
  evalFile(path: string): void;
  procExists(name: string): boolean;

  invoke(objs: readonly TclObj[]): number;
  call(objs: readonly TclObj[]): void;
  invokeIo(
    name: TclObj,
    handle: TclObj,
    middle: TclObj | 0,
    count: number,
    offset: bigint,
    extra?: readonly TclObj[],
  ): number;
  error(code: number): TclError;

  resultString(): string;
  resultBytes(): Uint8Array;
  resultBytesInto(dest: Uint8Array): number;
  resultWide(): bigint;
  resultBool(): boolean;
  resultObj(): TclObj;
  setResult(obj: TclObj): void;

  newString(s: string): TclObj;
  /** Throws a TclError with errorCode `POSIX ENOMEM ...` if the heap cannot hold the bytes. */
  newBytes(bytes: Uint8Array): TclObj;
  newInt(n: number): TclObj;
  newWide(n: bigint | number): TclObj;
  newDouble(n: number): TclObj;
  newBool(b: boolean): TclObj;
  newList(objs: readonly TclObj[]): TclObj;
  newValue(value: TclValue): TclObj;
  retain(obj: TclObj): void;
  /** A no-op once the runtime has failed. */
  release(obj: TclObj | 0): void;

  objString(obj: TclObj): string;
  objBytes(obj: TclObj): Uint8Array;
  objWide(obj: TclObj): bigint;
  objBool(obj: TclObj): boolean;
  objDouble(obj: TclObj): number;
  listElements(obj: TclObj): TclObj[];

  getVar(name: string): TclObj | 0;
  getVarString(name: string): string | undefined;
  setVar(name: string, value: TclValue): void;

  createCommand(name: string, fn: CommandFunction): void;
  flushStd(): void;
}
