/**
 * The Lua language adapter: `nbdkit-ts lua plugin.lua [key=value ...]`.
 *
 * Runs an nbdkit Lua plugin script (nbdkit-lua-plugin(3)) in wasmoon's Lua 5.4, looking up its
 * callbacks by their literal global names. The Plugin returned here exposes an optional callback
 * only when the script defines the Lua function of that name, so that the backend applies
 * nbdkit's defaults for the others; that set is known once the script has run, so it is filled
 * in by config(script=...) and refreshed after config_complete.
 */
import { readFileSync } from 'node:fs';
import { logError } from '../../host/log.js';
import {
  PluginError,
  ReportedPluginError,
  ThreadModel,
  type BlockSize,
  type CacheMode,
  type ConnectionInfo,
  type ExportInfo,
  type ExtentSink,
  type FuaMode,
  type Plugin,
  type PluginFactory,
  type PluginHost,
  Flag,
} from '../../host/plugin.js';
import { describeFsError } from '../../host/errno.js';
import { HostIo } from './host-io.js';
import { LUA_REGISTRYINDEX, LuaType, LuaVm } from './lua-vm.js';
import { CallContext, installNbdkitLibrary } from './nbdkit-library.js';
import { ScriptStdout } from './stdout.js';

/** What open() returned, pinned in the Lua registry until close. */
class LuaHandle {
  constructor(
    readonly ref: bigint,
    readonly connection: ConnectionInfo,
  ) {}
}

/** Optional callbacks that exist on the Plugin only when the script defines them. */
const OPTIONAL_CALLBACKS = [
  'get_ready',
  'after_fork',
  'cleanup',
  'preconnect',
  'list_exports',
  'default_export',
  'export_description',
  'block_size',
  'is_rotational',
  'can_write',
  'can_flush',
  'can_trim',
  'can_zero',
  'can_fast_zero',
  'can_fua',
  'can_multi_conn',
  'can_extents',
  'can_cache',
  'pwrite',
  'flush',
  'trim',
  'zero',
  'extents',
  'cache',
] as const;
type OptionalCallback = (typeof OPTIONAL_CALLBACKS)[number];

/** Callbacks that, once the interpreter has failed, do nothing rather than fail. */
const QUIET_AFTER_FAILURE: ReadonlySet<string> = new Set(['close', 'cleanup']);

/**
 * What escaped the interpreter: a JavaScript exception or WebAssembly trap that unwound its
 * frames without running Lua's own error handling.
 */
function describeTrap(e: unknown): string {
  // emscripten's longjmp is a thrown number: one reaching here found no setjmp to land in.
  if (typeof e === 'number') return 'a Lua error unwound past its handler';
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

const CONFIG_HELP =
  'script=<FILENAME>     (required) The Lua script to run.\n' +
  '[other arguments may be used by the plugin that you load]';

class LuaPlugin {
  private readonly vm: LuaVm;
  private readonly host: PluginHost;
  private readonly context: CallContext;
  private readonly stdout: ScriptStdout;
  private script: string | undefined;
  /** True until config_complete has succeeded (see failWith). */
  private configuring = true;
  /** Why the interpreter can no longer be trusted, once that has happened (see guard). */
  private trap: string | undefined;
  private trapReported = false;
  readonly plugin: Plugin;

  constructor(vm: LuaVm, host: PluginHost, stdout: ScriptStdout, context: CallContext) {
    this.vm = vm;
    this.context = context;
    this.host = host;
    this.stdout = stdout;
    this.plugin = {
      name: 'lua',
      longname: 'nbdkit-ts Lua plugin',
      description: 'Lua plugin scripts, run in a WebAssembly Lua 5.4',
      magic_config_key: 'script',
      config_help: CONFIG_HELP,
      dump_plugin: this.guarded('dump_plugin', () => this.dumpPlugin()),
      config: this.guarded('config', (key: string, value: string) => this.config(key, value)),
      config_complete: this.guarded('config_complete', () => this.configComplete()),
      thread_model: this.guarded('thread_model', () => this.threadModel()),
      // lua_close walks the whole state: not after a trap has left it inconsistent.
      unload: () => (this.trap === undefined ? this.vm.close() : undefined),
      open: this.guarded('open', (readonly: boolean, connection: ConnectionInfo) => this.open(readonly, connection)),
      close: this.guarded('close', (h: unknown) => this.close(h as LuaHandle)),
      get_size: this.guarded('get_size', (h: unknown) => this.getSize(h as LuaHandle)),
      pread: this.guarded('pread', (h: unknown, buf: Uint8Array, offset: bigint, flags: number) =>
        buf.set(this.preadView(h as LuaHandle, buf.length, offset, flags))),
      // pread must return a string of at least count bytes, all of which are copied.
      pread_fills_buffer: true,
      pread_view: this.guarded('pread', (h: unknown, count: number, offset: bigint, flags: number) => [
        this.preadView(h as LuaHandle, count, offset, flags),
      ]),
    };
  }

  // ---- interpreter traps ---------------------------------------------------------------

  /**
   * Run one callback. A Lua error is a PluginError by the time it gets here; anything else
   * escaped the interpreter (the JS stack overflowing inside it, a WebAssembly trap, a panic's
   * abort, a longjmp with nowhere to land) and left the lua_State mid-call: its call chain,
   * error handler and C stack pointer point into frames that no longer exist, and a table or
   * the collector may be half-updated. Serving data from it could serve garbage, so from then
   * on nothing enters it: this callback and every later one fail with EIO, and the reason is
   * printed once.
   */
  private guard<T>(callback: string, call: () => T): T {
    if (this.trap !== undefined) throw this.refusal(callback);
    try {
      return call();
    } catch (e) {
      if (e instanceof PluginError) throw e;
      this.trap = describeTrap(e);
      throw this.refusal(callback);
    }
  }

  private guarded<A extends unknown[], R>(callback: string, fn: (...args: A) => R): (...args: A) => R {
    if (QUIET_AFTER_FAILURE.has(callback)) {
      return (...args: A): R => (this.trap !== undefined ? (undefined as R) : this.guard(callback, () => fn(...args)));
    }
    return (...args: A): R => this.guard(callback, () => fn(...args));
  }

  private refusal(callback: string): ReportedPluginError {
    if (!this.trapReported) {
      this.trapReported = true;
      logError(`lua: the interpreter suffered a fatal error in ${callback} (${this.trap}); refusing further requests`);
    } else {
      this.host.debug(`lua: ${callback} refused: the interpreter failed earlier`);
    }
    return new ReportedPluginError(`${callback}: the Lua interpreter is unusable after a fatal error`, 'EIO');
  }

  // ---- calling into Lua ----------------------------------------------------------------

  /** Report a failed callback in nbdkit's form and throw the errno the script chose. */
  private fail(callback: string, message: string): never {
    return this.failWith(`${callback}: ${message}`, this.context.pendingErrno ?? 'EIO');
  }

  /**
   * Before config_complete has succeeded, a failure ends start-up and the command line prints
   * it (once); afterwards the message is printed here, in nbdkit's form, and the error carries
   * only the errno for the client.
   */
  private failWith(text: string, errno: string): never {
    if (this.configuring) throw new PluginError(text, errno);
    logError(text);
    throw new ReportedPluginError(text, errno);
  }

  /**
   * Call the global function `name` with the handle (if any) and the arguments pushArgs pushes,
   * leaving `nresults` results on the stack above the returned base (the caller resets the top
   * to base). On a Lua error, reports it and throws.
   */
  private call(name: string, h: LuaHandle | undefined, nresults: number, pushArgs?: () => number): number {
    const { api } = this.vm;
    const L = this.vm.L;
    const base = api._lua_gettop(L);
    this.vm.pushGlobal(L, name);
    let nargs = 0;
    if (h !== undefined) {
      api._lua_rawgeti(L, LUA_REGISTRYINDEX, h.ref);
      nargs++;
    }
    if (pushArgs) {
      try {
        nargs += pushArgs();
      } catch (e) {
        api._lua_settop(L, base);
        throw e;
      }
    }
    this.context.begin(h?.connection);
    if (this.protectedCall(nargs, nresults) !== 0) {
      const message = this.vm.errorText(L, -1);
      api._lua_settop(L, base);
      this.fail(name, message);
    }
    return base;
  }

  /** lua_pcall. What is not a Lua error (a trap) propagates to guard(). */
  private protectedCall(nargs: number, nresults: number): number {
    return this.vm.api._lua_pcallk(this.vm.L, nargs, nresults, 0, 0, 0);
  }

  /** Call a callback for its effect only. */
  private callVoid(name: string, h: LuaHandle | undefined, pushArgs?: () => number): void {
    const base = this.call(name, h, 0, pushArgs);
    this.vm.api._lua_settop(this.vm.L, base);
  }

  /** Call a callback and convert its single result (at stack top) with convert. */
  private callWith<T>(name: string, h: LuaHandle | undefined, convert: () => T, pushArgs?: () => number): T {
    const base = this.call(name, h, 1, pushArgs);
    try {
      return convert();
    } finally {
      this.vm.api._lua_settop(this.vm.L, base);
    }
  }

  private boolResult(name: string): boolean {
    const { api, L } = this.vm;
    if (api._lua_type(L, -1) !== LuaType.BOOLEAN) this.fail(name, 'return value is not a boolean');
    return api._lua_toboolean(L, -1) !== 0;
  }

  private integerAt(name: string, idx: number): bigint {
    const { vm } = this;
    const n = vm.toInteger(vm.L, idx);
    if (n !== undefined) return n;
    // As nbdkit: a non-integral number (or numeric string) is truncated.
    const x = vm.toNumber(vm.L, idx);
    if (x !== undefined && Number.isFinite(x)) return BigInt(Math.trunc(x));
    return this.fail(name, 'cannot convert returned value to an integer');
  }

  private stringResult(name: string): string {
    const { vm } = this;
    const type = vm.api._lua_type(vm.L, -1);
    if (type !== LuaType.STRING && type !== LuaType.NUMBER) this.fail(name, 'return value is not a string');
    return vm.toText(vm.L, -1) ?? '';
  }

  private pushBool(value: boolean): number {
    this.vm.api._lua_pushboolean(this.vm.L, value ? 1 : 0);
    return 1;
  }

  /** count, offset, flags: the tail of every data callback's arguments. */
  private pushRange(count: number, offset: bigint, flags: number): number {
    const { api, L } = this.vm;
    api._lua_pushinteger(L, BigInt(count));
    api._lua_pushinteger(L, offset);
    api._lua_pushinteger(L, BigInt(flags));
    return 3;
  }

  // ---- configuration -------------------------------------------------------------------

  private config(key: string, value: string): void {
    if (this.script === undefined) {
      if (key !== 'script') this.failWith('the first parameter must be script=/path/to/script.lua', 'EINVAL');
      this.loadScript(value);
      return;
    }
    if (!this.vm.isFunctionGlobal(this.vm.L, 'config')) {
      this.failWith(`${this.script}: this plugin does not need command line configuration`, 'EINVAL');
    }
    this.callVoid('config', undefined, () => {
      this.vm.pushString(this.vm.L, key);
      this.vm.pushString(this.vm.L, value);
      return 2;
    });
  }

  private loadScript(path: string): void {
    const { vm } = this;
    const { api, L } = vm;
    const startupError = (text: string): never => this.failWith(text, 'EINVAL');
    let source: Buffer;
    try {
      source = readFileSync(path);
    } catch (e) {
      return startupError(`could not parse Lua script cannot open ${path}: ${describeFsError(e).text}`);
    }
    let start = 0;
    if (source[0] === 0xef && source[1] === 0xbb && source[2] === 0xbf) start = 3;
    let code = source.subarray(start);
    if (code[0] === 0x23 /* '#' */) {
      // A #! line (executable scripts): skipped as luaL_loadfile does, keeping the line break
      // so that error messages give the right line numbers.
      const nl = code.indexOf(0x0a);
      code = nl < 0 ? Buffer.alloc(0) : code.subarray(nl);
    }
    const parseError = vm.load(L, code, `@${path}`);
    if (parseError !== undefined) startupError(`could not parse Lua script ${parseError}`);
    this.context.begin(undefined);
    if (api._lua_pcallk(L, 0, 0, 0, 0, 0) !== 0) {
      const message = vm.errorText(L, -1);
      api._lua_settop(L, -2);
      startupError(`could not run Lua script: ${message}`);
    }
    for (const required of ['open', 'get_size', 'pread']) {
      if (!vm.isFunctionGlobal(L, required)) {
        startupError(
          `${path}: one of the required callbacks 'open', 'get_size' or 'pread' ` +
            'is not defined by this Lua script.  nbdkit requires these callbacks.',
        );
      }
    }
    this.script = path;
    this.exposeCallbacks();
  }

  private configComplete(): void {
    if (this.script === undefined) this.failWith('script=/path/to/script.lua parameter is required', 'EINVAL');
    if (this.vm.isFunctionGlobal(this.vm.L, 'config_complete')) this.callVoid('config_complete', undefined);
    this.exposeCallbacks();
    this.configuring = false;
  }

  private threadModel(): ThreadModel {
    if (this.script === undefined || !this.vm.isFunctionGlobal(this.vm.L, 'thread_model')) {
      return ThreadModel.SERIALIZE_ALL_REQUESTS;
    }
    const model = Number(this.callWith('thread_model', undefined, () => this.integerAt('thread_model', -1)));
    if (model < ThreadModel.SERIALIZE_CONNECTIONS || model > ThreadModel.PARALLEL) {
      this.fail('thread_model', `unknown thread model ${model}`);
    }
    return model as ThreadModel;
  }

  private dumpPlugin(): string[] {
    const { vm } = this;
    const lines: string[] = [];
    vm.pushGlobal(vm.L, '_VERSION');
    const version = /(\d+\.\d+(?:\.\d+)?)/.exec(vm.toText(vm.L, -1) ?? '');
    vm.api._lua_settop(vm.L, -2);
    if (version) lines.push(`lua_version=${version[1]}`);
    if (this.script !== undefined && vm.isFunctionGlobal(vm.L, 'dump_plugin')) {
      const printed = this.stdout.capture(() => {
        try {
          this.callVoid('dump_plugin', undefined);
        } catch (e) {
          // nbdkit reports a failing dump_plugin and goes on with the dump.
          if (!(e instanceof PluginError)) throw e;
          if (!(e instanceof ReportedPluginError)) logError(e.message);
        }
      });
      lines.push(...printed);
    }
    return lines;
  }

  /** Put on the Plugin exactly the optional callbacks the script defines now. */
  private exposeCallbacks(): void {
    const plugin = this.plugin as Plugin & Partial<Record<OptionalCallback, unknown>>;
    const implementations = this.optionalImplementations();
    for (const name of OPTIONAL_CALLBACKS) {
      if (this.vm.isFunctionGlobal(this.vm.L, name)) {
        const implementation = implementations[name] as (...args: unknown[]) => unknown;
        Object.assign(plugin, { [name]: this.guarded(name, implementation) });
      } else {
        delete plugin[name];
      }
    }
    // nbdkit's Lua plugin always has a flush (doing nothing when the script has none) and says
    // can_flush false then: so the server offers FUA, emulated by that flush, to any writable
    // script that does not answer can_fua itself.
    if (plugin.flush === undefined) {
      plugin.flush = () => undefined;
      if (plugin.can_flush === undefined) plugin.can_flush = () => false;
    }
  }

  private optionalImplementations(): Required<Pick<Plugin, OptionalCallback>> {
    type H = LuaHandle;
    const bool = (name: string) => (h: unknown) => this.callWith(name, h as H, () => this.boolResult(name));
    const mode = (name: string) => (h: unknown) =>
      this.callWith(name, h as H, () => {
        const n = Number(this.integerAt(name, -1));
        if (n < 0 || n > 2) this.fail(name, `invalid return value ${n}`);
        return n as FuaMode & CacheMode;
      });
    return {
      get_ready: () => this.callVoid('get_ready', undefined),
      after_fork: () => this.callVoid('after_fork', undefined),
      cleanup: () => this.callVoid('cleanup', undefined),
      preconnect: (readonly) => this.callVoid('preconnect', undefined, () => this.pushBool(readonly)),
      list_exports: (readonly, isTls) => this.listExports(readonly, isTls),
      default_export: (readonly, isTls) =>
        this.callWith(
          'default_export',
          undefined,
          () => this.stringResult('default_export'),
          () => this.pushBool(readonly) + this.pushBool(isTls),
        ),
      export_description: (h) =>
        this.callWith('export_description', h as H, () => this.stringResult('export_description')),
      block_size: (h) => this.blockSize(h as H),
      is_rotational: bool('is_rotational'),
      can_write: bool('can_write'),
      can_flush: bool('can_flush'),
      can_trim: bool('can_trim'),
      can_zero: bool('can_zero'),
      can_fast_zero: bool('can_fast_zero'),
      can_fua: mode('can_fua'),
      can_multi_conn: bool('can_multi_conn'),
      can_extents: bool('can_extents'),
      can_cache: mode('can_cache'),
      pwrite: (h, buf, offset, flags) => this.pwrite(h as H, buf, offset, flags),
      flush: (h, flags) =>
        this.callVoid('flush', h as H, () => {
          this.vm.api._lua_pushinteger(this.vm.L, BigInt(flags));
          return 1;
        }),
      trim: (h, count, offset, flags) => this.callVoid('trim', h as H, () => this.pushRange(count, offset, flags)),
      zero: (h, count, offset, flags) =>
        this.callVoid('zero', h as H, () => {
          const { api, L } = this.vm;
          // The seed's signature, zero(h, count, offset, may_trim), then the flags.
          api._lua_pushinteger(L, BigInt(count));
          api._lua_pushinteger(L, offset);
          api._lua_pushboolean(L, flags & Flag.MAY_TRIM ? 1 : 0);
          api._lua_pushinteger(L, BigInt(flags));
          return 4;
        }),
      extents: (h, count, offset, flags, sink) => this.extents(h as H, count, offset, flags, sink),
      cache: (h, count, offset, flags) => this.callVoid('cache', h as H, () => this.pushRange(count, offset, flags)),
    };
  }

  // ---- connections ---------------------------------------------------------------------

  private open(readonly: boolean, connection: ConnectionInfo): LuaHandle {
    const { api, L } = this.vm;
    this.context.begin(connection);
    const base = api._lua_gettop(L);
    this.vm.pushGlobal(L, 'open');
    api._lua_pushboolean(L, readonly ? 1 : 0);
    if (this.protectedCall(1, 1) !== 0) {
      const message = this.vm.errorText(L, -1);
      api._lua_settop(L, base);
      this.fail('open', message);
    }
    // luaL_ref pops the handle and keeps it alive until close unrefs it.
    const ref = api._luaL_ref(L, LUA_REGISTRYINDEX);
    api._lua_settop(L, base);
    return new LuaHandle(BigInt(ref), connection);
  }

  private close(h: LuaHandle): void {
    try {
      if (this.vm.isFunctionGlobal(this.vm.L, 'close')) this.callVoid('close', h);
    } finally {
      this.vm.api._luaL_unref(this.vm.L, LUA_REGISTRYINDEX, Number(h.ref));
    }
  }

  private getSize(h: LuaHandle): bigint {
    return this.callWith('get_size', h, () => this.integerAt('get_size', -1));
  }

  private listExports(readonly: boolean, isTls: boolean): ExportInfo[] {
    const name = 'list_exports';
    return this.callWith(
      name,
      undefined,
      () => {
        const { vm } = this;
        const { api, L } = vm;
        const exports: ExportInfo[] = [];
        this.eachListEntry(name, (i, entry) => {
          const type = api._lua_type(L, entry);
          if (type === LuaType.STRING) {
            exports.push({ name: vm.toText(L, entry) ?? '' });
          } else if (type === LuaType.TABLE) {
            const exportName = this.field(entry, 'name', 1);
            if (exportName === undefined) this.fail(name, `export ${i} has no name`);
            const description = this.field(entry, 'description', 2);
            exports.push(description === undefined ? { name: exportName } : { name: exportName, description });
          } else {
            this.fail(name, `export ${i} is not a string or a table`);
          }
        });
        return exports;
      },
      () => this.pushBool(readonly) + this.pushBool(isTls),
    );
  }

  /**
   * For each entry of the table the callback returned (at the top of the stack, checked to be
   * one), `visit(i, entry)` with the entry pushed at stack index `entry`; the stack is restored
   * after each.
   */
  private eachListEntry(name: string, visit: (i: number, entry: number) => void): void {
    const { api, L } = this.vm;
    if (api._lua_type(L, -1) !== LuaType.TABLE) this.fail(name, 'return value is not a table');
    const list = api._lua_gettop(L);
    const n = api._lua_rawlen(L, list);
    for (let i = 1; i <= n; i++) {
      api._lua_rawgeti(L, list, BigInt(i));
      visit(i, api._lua_gettop(L));
      api._lua_settop(L, list);
    }
  }

  /**
   * Push the field of the table at idx by name, or else by position (no metamethods), call
   * `read` on it at the top of the stack, and pop it again.
   */
  private withField<T>(idx: number, key: string, position: number, read: () => T): T {
    const { vm } = this;
    const { api, L } = vm;
    api._lua_pushstring(L, vm.cstr(key));
    if (api._lua_rawget(L, idx) <= LuaType.NIL) {
      api._lua_settop(L, -2);
      api._lua_rawgeti(L, idx, BigInt(position));
    }
    try {
      return read();
    } finally {
      api._lua_settop(L, -2);
    }
  }

  /** A string field of the table at idx, by name or else by position. */
  private field(idx: number, key: string, position: number): string | undefined {
    const { api, L } = this.vm;
    return this.withField(idx, key, position, () => (api._lua_type(L, -1) > LuaType.NIL ? this.vm.toText(L, -1) : undefined));
  }

  private blockSize(h: LuaHandle): BlockSize {
    const name = 'block_size';
    const base = this.call(name, h, 3);
    try {
      return {
        minimum: Number(this.integerAt(name, -3)),
        preferred: Number(this.integerAt(name, -2)),
        maximum: Number(this.integerAt(name, -1)),
      };
    } finally {
      this.vm.api._lua_settop(this.vm.L, base);
    }
  }

  // ---- data ----------------------------------------------------------------------------

  /**
   * The string pread returned, as a view of the heap. Popped already, but Lua only frees memory
   * when it next runs, so the view stays good until the plugin is called again.
   */
  private preadView(h: LuaHandle, count: number, offset: bigint, flags: number): Uint8Array {
    const { vm } = this;
    const { api, L } = vm;
    const base = this.call('pread', h, 1, () => this.pushRange(count, offset, flags));
    const ptr = api._lua_tolstring(L, -1, vm.lenPtr);
    const len = api.HEAP32[vm.lenPtr >> 2] >>> 0;
    if (ptr === 0) {
      api._lua_settop(L, base);
      this.fail('pread', 'return value is not a string');
    }
    if (len < count) {
      api._lua_settop(L, base);
      this.fail('pread', 'returned string length < count bytes');
    }
    api._lua_settop(L, base);
    return api.HEAPU8.subarray(ptr, ptr + count);
  }

  private pwrite(h: LuaHandle, buf: Uint8Array, offset: bigint, flags: number): void {
    const { vm } = this;
    this.callVoid('pwrite', h, () => {
      const failure = vm.pushBytesProtected(vm.L, buf);
      if (failure !== undefined) this.failWith(`pwrite: ${failure}`, 'ENOMEM');
      vm.api._lua_pushinteger(vm.L, offset);
      vm.api._lua_pushinteger(vm.L, BigInt(flags));
      return 3;
    });
  }

  private extents(h: LuaHandle, count: number, offset: bigint, flags: number, sink: ExtentSink): void {
    const name = 'extents';
    this.callWith(
      name,
      h,
      () => {
        const { api, L } = this.vm;
        this.eachListEntry(name, (i, entry) => {
          if (api._lua_type(L, entry) !== LuaType.TABLE) this.fail(name, `extent ${i} is not a table`);
          const start = this.integerField(entry, 'offset', 1, i);
          const length = this.integerField(entry, 'length', 2, i);
          const type = this.integerField(entry, 'type', 3, i);
          try {
            sink.add(start, length, Number(type));
          } catch (e) {
            const errno = (e as { errno?: unknown }).errno;
            if (typeof errno === 'string') this.context.pendingErrno = errno;
            this.fail(name, e instanceof Error ? e.message : String(e));
          }
        });
      },
      () => this.pushRange(count, offset, flags),
    );
  }

  private integerField(idx: number, key: string, position: number, extent: number): bigint {
    const value = this.withField(idx, key, position, () => this.vm.toInteger(this.vm.L, -1));
    if (value === undefined) this.fail('extents', `extent ${extent}: ${key} is not an integer`);
    return value;
  }
}

const factory: PluginFactory = async (host) => {
  const vm = await LuaVm.create();
  const stdout = new ScriptStdout();
  const context = new CallContext();
  new HostIo(vm, stdout).install();
  installNbdkitLibrary(vm, host, context);
  return new LuaPlugin(vm, host, stdout, context).plugin;
};

export default factory;
