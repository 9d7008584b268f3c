/**
 * The Tcl language adapter: runs an nbdkit Tcl plugin script in the WebAssembly Tcl of
 * #wasm-tcl (runtimes/wasm-tcl) and exposes it as a Plugin.
 *
 * As nbdkit's Tcl plugin: the script is sourced when `script=` is configured (top-level commands
 * run then), procs are found by their literal names, the handle is whatever Tcl value
 * plugin_open returns, pread returns a byte array and pwrite receives one. Only the callbacks
 * whose procs the script defines are put on the Plugin, so the backend applies nbdkit's
 * defaults for the rest.
 */
import { writeSync } from 'node:fs';
import { delayWasmTierUp } from '../wasm-tiering.js';
import {
  loadTcl,
  TCL_OK,
  TclError,
  type TclInterp,
  type TclObj,
  type TclRuntime,
} from '#wasm-tcl';
import {
  type ConnectionInfo,
  type ExtentSink,
  Flag,
  type Handle,
  type Plugin,
  PluginError,
  type PluginHost,
  ReportedPluginError,
  ThreadModel,
} from '../../host/plugin.js';
import { ARGS_BEFORE_FLAGS, type FlaggedProc, PROC_FOR_CALLBACK, REQUIRED_PROCS } from './callbacks.js';
import { blockSizeOf, exportsOf, extentsOf, modeOf, threadModelOf } from './convert.js';
import { reportedFailure, startupFailure } from './errors.js';
import { passFaults, TrapGuard } from './fatal.js';
import { type CallState, installNbdkitCommand } from './nbdkit-command.js';

const CONFIG_HELP = `script=<FILENAME>     (required) The Tcl script to run.
[other arguments may be used by the plugin that you load]`;

const NO_OBJS: readonly TclObj[] = [];

/** The per-connection handle: the Tcl value plugin_open returned, and its connection. */
class TclHandle {
  constructor(
    readonly obj: TclObj,
    readonly connection: ConnectionInfo,
  ) {}
}

function tclHandle(h: Handle): TclHandle {
  if (!(h instanceof TclHandle)) throw new PluginError('tcl: invalid handle', 'EINVAL');
  return h;
}

/** The flush of a script without plugin_flush, and its can_flush (see discoverCallbacks). */
const FLUSH_NOTHING = (): void => undefined;
const CANNOT_FLUSH = (): boolean => false;

export class TclAdapter {
  readonly plugin: Plugin;
  private runtime: TclRuntime | undefined;
  private tcl: TclInterp | undefined;
  private script: string | undefined;
  /** Proc names as Tcl objects, made once: no string conversion on the data path. */
  private readonly names = new Map<string, TclObj>();
  /** Data procs declaring a trailing flags parameter. */
  private readonly takesFlags = new Set<FlaggedProc>();
  private readonly state: CallState = { connection: undefined, errno: undefined };
  /** Every callback but load runs under it: see fatal.ts. */
  private readonly guard: TrapGuard;

  constructor(private readonly host: PluginHost) {
    this.guard = new TrapGuard(host, (error) => this.describeFault(error));
    const g = <A extends unknown[], R>(callback: string, fn: (...args: A) => R) => this.guard.wrap(callback, fn);
    this.plugin = {
      name: 'tcl',
      longname: 'nbdkit Tcl plugin',
      description: 'Runs nbdkit plugins written in Tcl, on Tcl 8.6 compiled to WebAssembly.',
      config_help: CONFIG_HELP,
      magic_config_key: 'script',
      load: () => this.load(),
      unload: g('unload', () => this.unload()),
      dump_plugin: g('dump_plugin', () => this.dumpPlugin()),
      config: g('config', (key: string, value: string) => this.config(key, value)),
      config_complete: g('config_complete', () => this.configComplete()),
      thread_model: g('thread_model', () => this.threadModel()),
      open: g('open', (readonly: boolean, connection: ConnectionInfo) => this.open(readonly, connection)),
      close: g('close', (h: Handle) => this.close(h)),
      get_size: g('get_size', (h: Handle) => this.getSize(h)),
      pread: g('pread', (h: Handle, buf: Uint8Array, offset: bigint, flags: number) =>
        this.pread(h, buf, offset, flags)),
      // pread must return at least count bytes, all of which are copied.
      pread_fills_buffer: true,
    };
  }

  /** The one-line reason for a fault that escaped the interpreter; the runtime records it. */
  private describeFault(error: unknown): string {
    if (this.runtime) return this.runtime.trapFrom(error).message;
    return error instanceof Error ? error.message || error.name : String(error);
  }

  private get interp(): TclInterp {
    if (!this.tcl) throw new PluginError('tcl: the interpreter is not loaded', 'EIO');
    return this.tcl;
  }

  // --- start-up ---

  private async load(): Promise<void> {
    delayWasmTierUp();
    const runtime = await loadTcl();
    // Under -s the process's stdout is the NBD socket: the script's stdout goes to stderr
    // (dump_plugin captures it separately).
    runtime.setOutput(1, (bytes) => writeQuietly(2, bytes));
    try {
      this.tcl = runtime.createInterp();
    } catch (error) {
      throw new PluginError(`cannot initialize Tcl interpreter: ${(error as Error).message}`);
    }
    this.runtime = runtime;
    installNbdkitCommand(this.tcl, this.host, this.state);
  }

  private unload(): void {
    if (!this.tcl) return;
    for (const obj of this.names.values()) this.tcl.release(obj);
    this.names.clear();
    this.tcl.delete();
    this.tcl = undefined;
  }

  private config(key: string, value: string): void {
    if (this.script === undefined) {
      if (key !== 'script') throw new PluginError('the first parameter must be script=/path/to/script.tcl', 'EINVAL');
      this.loadScript(value);
      return;
    }
    if (!this.interp.procExists('config')) {
      throw new PluginError(`${this.script}: this plugin does not need command line configuration`, 'EINVAL');
    }
    this.begin(undefined);
    this.callAtStartup('config', 'config', [key, value]);
  }

  private loadScript(path: string): void {
    const interp = this.interp;
    this.script = path;
    try {
      interp.evalFile(path);
    } catch (error) {
      if (!(error instanceof TclError)) throw startupFailure(`could not load Tcl script: ${path}`, path, error);
      // errorInfo repeats the message on its first line; the rest says where.
      const where = error.errorInfo.startsWith(error.message) ? error.errorInfo.slice(error.message.length) : '';
      const line = error.line !== undefined ? `line ${error.line}: ` : '';
      throw new PluginError(`could not load Tcl script: ${path}: ${line}${error.message}${where}`, 'EINVAL');
    }
    if (!REQUIRED_PROCS.every((proc) => interp.procExists(proc))) {
      throw new PluginError(
        `${path}: one of the required callbacks 'plugin_open', 'get_size' or 'pread' is not defined by this Tcl script.  nbdkit requires these callbacks.`,
        'EINVAL',
      );
    }
    this.discoverCallbacks();
  }

  private configComplete(): void {
    if (this.script === undefined) {
      throw new PluginError('the first parameter must be script=/path/to/script.tcl', 'EINVAL');
    }
    if (this.interp.procExists('config_complete')) {
      this.begin(undefined);
      this.callAtStartup('config_complete', 'config_complete', []);
    }
    // A script may define procs while configuring (nbdkit looks procs up at every call).
    this.discoverCallbacks();
  }

  private threadModel(): ThreadModel {
    if (!this.tcl || !this.tcl.procExists('thread_model')) return ThreadModel.SERIALIZE_ALL_REQUESTS;
    this.begin(undefined);
    this.invoke('thread_model', 'thread_model', NO_OBJS);
    return threadModelOf(this.interp.resultString());
  }

  private dumpPlugin(): string[] {
    const runtime = this.runtime;
    if (!runtime) return [];
    const lines = [`tcl_version=${runtime.version}`, `tcl_patch_level=${runtime.patchLevel}`];
    if (this.script === undefined || !this.interp.procExists('dump_plugin')) return lines;
    // The script prints its lines with puts; they join the host's lines on stdout.
    const chunks: Uint8Array[] = [];
    runtime.setOutput(1, (bytes) => chunks.push(bytes));
    try {
      this.begin(undefined);
      this.invoke('dump_plugin', 'dump_plugin', NO_OBJS);
    } catch (error) {
      if (!(error instanceof ReportedPluginError)) throw error;
    } finally {
      this.interp.flushStd();
      runtime.setOutput(1, (bytes) => writeQuietly(2, bytes));
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text !== '') lines.push(...text.replace(/\n$/, '').split('\n'));
    return lines;
  }

  /** Puts on the Plugin the optional callbacks whose procs the script defines. */
  private discoverCallbacks(): void {
    const interp = this.interp;
    const p = this.plugin;
    const has = (proc: string): boolean => interp.procExists(proc);
    const g = <A extends unknown[], R>(callback: string, fn: (...args: A) => R) => this.guard.wrap(callback, fn);
    const bool = (callback: keyof typeof PROC_FOR_CALLBACK) => g(callback, (h: Handle) => this.askBool(callback, h));

    if (has('can_write')) p.can_write = bool('can_write');
    if (has('can_flush')) p.can_flush = bool('can_flush');
    if (has('is_rotational')) p.is_rotational = bool('is_rotational');
    if (has('can_trim')) p.can_trim = bool('can_trim');
    if (has('can_zero')) p.can_zero = bool('can_zero');
    if (has('can_fast_zero')) p.can_fast_zero = bool('can_fast_zero');
    if (has('can_multi_conn')) p.can_multi_conn = bool('can_multi_conn');
    if (has('can_extents')) p.can_extents = bool('can_extents');
    if (has('can_fua')) p.can_fua = g('can_fua', (h: Handle) => modeOf('can_fua', this.askString('can_fua', h)));
    if (has('can_cache')) {
      p.can_cache = g('can_cache', (h: Handle) => modeOf('can_cache', this.askString('can_cache', h)));
    }
    if (has('export_description')) {
      p.export_description = g('export_description', (h: Handle) => this.askString('export_description', h));
    }
    if (has('block_size')) p.block_size = g('block_size', (h: Handle) => this.blockSize(h));

    if (has('pwrite')) {
      p.pwrite = g('pwrite', (h: Handle, buf: Uint8Array, offset: bigint, flags: number) =>
        this.pwrite(h, buf, offset, flags));
    }
    // nbdkit's Tcl plugin always has a flush (doing nothing without plugin_flush) and says
    // can_flush false then: so the server offers FUA, emulated by that flush, to any writable
    // script that does not answer can_fua itself.
    if (has('plugin_flush')) {
      p.flush = g('flush', (h: Handle, flags: number) => this.flush(h, flags));
      if (p.can_flush === CANNOT_FLUSH) delete p.can_flush;
    } else {
      p.flush = FLUSH_NOTHING;
      if (!has('can_flush')) p.can_flush = CANNOT_FLUSH;
    }
    if (has('trim')) {
      p.trim = g('trim', (h: Handle, count: number, offset: bigint, flags: number) =>
        this.ioCall('trim', 'trim', h, count, offset, flags));
    }
    if (has('zero')) {
      p.zero = g('zero', (h: Handle, count: number, offset: bigint, flags: number) =>
        this.zero(h, count, offset, flags));
    }
    if (has('cache')) {
      p.cache = g('cache', (h: Handle, count: number, offset: bigint, flags: number) =>
        this.ioCall('cache', 'cache', h, count, offset, flags));
    }
    if (has('extents')) {
      p.extents = g('extents', (h: Handle, count: number, offset: bigint, flags: number, sink: ExtentSink) =>
        this.extents(h, count, offset, flags, sink));
    }

    if (has('get_ready')) p.get_ready = g('get_ready', () => this.global('get_ready', NO_OBJS));
    if (has('after_fork')) p.after_fork = g('after_fork', () => this.global('after_fork', NO_OBJS));
    if (has('cleanup')) p.cleanup = g('cleanup', () => this.global('cleanup', NO_OBJS));
    if (has('preconnect')) {
      p.preconnect = g('preconnect', (readonly: boolean, connection?: ConnectionInfo) =>
        this.withArgs('preconnect', [readonly], () => undefined, connection),
      );
    }
    if (has('list_exports')) {
      p.list_exports = g('list_exports', (readonly: boolean, tls: boolean, connection?: ConnectionInfo) =>
        this.withArgs('list_exports', [readonly, tls], () => {
          const result = this.interp.resultObj();
          try {
            return exportsOf(this.interp, result);
          } finally {
            this.interp.release(result);
          }
        }, connection));
    }
    if (has('default_export')) {
      p.default_export = g('default_export', (readonly: boolean, tls: boolean, connection?: ConnectionInfo) =>
        this.withArgs('default_export', [readonly, tls], () => this.interp.resultString(), connection));
    }

    for (const proc of Object.keys(ARGS_BEFORE_FLAGS) as FlaggedProc[]) {
      if (has(proc) && this.declaresFlags(proc)) this.takesFlags.add(proc);
    }
  }

  /** True if the proc has a parameter after the ones nbdkit's Tcl plugin passes, or `args`. */
  private declaresFlags(proc: FlaggedProc): boolean {
    const params = this.interp.eval(`info args ${proc}`).trim().split(/\s+/);
    return params.at(-1) === 'args' || params.length > ARGS_BEFORE_FLAGS[proc];
  }

  // --- connections ---

  private open(readonly: boolean, connection: ConnectionInfo): TclHandle {
    this.begin(connection);
    const interp = this.interp;
    const flag = interp.newBool(readonly);
    try {
      this.invoke('open', 'plugin_open', [flag]);
    } finally {
      interp.release(flag);
    }
    return new TclHandle(interp.resultObj(), connection);
  }

  private close(h: Handle): void {
    const handle = tclHandle(h);
    const interp = this.interp;
    try {
      if (interp.procExists('plugin_close')) {
        this.begin(handle.connection);
        this.invoke('close', 'plugin_close', [handle.obj]);
      }
    } catch (error) {
      // Already reported; a close cannot fail from the client's point of view.
      if (!(error instanceof ReportedPluginError)) throw error;
    } finally {
      interp.release(handle.obj);
    }
  }

  private getSize(h: Handle): bigint {
    const handle = tclHandle(h);
    this.begin(handle.connection);
    this.invoke('get_size', 'get_size', [handle.obj]);
    try {
      return this.interp.resultWide();
    } catch (error) {
      passFaults(error);
      throw this.conversionFailure('get_size', `Tcl_GetWideIntFromObj: ${(error as Error).message}`);
    }
  }

  private askBool(callback: keyof typeof PROC_FOR_CALLBACK, h: Handle): boolean {
    const handle = tclHandle(h);
    const proc = PROC_FOR_CALLBACK[callback];
    this.begin(handle.connection);
    this.invoke(callback, proc, [handle.obj]);
    try {
      return this.interp.resultBool();
    } catch (error) {
      passFaults(error);
      throw this.conversionFailure(callback, (error as Error).message);
    }
  }

  private askString(callback: keyof typeof PROC_FOR_CALLBACK, h: Handle): string {
    const handle = tclHandle(h);
    this.begin(handle.connection);
    this.invoke(callback, PROC_FOR_CALLBACK[callback], [handle.obj]);
    return this.interp.resultString();
  }

  private blockSize(h: Handle) {
    const handle = tclHandle(h);
    this.begin(handle.connection);
    this.invoke('block_size', 'block_size', [handle.obj]);
    const result = this.interp.resultObj();
    try {
      return blockSizeOf(this.interp, result);
    } catch (error) {
      passFaults(error);
      throw this.conversionFailure('block_size', (error as Error).message);
    } finally {
      this.interp.release(result);
    }
  }

  // --- the data path ---

  private pread(h: Handle, buf: Uint8Array, offset: bigint, flags: number): void {
    const handle = tclHandle(h);
    const interp = this.interp;
    this.state.errno = undefined;
    this.state.connection = handle.connection;
    const code = this.io('pread', handle, 0, buf.length, offset, flags);
    if (code !== TCL_OK) throw this.failure('pread', 'pread', interp.error(code));
    // One copy, from Tcl's byte array straight into the reply buffer.
    if (interp.resultBytesInto(buf) < buf.length) {
      throw this.conversionFailure('pread', 'buffer returned from pread is too small');
    }
  }

  private pwrite(h: Handle, buf: Uint8Array, offset: bigint, flags: number): void {
    const handle = tclHandle(h);
    const interp = this.interp;
    this.state.errno = undefined;
    this.state.connection = handle.connection;
    let data: TclObj;
    try {
      data = interp.newBytes(buf);
    } catch (error) {
      // The heap cannot hold the data: this write fails, and the interpreter is as it was.
      passFaults(error);
      throw reportedFailure((m) => this.host.error(m), 'pwrite', 'pwrite', error, 'ENOMEM');
    }
    let code: number;
    try {
      code = this.io('pwrite', handle, data, buf.length, offset, flags);
    } finally {
      interp.release(data);
    }
    if (code !== TCL_OK) throw this.failure('pwrite', 'pwrite', interp.error(code));
  }

  private flush(h: Handle, flags: number): void {
    const handle = tclHandle(h);
    this.begin(handle.connection);
    const args = [handle.obj];
    const flagsObj = this.takesFlags.has('plugin_flush') ? this.interp.newInt(flags) : 0;
    if (flagsObj) args.push(flagsObj);
    try {
      this.invoke('flush', 'plugin_flush', args);
    } finally {
      this.interp.release(flagsObj);
    }
  }

  private zero(h: Handle, count: number, offset: bigint, flags: number): void {
    const handle = tclHandle(h);
    const interp = this.interp;
    this.begin(handle.connection);
    const mayTrim = interp.newBool((flags & Flag.MAY_TRIM) !== 0);
    const extra = [mayTrim];
    if (this.takesFlags.has('zero')) extra.push(interp.newInt(flags));
    let code: number;
    try {
      code = this.guardedIo('zero', handle, 0, count, offset, extra);
    } finally {
      for (const obj of extra) interp.release(obj);
    }
    if (code !== TCL_OK) throw this.failure('zero', 'zero', interp.error(code));
  }

  private ioCall(callback: string, proc: 'trim' | 'cache', h: Handle, count: number, offset: bigint, flags: number): void {
    const handle = tclHandle(h);
    this.begin(handle.connection);
    const code = this.io(proc, handle, 0, count, offset, flags);
    if (code !== TCL_OK) throw this.failure(callback, proc, this.interp.error(code));
  }

  private extents(h: Handle, count: number, offset: bigint, flags: number, sink: ExtentSink): void {
    const handle = tclHandle(h);
    const interp = this.interp;
    this.begin(handle.connection);
    const code = this.io('extents', handle, 0, count, offset, flags);
    if (code !== TCL_OK) throw this.failure('extents', 'extents', interp.error(code));
    const result = interp.resultObj();
    let extents;
    try {
      extents = extentsOf(interp, result);
    } catch (error) {
      passFaults(error);
      throw this.conversionFailure('extents', (error as Error).message);
    } finally {
      interp.release(result);
    }
    for (const e of extents) sink.add(e.offset, e.length, e.type);
  }

  /** `proc handle count-or-data offset ?flags?` for the data procs. */
  private io(proc: FlaggedProc, handle: TclHandle, middle: TclObj | 0, count: number, offset: bigint, flags: number): number {
    if (!this.takesFlags.has(proc)) return this.guardedIo(proc, handle, middle, count, offset, NO_OBJS);
    const flagsObj = this.interp.newInt(flags);
    try {
      return this.guardedIo(proc, handle, middle, count, offset, [flagsObj]);
    } finally {
      this.interp.release(flagsObj);
    }
  }

  private guardedIo(
    proc: FlaggedProc,
    handle: TclHandle,
    middle: TclObj | 0,
    count: number,
    offset: bigint,
    extra: readonly TclObj[],
  ): number {
    try {
      return this.interp.invokeIo(this.name(proc), handle.obj, middle, count, offset, extra);
    } catch (error) {
      throw this.failure(proc, proc, error);
    }
  }

  // --- calling procs ---

  /** Resets the per-call state `nbdkit set_error` and `nbdkit export_name` use. */
  private begin(connection: ConnectionInfo | undefined): void {
    this.state.errno = undefined;
    this.state.connection = connection;
  }

  private name(proc: string): TclObj {
    let obj = this.names.get(proc);
    if (obj === undefined) {
      obj = this.interp.newString(proc);
      this.names.set(proc, obj);
    }
    return obj;
  }

  /** Calls proc with args (still owned by the caller); a Tcl error is reported and thrown. */
  private invoke(callback: string, proc: string, args: readonly TclObj[]): void {
    let code: number;
    try {
      code = this.interp.invoke([this.name(proc), ...args]);
    } catch (error) {
      throw this.failure(callback, proc, error);
    }
    if (code !== TCL_OK) throw this.failure(callback, proc, this.interp.error(code));
  }

  /** A proc taking no handle (get_ready, cleanup, ...). */
  private global(proc: keyof typeof PROC_FOR_CALLBACK & string, args: readonly TclObj[]): void {
    this.begin(undefined);
    this.invoke(proc, PROC_FOR_CALLBACK[proc], args);
  }

  /** A proc taking booleans (preconnect, list_exports, default_export); result read by then. */
  private withArgs<T>(
    proc: 'preconnect' | 'list_exports' | 'default_export',
    flags: boolean[],
    then: () => T,
    connection?: ConnectionInfo,
  ): T {
    const interp = this.interp;
    this.begin(connection);
    const args = flags.map((f) => interp.newBool(f));
    try {
      this.invoke(proc, proc, args);
    } finally {
      for (const obj of args) interp.release(obj);
    }
    try {
      return then();
    } catch (error) {
      passFaults(error);
      throw this.conversionFailure(proc, (error as Error).message);
    }
  }

  /** config and config_complete: the failure is reported by the command line. */
  private callAtStartup(callback: string, proc: string, args: string[]): void {
    const interp = this.interp;
    const objs = args.map((a) => interp.newString(a));
    try {
      const code = interp.invoke([this.name(proc), ...objs]);
      if (code !== TCL_OK) throw interp.error(code);
    } catch (error) {
      throw startupFailure(callback, proc, error, this.state.errno);
    } finally {
      for (const obj of objs) interp.release(obj);
    }
  }

  /** Reports a failed call; a fault that escaped the interpreter is rethrown for the guard. */
  private failure(callback: string, proc: string, error: unknown): ReportedPluginError {
    passFaults(error);
    return reportedFailure((m) => this.host.error(m), callback, proc, error, this.state.errno);
  }

  /** The proc succeeded but returned something that is not what nbdkit expects. */
  private conversionFailure(callback: string, message: string): ReportedPluginError {
    this.host.error(`${callback}: ${message}`);
    return new ReportedPluginError(`${callback}: ${message}`, this.state.errno ?? 'EIO');
  }
}

function writeQuietly(fd: number, bytes: Uint8Array): void {
  try {
    writeSync(fd, bytes);
  } catch {
    // Nowhere left to write to.
  }
}
