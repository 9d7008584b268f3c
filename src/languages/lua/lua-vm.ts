/**
 * One Lua 5.4 interpreter (wasmoon's WebAssembly build) driven through the raw Lua C API.
 *
 * wasmoon's high-level API converts every Lua string through UTF-8, which corrupts binary data
 * (NUL bytes, bytes that are not UTF-8). Everything here goes through the module's raw exports
 * (`_lua_pushlstring`, `_lua_tolstring`, ...) and the WASM heap instead, so Lua strings stay the
 * byte strings they are, and the hot path allocates nothing on the WASM side.
 */
import { createRequire } from 'node:module';
import { logDebug, logRaw } from '../../host/log.js';
import { delayWasmTierUp } from '../wasm-tiering.js';
import { PluginError } from '../../host/plugin.js';

// require() rather than import: an ESM import of this CommonJS bundle makes Node scan its
// 150 KB for export names first, a visible part of start-up time.
const wasmoon = createRequire(import.meta.url)('wasmoon') as typeof import('wasmoon');

export type LuaState = number;
/** Address of a `lua_CFunction` in the WASM function table. */
export type CFunctionPtr = number;

/** The raw C API exports this adapter uses (names as emscripten exports them). */
export interface LuaModule {
  HEAPU8: Uint8Array;
  HEAP32: Int32Array;
  addFunction(fn: (L: LuaState) => number, signature: 'ii'): CFunctionPtr;
  _malloc(size: number): number;
  _free(ptr: number): void;

  _luaL_newstate(): LuaState;
  _luaL_openlibs(L: LuaState): void;
  _lua_close(L: LuaState): void;
  _lua_gettop(L: LuaState): number;
  _lua_settop(L: LuaState, idx: number): void;
  _lua_pushvalue(L: LuaState, idx: number): void;
  _lua_rotate(L: LuaState, idx: number, n: number): void;
  _lua_type(L: LuaState, idx: number): number;
  _lua_isinteger(L: LuaState, idx: number): number;
  _lua_toboolean(L: LuaState, idx: number): number;
  _lua_tolstring(L: LuaState, idx: number, lenPtr: number): number;
  _lua_tointegerx(L: LuaState, idx: number, isnumPtr: number): bigint;
  _lua_tonumberx(L: LuaState, idx: number, isnumPtr: number): number;
  _lua_touserdata(L: LuaState, idx: number): number;
  _lua_topointer(L: LuaState, idx: number): number;
  _lua_rawlen(L: LuaState, idx: number): number;
  _lua_pushnil(L: LuaState): void;
  _lua_pushboolean(L: LuaState, b: number): void;
  _lua_pushinteger(L: LuaState, n: bigint): void;
  _lua_pushnumber(L: LuaState, n: number): void;
  _lua_pushlstring(L: LuaState, ptr: number, len: number): number;
  _lua_pushstring(L: LuaState, ptr: number): number;
  _lua_pushcclosure(L: LuaState, fn: CFunctionPtr, nup: number): void;
  _lua_createtable(L: LuaState, narr: number, nrec: number): void;
  _lua_rawget(L: LuaState, idx: number): number;
  _lua_rawgeti(L: LuaState, idx: number, n: bigint): number;
  _lua_rawset(L: LuaState, idx: number): void;
  _lua_rawseti(L: LuaState, idx: number, n: bigint): void;
  _lua_getfield(L: LuaState, idx: number, k: number): number;
  _lua_setfield(L: LuaState, idx: number, k: number): void;
  _lua_setglobal(L: LuaState, name: number): void;
  _lua_setmetatable(L: LuaState, idx: number): number;
  _lua_newuserdatauv(L: LuaState, size: number, nuvalue: number): number;
  _lua_pcallk(L: LuaState, nargs: number, nresults: number, msgh: number, ctx: number, k: number): number;
  _lua_error(L: LuaState): number;
  _lua_concat(L: LuaState, n: number): void;
  _lua_stringtonumber(L: LuaState, s: number): number;
  _luaL_ref(L: LuaState, t: number): number;
  _luaL_unref(L: LuaState, t: number, ref: number): void;
  _luaL_loadbufferx(L: LuaState, buf: number, size: number, name: number, mode: number): number;
  _luaL_newmetatable(L: LuaState, tname: number): number;
  _luaL_checkudata(L: LuaState, arg: number, tname: number): number;
  _luaL_testudata(L: LuaState, arg: number, tname: number): number;
  _luaL_checklstring(L: LuaState, arg: number, lenPtr: number): number;
  _luaL_checkinteger(L: LuaState, arg: number): bigint;
  _luaL_checkstack(L: LuaState, size: number, msg: number): void;
  _luaL_optinteger(L: LuaState, arg: number, def: bigint): bigint;
  _luaL_tolstring(L: LuaState, idx: number, lenPtr: number): number;
  _luaL_argerror(L: LuaState, arg: number, extramsg: number): number;
  _luaL_where(L: LuaState, level: number): void;
}

/** Lua type tags (lua.h). */
export const LuaType = {
  NONE: -1,
  NIL: 0,
  BOOLEAN: 1,
  LIGHTUSERDATA: 2,
  NUMBER: 3,
  STRING: 4,
  TABLE: 5,
  FUNCTION: 6,
  USERDATA: 7,
  THREAD: 8,
} as const;

/** lua.h status codes. */
export const LUA_OK = 0;
export const LUA_ERRSYNTAX = 3;
/** LUA_REGISTRYINDEX for the default LUAI_MAXSTACK of 1000000. */
export const LUA_REGISTRYINDEX = -1000000 - 1000;
const LUA_RIDX_GLOBALS = 2n;
/** LUAI_MAXSHORTLEN: longer strings are not interned, and their hash is computed only when needed. */
const MAX_SHORT_STRING = 40;
/**
 * From this length up, a string the adapter fills is built in place (pushStringToFill): below
 * it the copy that saves costs less than the extra calls into the allocator.
 */
export const FILL_IN_PLACE_MIN = 4096;
/**
 * The largest block asked of the interpreter's 32-bit malloc. A larger size would be cut to 32
 * bits on the way in and give a smaller block than the caller goes on to fill.
 */
const MAX_HEAP_BLOCK = 0x7fff_0000;

function checkHeapBlockSize(size: number): void {
  if (size > MAX_HEAP_BLOCK) throw new PluginError(`out of memory allocating ${size} bytes`, 'ENOMEM');
}

const LUA_TYPE_NAMES = ['nil', 'boolean', 'userdata', 'number', 'string', 'table', 'function', 'userdata', 'thread'];

/**
 * An exception that unwound part of the interpreter's own WebAssembly frames, skipping its C
 * cleanup: the JavaScript stack overflowing inside it, or a WebAssembly trap. Never to be turned
 * into a Lua error: the state it left behind is not one Lua's error recovery knows how to undo.
 */
export function isInterpreterTrap(e: unknown): boolean {
  const wasmRuntimeError = (globalThis as unknown as { WebAssembly: { RuntimeError: new () => Error } }).WebAssembly
    .RuntimeError;
  if (e instanceof wasmRuntimeError) return true;
  return e instanceof RangeError && /call stack/i.test(e.message);
}

/**
 * The exception emscripten's setjmp/longjmp emulation throws for a Lua error (a longjmp).
 * It must travel through any JavaScript frame between `lua_error` and the `lua_pcall` that
 * catches it; catching it anywhere else leaves the interpreter in a corrupt state.
 */
export function isLuaUnwind(e: unknown): boolean {
  return typeof e === 'number';
}

const REQUIRED_EXPORTS: ReadonlyArray<keyof LuaModule> = [
  '_luaL_newstate',
  '_lua_pushlstring',
  '_lua_tolstring',
  '_lua_pcallk',
  '_luaL_loadbufferx',
  '_luaL_checkudata',
  '_malloc',
];

/** The bits of the WebAssembly global used here (the project's lib settings omit its types). */
type WasmExports = Record<string, unknown>;
interface WasmApi {
  instantiate(...args: unknown[]): Promise<unknown>;
  Instance: abstract new (...args: never[]) => { exports: WasmExports };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * Run wasmoon's initialisation while noting the exports of the WebAssembly instance it creates
 * (wasmoon does not expose them). Undefined exports leave the module's wrappers in use.
 */
async function instantiateCapturingExports<T>(
  initialize: () => Promise<T>,
): Promise<{ wasm: T; exports: WasmExports | undefined }> {
  const original = wasmApi.instantiate;
  let exports: WasmExports | undefined;
  wasmApi.instantiate = async (...args: unknown[]): Promise<unknown> => {
    const result = await original.apply(wasmApi, args);
    const instance = result instanceof wasmApi.Instance ? result : (result as { instance?: unknown }).instance;
    if (instance instanceof wasmApi.Instance && 'lua_pushlstring' in instance.exports) exports ??= instance.exports;
    return result;
  };
  try {
    return { wasm: await initialize(), exports };
  } finally {
    wasmApi.instantiate = original;
  }
}

/**
 * What emscripten's runtime prints: C's stdout and stderr, and its own diagnostics. It binds
 * console.log and console.error once, when the module is created (see routeConsole). Nothing
 * goes to stdout, which is the NBD socket under -s. "Cannot enlarge memory" comes once per
 * failed heap growth, several times before Lua gives up with "not enough memory", which the
 * script's error already reports: it is shown only with -v.
 */
function emscriptenOutput(...args: unknown[]): void {
  const text = args.map(String).join(' ');
  if (text.startsWith('Cannot enlarge memory')) logDebug(`lua: ${text}`);
  else logRaw(text);
}

/**
 * Create the module with console.log and console.error bound to emscriptenOutput. The module
 * factory binds them after an await of its own, so they stay replaced until it has finished
 * (a few milliseconds of start-up, when nothing else prints).
 */
async function routeConsole<T>(create: () => Promise<T>): Promise<T> {
  const { log, error } = console;
  console.log = emscriptenOutput;
  console.error = emscriptenOutput;
  try {
    return await create();
  } finally {
    console.log = log;
    console.error = error;
  }
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

export class LuaVm {
  readonly L: LuaState;
  readonly api: LuaModule;
  /** NUL-terminated copies of the names this adapter passes to the C API, made once. */
  private readonly cstrings = new Map<string, number>();
  /** A growable area of the WASM heap used to stage bytes just before Lua copies them. */
  private scratch = 0;
  private scratchSize = 0;
  /** Four-byte out-parameters (string lengths, isnum flags). */
  readonly lenPtr: number;
  private readonly flagPtr: number;
  private closed = false;
  private readonly outOfMemory: number;
  /**
   * How far a long string's bytes lie from the start of its allocation (the size of Lua's
   * TString header), or -1 if it could not be worked out (pushStringToFill then copies).
   */
  private readonly longStringHeader: number;
  /**
   * What pushStagedFn pushes: bytes already copied into the scratch area, or (ptr 0) a string
   * of len bytes for the caller to fill once the call has returned.
   */
  private staged = { ptr: 0, len: 0 };
  private readonly pushStagedFn: CFunctionPtr;

  private constructor(api: LuaModule) {
    this.api = api;
    this.L = api._luaL_newstate();
    if (this.L === 0) throw new Error('could not create Lua interpreter');
    api._luaL_openlibs(this.L);
    this.lenPtr = api._malloc(8);
    this.flagPtr = this.lenPtr + 4;
    this.ensureScratch(64 * 1024);
    this.outOfMemory = this.cstr('not enough memory');
    this.longStringHeader = this.measureLongStringHeader();
    this.pushStagedFn = this.cfunction((S) => {
      if (this.staged.ptr === 0) this.pushStringToFill(S, this.staged.len);
      else this.api._lua_pushlstring(S, this.staged.ptr, this.staged.len);
      return 1;
    });
  }

  static async create(): Promise<LuaVm> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    delayWasmTierUp();
    const { wasm, exports } = await instantiateCapturingExports(() =>
      routeConsole(() => wasmoon.LuaWasm.initialize(undefined, env)),
    );
    const module = wasm.module as unknown as LuaModule;
    // emscripten's exported wrappers (Module._lua_*) check assertions and build a message string
    // on every call; the instance's own exports are the same functions without that cost.
    const api = Object.create(module) as LuaModule;
    if (exports) {
      for (const key of Object.keys(module)) {
        const direct = exports[key.slice(1)];
        if (key.startsWith('_') && typeof direct === 'function') Object.defineProperty(api, key, { value: direct });
      }
    }
    for (const name of REQUIRED_EXPORTS) {
      if (typeof api[name] !== 'function') throw new Error(`wasmoon build lacks ${String(name)}`);
    }
    return new LuaVm(api);
  }

  /** A C string that lives as long as the interpreter (for a small, fixed set of names). */
  cstr(text: string): number {
    let ptr = this.cstrings.get(text);
    if (ptr === undefined) {
      const bytes = utf8.encode(text);
      ptr = this.api._malloc(bytes.length + 1);
      this.api.HEAPU8.set(bytes, ptr);
      this.api.HEAPU8[ptr + bytes.length] = 0;
      this.cstrings.set(text, ptr);
    }
    return ptr;
  }

  /**
   * A heap area of at least `size` bytes, valid until the next call to ensureScratch.
   * Read `api.HEAPU8` after calling this: growing the heap replaces the view.
   */
  ensureScratch(size: number): number {
    if (size > this.scratchSize) {
      checkHeapBlockSize(size);
      if (this.scratch) this.api._free(this.scratch);
      const want = Math.max(size, this.scratchSize * 2);
      this.scratch = this.api._malloc(want);
      if (this.scratch === 0) {
        // Nothing in the interpreter was touched: the request fails, the state is intact.
        this.scratchSize = 0;
        throw new PluginError(`out of memory allocating ${want} bytes`, 'ENOMEM');
      }
      this.scratchSize = want;
    }
    return this.scratch;
  }

  /**
   * lua_topointer gives a string's own address (its header), lua_tolstring the address of its
   * bytes; the difference is the same for every long string of this build.
   */
  private measureLongStringHeader(): number {
    const { api, L } = this;
    const length = 2 * MAX_SHORT_STRING;
    api._lua_pushlstring(L, this.ensureScratch(length), length);
    const header = api._lua_tolstring(L, -1, 0) - api._lua_topointer(L, -1);
    api._lua_settop(L, -2);
    return header > 0 && header <= 64 ? header : -1;
  }

  /**
   * Push a new string of `length` bytes (more than MAX_SHORT_STRING) and return the address of
   * its bytes, which the caller must fill before any Lua code can see the string: a read of a
   * file or a request's data then lands in the string with one copy instead of two.
   *
   * Lua's C API has no uninitialised string; lua_pushlstring always copies from somewhere. Here
   * the source is where Lua's allocator is about to place the string's bytes: the block malloc
   * gives out and takes back just before is the one it gives out again, and a memmove onto
   * itself copies nothing. Should the allocator choose another block, the copy is merely wasted
   * work: the caller overwrites every byte either way. Only long strings can be filled
   * afterwards; a short one is interned by a hash of the bytes it was created with.
   */
  pushStringToFill(L: LuaState, length: number): number {
    if (length <= MAX_SHORT_STRING) throw new Error(`pushStringToFill: ${length} bytes is a short string`);
    checkHeapBlockSize(length);
    const { api } = this;
    // Without a prediction the copy is from the bottom of the heap: Lua copies only after it
    // has allocated the string, which proves the heap holds more than `length` bytes. When
    // malloc fails here, Lua's own allocation collects garbage and tries again, and either
    // succeeds or raises Lua's memory error, as for any other string.
    let source = 0;
    if (this.longStringHeader >= 0) {
      const block = api._malloc(this.longStringHeader + length + 1);
      if (block !== 0) {
        api._free(block);
        source = block + this.longStringHeader;
      }
    }
    api._lua_pushlstring(L, source, length);
    return api._lua_tolstring(L, -1, 0);
  }

  // ---- stack helpers -------------------------------------------------------------------

  pushBytes(L: LuaState, bytes: Uint8Array): void {
    const ptr = this.ensureScratch(bytes.length);
    this.api.HEAPU8.set(bytes, ptr);
    this.api._lua_pushlstring(L, ptr, bytes.length);
  }

  /**
   * pushBytes inside lua_pcall, for strings as large as a request. Outside a protected call a
   * Lua memory error has nowhere to go but Lua's panic, which aborts the interpreter for good;
   * here it comes back as the error message (nothing pushed), and the state stays usable.
   */
  pushBytesProtected(L: LuaState, bytes: Uint8Array): string | undefined {
    const fillAfter = bytes.length >= FILL_IN_PLACE_MIN;
    if (fillAfter) {
      this.staged = { ptr: 0, len: bytes.length };
    } else {
      const ptr = this.ensureScratch(bytes.length);
      this.api.HEAPU8.set(bytes, ptr);
      this.staged = { ptr, len: bytes.length };
    }
    this.api._lua_pushcclosure(L, this.pushStagedFn, 0);
    if (this.api._lua_pcallk(L, 0, 1, 0, 0, 0) === LUA_OK) {
      if (fillAfter) this.api.HEAPU8.set(bytes, this.api._lua_tolstring(L, -1, 0));
      return undefined;
    }
    const message = this.errorText(L, -1);
    this.api._lua_settop(L, -2);
    return message;
  }

  /** Push a JavaScript string as its UTF-8 bytes. */
  pushString(L: LuaState, text: string): void {
    const ptr = this.ensureScratch(text.length * 3);
    const { written } = utf8.encodeInto(text, this.api.HEAPU8.subarray(ptr, ptr + this.scratchSize));
    this.api._lua_pushlstring(L, ptr, written);
  }

  /**
   * A view of the bytes of the string (or number, converted in place) at idx, or undefined for
   * other types. The view aliases the WASM heap: copy it before the value leaves the stack.
   */
  toBytesView(L: LuaState, idx: number): Uint8Array | undefined {
    const ptr = this.api._lua_tolstring(L, idx, this.lenPtr);
    if (ptr === 0) return undefined;
    const len = this.api.HEAP32[this.lenPtr >> 2] >>> 0;
    return this.api.HEAPU8.subarray(ptr, ptr + len);
  }

  /** The string at idx decoded as UTF-8 (for messages, names, paths shown to people). */
  toText(L: LuaState, idx: number): string | undefined {
    const view = this.toBytesView(L, idx);
    return view === undefined ? undefined : utf8Decoder.decode(view);
  }

  /** Pointer and length of a string argument; raises Lua's own "bad argument" error otherwise. */
  checkString(L: LuaState, arg: number): { ptr: number; len: number } {
    const ptr = this.api._luaL_checklstring(L, arg, this.lenPtr);
    return { ptr, len: this.api.HEAP32[this.lenPtr >> 2] >>> 0 };
  }

  /** An integer at idx (floats with an exact integer value count), or undefined. */
  toInteger(L: LuaState, idx: number): bigint | undefined {
    const n = this.api._lua_tointegerx(L, idx, this.flagPtr);
    return this.api.HEAP32[this.flagPtr >> 2] !== 0 ? n : undefined;
  }

  /** A number at idx (numeric strings convert, as lua_tonumber does), or undefined. */
  toNumber(L: LuaState, idx: number): number | undefined {
    const n = this.api._lua_tonumberx(L, idx, this.flagPtr);
    return this.api.HEAP32[this.flagPtr >> 2] !== 0 ? n : undefined;
  }

  typeName(L: LuaState, idx: number): string {
    const t = this.api._lua_type(L, idx);
    return t < 0 ? 'no value' : LUA_TYPE_NAMES[t];
  }

  /** Push the global `name` without running metamethods (a strict-mode _G cannot trap the host). */
  pushGlobal(L: LuaState, name: string): number {
    this.api._lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    this.api._lua_pushstring(L, this.cstr(name));
    const type = this.api._lua_rawget(L, -2);
    // ..., globals, value -> ..., value
    this.api._lua_rotate(L, -2, 1);
    this.api._lua_settop(L, -2);
    return type;
  }

  isFunctionGlobal(L: LuaState, name: string): boolean {
    const top = this.api._lua_gettop(L);
    const type = this.pushGlobal(L, name);
    this.api._lua_settop(L, top);
    return type === LuaType.FUNCTION;
  }

  /**
   * Register a JavaScript function as a Lua C function. A thrown JavaScript error becomes a Lua
   * error (never a JavaScript exception unwinding through the interpreter's C frames).
   */
  cfunction(impl: (L: LuaState) => number): CFunctionPtr {
    return this.api.addFunction((L: LuaState): number => {
      let message: string;
      try {
        return impl(L);
      } catch (e) {
        if (isLuaUnwind(e) || isInterpreterTrap(e)) throw e;
        message = e instanceof Error ? e.message : String(e);
      }
      return this.raise(L, message);
    }, 'ii');
  }

  /** luaL_error: raise a Lua error with the caller's position prefixed. Never returns. */
  raise(L: LuaState, message: string): number {
    this.api._luaL_where(L, 1);
    try {
      this.pushString(L, message);
    } catch {
      // No heap left for the message: an exception here would unwind the interpreter's frames.
      this.api._lua_pushstring(L, this.outOfMemory);
    }
    this.api._lua_concat(L, 2);
    return this.api._lua_error(L);
  }

  /** luaL_argerror: "bad argument #arg to 'fname' (extramsg)". Never returns. */
  argError(L: LuaState, arg: number, extramsg: string): number {
    return this.api._luaL_argerror(L, arg, this.cstr(extramsg));
  }

  /** Set field `name` of the table at idx to a new C function. */
  setFunction(L: LuaState, idx: number, name: string, impl: (L: LuaState) => number): void {
    const table = idx < 0 ? this.api._lua_gettop(L) + idx + 1 : idx;
    this.api._lua_pushcclosure(L, this.cfunction(impl), 0);
    this.api._lua_setfield(L, table, this.cstr(name));
  }

  /**
   * Compile a chunk from bytes. Returns undefined with the function on the stack, or the
   * error message (nothing left on the stack).
   */
  load(L: LuaState, code: Uint8Array, chunkname: string): string | undefined {
    const size = code.length;
    const ptr = this.api._malloc(size + 1);
    if (ptr === 0) return `not enough memory for a chunk of ${size} bytes`;
    try {
      this.api.HEAPU8.set(code, ptr);
      const status = this.api._luaL_loadbufferx(L, ptr, size, this.cstr(chunkname), 0);
      if (status === LUA_OK) return undefined;
      const message = this.errorText(L, -1);
      this.api._lua_settop(L, -2);
      return message;
    } finally {
      this.api._free(ptr);
    }
  }

  /** Text of an error object, as the standalone lua interpreter describes non-string errors. */
  errorText(L: LuaState, idx: number): string {
    const type = this.api._lua_type(L, idx);
    if (type === LuaType.STRING || type === LuaType.NUMBER) return this.toText(L, idx) ?? '';
    return `(error object is a ${this.typeName(L, idx)} value)`;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.api._lua_close(this.L);
  }
}
