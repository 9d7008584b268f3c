// @nbdkit-ts/wasm-tcl: Tcl 8.6 compiled to WebAssembly (see build.sh), with a small typed API.
//
// Values cross the boundary through the WebAssembly heap: strings as UTF-8, byte arrays as raw
// bytes (Tcl_NewByteArrayObj / Tcl_GetByteArrayFromObj), so every byte value round trips.
// Tcl objects are referred to by their heap address; every object this API hands out carries
// one reference owned by the caller, to be given back with release().
import { readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

/** Where Tcl's script library (init.tcl and friends) lives on disk. */
export const libraryPath = join(here, 'wasm', 'library');

export const TCL_OK = 0;
export const TCL_ERROR = 1;
export const TCL_RETURN = 2;
export const TCL_BREAK = 3;
export const TCL_CONTINUE = 4;

const utf8Decoder = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

// How much of a long $errorInfo a TclError carries (see errorInfo()).
const ERROR_INFO_LIMIT = 64 * 1024;

// Room beyond a byte array's bytes for its header and a new block of Tcl objects.
const BYTES_HEADROOM = 4096;

/** A Tcl error (or another non-OK completion code) surfaced to JavaScript. */
export class TclError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.name = 'TclError';
    this.code = details.code ?? TCL_ERROR;
    this.errorInfo = details.errorInfo ?? message;
    this.errorCode = details.errorCode ?? 'NONE';
    this.line = details.line;
  }
}

/**
 * A fault that escaped the interpreter instead of completing as a Tcl error: the JavaScript
 * stack running out inside it, a WebAssembly trap, or emscripten's abort (which is where a
 * Tcl_Panic such as "unable to alloc N bytes" ends). It unwound Tcl's C frames without their
 * cleanup, so the runtime refuses every later call (see TclRuntime.failure).
 */
export class TclTrap extends Error {
  constructor(message, details = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TclTrap';
    this.printed = details.printed ?? '';
  }
}

// Variables emscripten invents for its environment when the host has none of them.
const EMSCRIPTEN_DEFAULT_ENV = ['USER', 'LOGNAME', 'PATH', 'PWD', 'HOME', 'LANG', '_'];

let runtimePromise;

/** Instantiates the WebAssembly module once per process and returns the shared runtime. */
export function loadTcl() {
  runtimePromise ??= Promise.resolve().then(instantiate);
  return runtimePromise;
}

async function instantiate() {
  const createTclModule = require('./wasm/tcl.cjs');
  const commands = new Map();
  const output = {
    1: (bytes) => writeAll(1, bytes),
    2: (bytes) => writeAll(2, bytes),
  };
  const held = new HeldStderr(output);
  const module = await createTclModule({
    // Instantiated here, as emscripten would, but with the C library's writes to stderr
    // diverted to `held` (Tcl's own stdout/stderr channels go through tclwOutput instead).
    instantiateWasm(imports, receiveInstance) {
      const wasi = imports.wasi_snapshot_preview1;
      const fdWrite = wasi.fd_write;
      let memory;
      wasi.fd_write = (fd, iov, iovcnt, pnum) =>
        fd === 2 ? held.fdWrite(memory.buffer, iov, iovcnt, pnum) : fdWrite(fd, iov, iovcnt, pnum);
      const compiled = new WebAssembly.Module(readFileSync(join(here, 'wasm', 'tcl.wasm')));
      const instance = new WebAssembly.Instance(compiled, imports);
      memory = instance.exports.memory;
      receiveInstance(instance, compiled);
      return instance.exports;
    },
    preRun: [
      (m) => {
        // The script sees the real environment ($env(HOME), ...), not emscripten's invention.
        for (const key of EMSCRIPTEN_DEFAULT_ENV) m.ENV[key] = undefined;
        for (const [key, value] of Object.entries(process.env)) {
          if (value !== undefined) m.ENV[key] = value;
        }
      },
    ],
    // Tcl's exit ends in C exit(): emscripten throws its ExitStatus, which the calls below
    // hand to the runtime's exit handler (by default, the process exits with that status).
    quit: (status, toThrow) => {
      throw toThrow;
    },
    print: (text) => writeAll(2, utf8Encoder.encode(text + '\n')),
    // emscripten's own complaints, such as the "Aborted()" it prints before throwing.
    printErr: (text) => held.add(text + '\n'),
    tclwOutput(which, ptr, len) {
      output[which]?.(module.HEAPU8.slice(ptr, ptr + len));
    },
    tclwCommand(id, interp, objc, objv) {
      const command = commands.get(id);
      return command ? command(interp, objc, objv) : TCL_ERROR;
    },
  });
  return new TclRuntime(module, commands, output, held);
}

/**
 * What the interpreter's C code and emscripten's runtime write to stderr: in practice only a
 * Tcl_Panic's message and emscripten's "Aborted()", each just before a trap. It is held back,
 * so that the trap can carry it (and its catcher report it on one line); after a call that
 * returns normally, whatever was held goes on to the stderr sink.
 */
class HeldStderr {
  static LIMIT = 4096;

  constructor(output) {
    this.output = output;
    this.text = '';
  }

  add(text) {
    this.text += text;
    if (this.text.length > HeldStderr.LIMIT) this.text = this.text.slice(-HeldStderr.LIMIT);
  }

  /** WASI fd_write for the C library's stderr: gathers the iovecs into the held text. */
  fdWrite(buffer, iov, iovcnt, pnum) {
    const view = new DataView(buffer);
    let total = 0;
    for (let i = 0; i < iovcnt; i++) {
      const ptr = view.getUint32(iov + 8 * i, true);
      const len = view.getUint32(iov + 8 * i + 4, true);
      this.add(utf8Decoder.decode(new Uint8Array(buffer, ptr, len)));
      total += len;
    }
    view.setUint32(pnum, total, true);
    return 0;
  }

  take() {
    const text = this.text;
    this.text = '';
    return text;
  }

  release() {
    if (this.text !== '') this.output[2](utf8Encoder.encode(this.take()));
  }
}

/** The one-line reason for a trap, from the exception and what the interpreter printed. */
function trapReason(err, printed) {
  if (err instanceof WebAssembly.RuntimeError && err.message.startsWith('Aborted(')) {
    const said = printed
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('Aborted('));
    return said.length > 0 ? `Tcl panic: ${said.join('; ')}` : 'aborted';
  }
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

function writeAll(fd, bytes) {
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(fd, bytes, done, bytes.length - done);
    } catch (err) {
      if (err && err.code === 'EAGAIN') continue;
      return;
    }
  }
}

/** One instance of the WebAssembly module; interpreters made from it share its heap. */
export class TclRuntime {
  constructor(module, commands, output, held) {
    this.module = module;
    this.held = held;
    /**
     * Why the interpreter can no longer be trusted, once a trap has escaped it; undefined until
     * then. After that, eval/evalFile/invoke/call/invokeIo throw a TclTrap without entering it,
     * and nothing else may be called.
     */
    this.failure = undefined;
    this.exports = module.asm;
    this.commands = commands;
    this.output = output;
    this.nextCommandId = 1;
    // A scratch area for out-parameters and argument vectors, allocated once.
    this.scratch = this.exports.malloc(256);
    this.stringBuffer = 0;
    this.stringCapacity = 0;
    this.tempLength = 0;
    this.exitHandler = (status) => process.exit(status);
  }

  /**
   * What happens when a script runs `exit`: Tcl has finalized itself by then, so the default
   * ends the process with the script's status, as tclsh (and native nbdkit) would.
   */
  setExitHandler(handler) {
    this.exitHandler = handler;
  }

  /**
   * The TclTrap for an exception that escaped the interpreter (from any call into it); records
   * the failure the first time. What the interpreter printed just before goes into the trap.
   */
  trapFrom(err) {
    if (err instanceof TclTrap) return err;
    const printed = this.held.take();
    const reason = trapReason(err, printed);
    this.failure ??= reason;
    return new TclTrap(reason, { cause: err, printed });
  }

  /** The trap thrown instead of entering an interpreter that failed earlier. */
  refusal() {
    return new TclTrap(`the interpreter failed earlier (${this.failure})`);
  }

  get heap() {
    return this.module.HEAPU8;
  }

  /** The Tcl version (8.6) and patch level (8.6.13) built in. */
  get version() {
    return this.cString(this.exports.tclw_version());
  }

  get patchLevel() {
    return this.cString(this.exports.tclw_patch_level());
  }

  /**
   * Where the script's stdout (1) or stderr (2) goes: a function receiving each chunk of bytes
   * Tcl writes. The defaults write to the process's own descriptors.
   */
  setOutput(which, sink) {
    this.output[which] = sink;
  }

  /** Creates an interpreter and runs Tcl_Init, which sources init.tcl from libraryPath. */
  createInterp(options = {}) {
    const library = options.library ?? libraryPath;
    const libPtr = this.tempString(library);
    const codePtr = this.scratch;
    const interp = this.exports.tclw_create(libPtr, codePtr);
    const code = this.i32(codePtr);
    const tcl = new TclInterp(this, interp);
    if (code !== TCL_OK) {
      const message = tcl.resultString();
      tcl.delete();
      throw new TclError(`Tcl_Init failed: ${message}`, { code });
    }
    return tcl;
  }

  // --- heap helpers ---

  i32(ptr) {
    return this.module.HEAP32[ptr >> 2];
  }

  cString(ptr) {
    const heap = this.heap;
    let end = ptr;
    while (heap[end] !== 0) end++;
    return utf8Decoder.decode(heap.subarray(ptr, end));
  }

  /** Decodes Tcl's UTF-8, in which U+0000 is the two bytes C0 80. */
  string(ptr, len) {
    const bytes = this.heap.subarray(ptr, ptr + len);
    if (bytes.indexOf(0xc0) < 0) return utf8Decoder.decode(bytes);
    const out = new Uint8Array(len);
    let n = 0;
    for (let i = 0; i < len; i++) {
      if (bytes[i] === 0xc0 && bytes[i + 1] === 0x80) {
        out[n++] = 0;
        i++;
      } else {
        out[n++] = bytes[i];
      }
    }
    return utf8Decoder.decode(out.subarray(0, n));
  }

  /**
   * Encodes s as NUL-terminated Tcl UTF-8 (U+0000 as C0 80) into a reused buffer, valid until
   * the next call; its length without the terminator is left in tempLength.
   */
  tempString(s) {
    let bytes;
    let needed = s.length * 3 + 1;
    if (s.includes('\0')) {
      bytes = encodeTclUtf8(s);
      needed = bytes.length + 1;
    }
    if (needed > this.stringCapacity) {
      if (this.stringBuffer) this.exports.free(this.stringBuffer);
      this.stringCapacity = Math.max(needed, 256);
      this.stringBuffer = this.exports.malloc(this.stringCapacity);
    }
    const heap = this.heap;
    if (bytes) {
      heap.set(bytes, this.stringBuffer);
      this.tempLength = bytes.length;
    } else {
      this.tempLength = utf8Encoder.encodeInto(s, heap.subarray(this.stringBuffer, this.stringBuffer + needed)).written;
    }
    heap[this.stringBuffer + this.tempLength] = 0;
    return this.stringBuffer;
  }
}

function encodeTclUtf8(s) {
  const plain = utf8Encoder.encode(s);
  let zeros = 0;
  for (const b of plain) if (b === 0) zeros++;
  const out = new Uint8Array(plain.length + zeros);
  let n = 0;
  for (const b of plain) {
    if (b === 0) {
      out[n++] = 0xc0;
      out[n++] = 0x80;
    } else {
      out[n++] = b;
    }
  }
  return out;
}

/** One Tcl interpreter. */
export class TclInterp {
  constructor(runtime, ptr) {
    this.runtime = runtime;
    this.ptr = ptr;
    this.x = runtime.exports;
  }

  /** Deletes the interpreter (its handles become invalid); after a failure, only forgets it. */
  delete() {
    if (this.ptr && this.runtime.failure === undefined) this.x.tclw_delete(this.ptr);
    this.ptr = 0;
  }

  // --- evaluation ---

  /** Evaluates a script at global level and returns its result; throws TclError on error. */
  eval(script) {
    if (this.runtime.failure !== undefined) throw this.runtime.refusal();
    // The script gets its own copy: Tcl parses it as it goes, and a command written in
    // JavaScript may reuse the shared string buffer meanwhile.
    const bytes = script.includes('\0') ? encodeTclUtf8(script) : utf8Encoder.encode(script);
    const ptr = this.x.malloc(bytes.length + 1);
    this.runtime.heap.set(bytes, ptr);
    this.runtime.heap[ptr + bytes.length] = 0;
    try {
      const code = this.guard(() => this.x.tclw_eval(this.ptr, ptr, bytes.length));
      if (code !== TCL_OK) throw this.error(code);
    } finally {
      this.x.free(ptr);
    }
    return this.resultString();
  }

  /** Sources a file (Tcl_EvalFile); throws TclError with the line of the error. */
  evalFile(path) {
    if (this.runtime.failure !== undefined) throw this.runtime.refusal();
    const ptr = this.runtime.tempString(path);
    const code = this.guard(() => this.x.tclw_eval_file(this.ptr, ptr));
    if (code !== TCL_OK) {
      const err = this.error(code);
      err.line = this.x.tclw_error_line(this.ptr);
      throw err;
    }
  }

  /** True if a proc of that literal name exists (`info procs name`). */
  procExists(name) {
    return this.x.tclw_proc_exists(this.ptr, this.runtime.tempString(name)) !== 0;
  }

  /**
   * Calls objs[0] with the rest as arguments at global level (Tcl_EvalObjv) and returns the
   * completion code; the result is then read with result*(). The objects stay owned by the caller.
   */
  invoke(objs) {
    const rt = this.runtime;
    if (objs.length > 60) throw new RangeError('too many arguments');
    const base = rt.scratch + 16;
    const heap32 = rt.module.HEAP32;
    for (let i = 0; i < objs.length; i++) heap32[(base >> 2) + i] = objs[i];
    return this.guard(() => this.x.tclw_invoke(this.ptr, objs.length, base));
  }

  /** invoke() that throws a TclError unless the code is TCL_OK. */
  call(objs) {
    const code = this.invoke(objs);
    if (code !== TCL_OK) throw this.error(code);
  }

  /**
   * The data-path call: `name handle middle offset ...extra`, where middle is an object
   * (pwrite's buffer) or 0 to pass `count` as an integer. One boundary crossing per request.
   */
  invokeIo(name, handle, middle, count, offset, extra = []) {
    const rt = this.runtime;
    const base = rt.scratch + 16;
    if (extra.length > 0) {
      const heap32 = rt.module.HEAP32;
      for (let i = 0; i < extra.length; i++) heap32[(base >> 2) + i] = extra[i];
    }
    return this.guard(() => this.x.tclw_invoke_io(this.ptr, name, handle, middle, count, offset, extra.length, base));
  }

  // Runs a call that evaluates Tcl code. A trap restores the C stack pointer (so that the
  // failure can be reported), is thrown as a TclTrap, and makes the runtime refuse later calls.
  guard(fn) {
    const rt = this.runtime;
    if (rt.failure !== undefined) throw rt.refusal();
    const sp = rt.module.stackSave();
    let result;
    try {
      result = fn();
    } catch (err) {
      rt.module.stackRestore(sp);
      throw this.trapError(err);
    }
    if (rt.held.text !== '') rt.held.release();
    return result;
  }

  // `exit` goes to the runtime's exit handler; anything else that is not a Tcl error is a trap.
  trapError(err) {
    if (err instanceof TclError) return err;
    if (err && err.name === 'ExitStatus' && typeof err.status === 'number') {
      this.runtime.exitHandler(err.status);
      return new TclError(`the script called exit ${err.status}`, { code: TCL_ERROR });
    }
    return this.runtime.trapFrom(err);
  }

  /** The TclError describing the interpreter's state after a call returned code. */
  error(code) {
    let message = this.resultString();
    if (code === TCL_BREAK) message = 'invoked "break" outside of a loop';
    else if (code === TCL_CONTINUE) message = 'invoked "continue" outside of a loop';
    const errorInfo = code === TCL_ERROR ? this.errorInfo() ?? message : message;
    const errorCode = code === TCL_ERROR ? this.getVarString('errorCode') ?? 'NONE' : 'NONE';
    return new TclError(message, { code, errorInfo, errorCode });
  }

  /**
   * $errorInfo, abbreviated in the middle when longer than ERROR_INFO_LIMIT: a runaway recursion
   * leaves three lines per level (hundreds of megabytes with a raised recursion limit), which
   * need not all cross into JavaScript to be reported.
   */
  errorInfo() {
    const obj = this.getVar('errorInfo');
    if (!obj) return undefined;
    try {
      const rt = this.runtime;
      const lenPtr = rt.scratch;
      const ptr = this.x.tclw_get_string(obj, lenPtr);
      const len = rt.i32(lenPtr);
      if (len <= ERROR_INFO_LIMIT) return rt.string(ptr, len);
      const text = rt.heap.subarray(ptr, ptr + len);
      // Cut at line ends (also character boundaries) near three quarters of the limit.
      let head = text.subarray(0, ERROR_INFO_LIMIT / 2).lastIndexOf(10);
      if (head < 0) head = ERROR_INFO_LIMIT / 2;
      let tail = len - ERROR_INFO_LIMIT / 4;
      const newline = text.subarray(tail).indexOf(10);
      if (newline >= 0) tail += newline + 1;
      // The newlines from the one ending the head to the one before the tail, less one.
      let omitted = -1;
      for (let i = head; i < tail; i++) if (text[i] === 10) omitted++;
      return `${rt.string(ptr, head)}\n    ... (${omitted} lines omitted)\n${rt.string(ptr + tail, len - tail)}`;
    } finally {
      this.release(obj);
    }
  }

  // --- the result ---

  resultString() {
    const lenPtr = this.runtime.scratch;
    const ptr = this.x.tclw_result_string(this.ptr, lenPtr);
    return this.runtime.string(ptr, this.runtime.i32(lenPtr));
  }

  /** The result as a byte array (a copy). */
  resultBytes() {
    const lenPtr = this.runtime.scratch;
    const ptr = this.x.tclw_result_bytes(this.ptr, lenPtr);
    return this.runtime.heap.slice(ptr, ptr + this.runtime.i32(lenPtr));
  }

  /**
   * Copies the result, as a byte array, into dest (at most dest.length bytes) and returns the
   * result's full length, so a caller can tell a short result without a second copy.
   */
  resultBytesInto(dest) {
    const rt = this.runtime;
    const lenPtr = rt.scratch;
    const ptr = this.x.tclw_result_bytes(this.ptr, lenPtr);
    const len = rt.i32(lenPtr);
    const n = Math.min(len, dest.length);
    dest.set(rt.heap.subarray(ptr, ptr + n));
    return len;
  }

  /** The result as a 64-bit integer; throws TclError if it is not one. */
  resultWide() {
    const out = this.runtime.scratch + 8;
    if (this.x.tclw_result_wide(this.ptr, out) !== TCL_OK) throw this.error(TCL_ERROR);
    return this.runtime.module.HEAP64[out >> 3];
  }

  /** The result as a boolean (1/0, true/false, yes/no, on/off); throws TclError if not one. */
  resultBool() {
    const out = this.runtime.scratch;
    if (this.x.tclw_result_bool(this.ptr, out) !== TCL_OK) throw this.error(TCL_ERROR);
    return this.runtime.i32(out) !== 0;
  }

  /** The result object, with a reference owned by the caller. */
  resultObj() {
    return this.x.tclw_result(this.ptr);
  }

  setResult(obj) {
    this.x.tclw_set_result(this.ptr, obj);
  }

  // --- objects ---

  newString(s) {
    const ptr = this.runtime.tempString(s);
    return this.x.tclw_new_string(ptr, this.runtime.tempLength);
  }

  /**
   * A byte array holding a copy of bytes. Tcl panics (a fatal abort) when it cannot allocate,
   * so the room is tried first with a plain malloc: if the heap cannot hold the bytes, this
   * throws a TclError with errorCode `POSIX ENOMEM ...` and the interpreter stays usable.
   */
  newBytes(bytes) {
    const probe = this.x.malloc(bytes.length + BYTES_HEADROOM);
    if (!probe) {
      throw new TclError(`not enough memory for ${bytes.length} bytes`, {
        errorCode: 'POSIX ENOMEM {not enough memory}',
      });
    }
    this.x.free(probe);
    const storagePtr = this.runtime.scratch;
    const obj = this.x.tclw_new_bytes_uninit(bytes.length, storagePtr);
    const ptr = this.runtime.i32(storagePtr);
    this.runtime.heap.set(bytes, ptr);
    return obj;
  }

  newInt(n) {
    return this.x.tclw_new_int(n | 0);
  }

  newWide(n) {
    return this.x.tclw_new_wide(BigInt.asIntN(64, BigInt(n)));
  }

  newDouble(n) {
    return this.x.tclw_new_double(n);
  }

  newBool(b) {
    return this.x.tclw_new_bool(b ? 1 : 0);
  }

  /** A list of the given objects (the caller keeps its own references to them). */
  newList(objs) {
    const ptr = this.x.malloc(Math.max(objs.length, 1) * 4);
    const heap32 = this.runtime.module.HEAP32;
    for (let i = 0; i < objs.length; i++) heap32[(ptr >> 2) + i] = objs[i];
    const list = this.x.tclw_new_list(objs.length, ptr);
    this.x.free(ptr);
    return list;
  }

  /** Makes a Tcl object from a JavaScript value (string, bytes, number, bigint, boolean, array). */
  newValue(value) {
    if (value === undefined || value === null) return this.newString('');
    if (typeof value === 'string') return this.newString(value);
    if (value instanceof Uint8Array) return this.newBytes(value);
    if (typeof value === 'bigint') return this.newWide(value);
    if (typeof value === 'number') {
      return Number.isSafeInteger(value) ? this.newWide(BigInt(value)) : this.newDouble(value);
    }
    if (typeof value === 'boolean') return this.newBool(value);
    if (Array.isArray(value)) {
      const elements = value.map((v) => this.newValue(v));
      const list = this.newList(elements);
      for (const e of elements) this.release(e);
      return list;
    }
    return this.newString(String(value));
  }

  retain(obj) {
    this.x.tclw_incr(obj);
  }

  /** Gives back a reference; a no-op once the interpreter has failed (nothing enters it then). */
  release(obj) {
    if (obj && this.runtime.failure === undefined) this.x.tclw_decr(obj);
  }

  objString(obj) {
    const lenPtr = this.runtime.scratch;
    const ptr = this.x.tclw_get_string(obj, lenPtr);
    return this.runtime.string(ptr, this.runtime.i32(lenPtr));
  }

  objBytes(obj) {
    const lenPtr = this.runtime.scratch;
    const ptr = this.x.tclw_get_bytes(obj, lenPtr);
    return this.runtime.heap.slice(ptr, ptr + this.runtime.i32(lenPtr));
  }

  objWide(obj) {
    const out = this.runtime.scratch + 8;
    if (this.x.tclw_get_wide(this.ptr, obj, out) !== TCL_OK) throw this.error(TCL_ERROR);
    return this.runtime.module.HEAP64[out >> 3];
  }

  objBool(obj) {
    const out = this.runtime.scratch;
    if (this.x.tclw_get_bool(this.ptr, obj, out) !== TCL_OK) throw this.error(TCL_ERROR);
    return this.runtime.i32(out) !== 0;
  }

  objDouble(obj) {
    const out = this.runtime.scratch + 8;
    if (this.x.tclw_get_double(this.ptr, obj, out) !== TCL_OK) throw this.error(TCL_ERROR);
    return this.runtime.module.HEAPF64[out >> 3];
  }

  /** The elements of a list object, borrowed: valid while the list lives unchanged. */
  listElements(obj) {
    const rt = this.runtime;
    const countPtr = rt.scratch;
    const arrayPtr = rt.scratch + 4;
    if (this.x.tclw_list_elements(this.ptr, obj, countPtr, arrayPtr) !== TCL_OK) {
      throw this.error(TCL_ERROR);
    }
    const n = rt.i32(countPtr);
    const base = rt.i32(arrayPtr) >> 2;
    return Array.from(rt.module.HEAP32.subarray(base, base + n));
  }

  // --- variables ---

  /** A global variable as an object (caller's reference), or 0 if it does not exist. */
  getVar(name) {
    return this.x.tclw_get_var(this.ptr, this.runtime.tempString(name));
  }

  getVarString(name) {
    const obj = this.getVar(name);
    if (!obj) return undefined;
    try {
      return this.objString(obj);
    } finally {
      this.release(obj);
    }
  }

  /** Sets a global variable to a JavaScript value (see newValue). */
  setVar(name, value) {
    const obj = this.newValue(value);
    try {
      const namePtr = this.runtime.tempString(name);
      if (this.x.tclw_set_var(this.ptr, namePtr, obj) !== TCL_OK) throw this.error(TCL_ERROR);
    } finally {
      this.release(obj);
    }
  }

  // --- commands written in JavaScript ---

  /**
   * Creates a Tcl command whose body is fn(args, interp), where args are the argument objects
   * after the command name (borrowed for the duration of the call). fn returns a value for
   * newValue (or undefined for an empty result) and signals a Tcl error by throwing; an error
   * with a `tclErrorCode` string property also sets errorCode.
   */
  createCommand(name, fn) {
    const rt = this.runtime;
    const id = rt.nextCommandId++;
    rt.commands.set(id, (interpPtr, objc, objvPtr) => {
      const base = objvPtr >> 2;
      const args = Array.from(rt.module.HEAP32.subarray(base + 1, base + objc));
      try {
        const value = fn(args, this);
        const obj = this.newValue(value);
        this.setResult(obj);
        this.release(obj);
        return TCL_OK;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const obj = this.newString(message);
        this.setResult(obj);
        this.release(obj);
        if (err && typeof err.tclErrorCode === 'string') {
          const code = this.newString(err.tclErrorCode);
          this.x.tclw_set_error_code(this.ptr, code);
          this.release(code);
        }
        return TCL_ERROR;
      }
    });
    this.x.tclw_create_command(this.ptr, rt.tempString(name), id);
  }

  /** Flushes Tcl's buffered stdout/stderr through the output sinks. */
  flushStd() {
    if (this.runtime.failure === undefined) this.x.tclw_flush_std();
  }
}
