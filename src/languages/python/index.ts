/**
 * The python plugin: nbdkit Python scripts (API versions 1 and 2) run in pyodide.
 *
 * `nbdkit-ts python script=plugin.py [key=value ...]`. The script's functions are looked up by
 * their literal names in __main__ (see glue.ts for the Python side). This module only turns the
 * Plugin interface into calls of the glue's dispatchers: handles are small integers on this side
 * and the script's objects on the other, data passes through one reusable buffer in the WASM
 * heap, and failures come back through HostModule.fail as the errno to report.
 *
 * Only the callbacks the script defines are exposed, so that the backend applies nbdkit's
 * defaults for the others. They are known once the script has run, at `config("script", ...)`.
 */
import type { PyodideAPI } from 'pyodide';
import type { PyBuffer, PyDict, PyProxy } from 'pyodide/ffi';
import {
  type BlockSize,
  type CacheMode,
  type ConnectionInfo,
  type ExportInfo,
  type ExtentSink,
  type FuaMode,
  type Handle,
  type Plugin,
  PluginError,
  type PluginFactory,
  type PluginHost,
  ReportedPluginError,
  type ThreadModel,
} from '../../host/plugin.js';
import { exitStatus, FatalWatch, isPyodideFatal } from './fatal.js';
import { readIntoHeap } from './host-fs.js';
import { type HostModule, type PythonRuntime, StderrRoute, StdoutRoute, startPython, syncDescriptor } from './runtime.js';

const CONFIG_HELP =
  'script=<FILENAME>     (required) The Python plugin to run.\n' +
  '[other arguments may be used by the plugin that you load]';

/** What open returns to the backend: the script's handle lives in Python under `id`. */
interface PythonHandle {
  readonly id: number;
  readonly connection: ConnectionInfo;
}

type Dispatcher = (...args: (number | string | boolean)[]) => unknown;

/** The glue's dispatchers, looked up once. */
interface Dispatchers {
  loadScript(path: string): string | undefined;
  defined(): string;
  dumpPlugin(): void;
  config(key: string, value: string): void;
  noArgs(callback: string): void;
  intNoArgs(callback: string): number | undefined;
  preconnect(readonly: boolean): void;
  listExports(readonly: boolean, tls: boolean): string | undefined;
  defaultExport(readonly: boolean, tls: boolean): string | undefined;
  open(readonly: boolean): number;
  close(id: number): void;
  exportDescription(id: number): string | undefined;
  getSize(id: number): number | bigint | undefined;
  blockSize(id: number): string | undefined;
  bool(callback: string, id: number): boolean;
  int(callback: string, id: number): number | undefined;
  scratch(size: number): PyProxy;
  pread(id: number, count: number, offset: number | string, flags: number): void;
  pwrite(id: number, count: number, offset: number | string, flags: number): void;
  flush(id: number, flags: number): void;
  trim(id: number, count: number, offset: number | string, flags: number): void;
  zero(id: number, count: number, offset: number | string, flags: number): string | undefined;
  cache(id: number, count: number, offset: number | string, flags: number): void;
  extents(id: number, count: number, offset: number | string, flags: number): string | undefined;
  apiVersion(): number;
  pythonVersion(): string;
}

function lookupDispatchers(glue: PyDict, pyodide: PyodideAPI): Dispatchers {
  const get = (name: string): Dispatcher => {
    const fn = glue.get(name) as Dispatcher | undefined;
    if (typeof fn !== 'function') throw new Error(`python glue: ${name} is missing`);
    return fn;
  };
  const d = {
    loadScript: get('_load_script'),
    defined: get('_defined'),
    dumpPlugin: get('_d_dump_plugin'),
    config: get('_d_config'),
    noArgs: get('_d_noargs'),
    intNoArgs: get('_d_int_noargs'),
    preconnect: get('_d_preconnect'),
    listExports: get('_d_list_exports'),
    defaultExport: get('_d_default_export'),
    open: get('_d_open'),
    close: get('_d_close'),
    exportDescription: get('_d_export_description'),
    getSize: get('_d_get_size'),
    blockSize: get('_d_block_size'),
    bool: get('_d_bool'),
    int: get('_d_int'),
    scratch: get('_d_scratch'),
    pwrite: get('_d_pwrite'),
    flush: get('_d_flush'),
    trim: get('_d_trim'),
    zero: get('_d_zero'),
    cache: get('_d_cache'),
    extents: get('_d_extents'),
    // pread depends on the API version, chosen once the script has run (see loadScript).
    pread: get('_d_pread2'),
    apiVersion: () => glue.get('_api_version') as number,
    pythonVersion: () => pyodide.runPython('import sys; "%d.%d.%d" % sys.version_info[:3]') as string,
  };
  return d as unknown as Dispatchers;
}

const MAX_SAFE_OFFSET = BigInt(Number.MAX_SAFE_INTEGER);

/** Offsets cross as numbers; beyond 2^53 (no real disk) as decimal strings the glue converts. */
function offsetArg(offset: bigint): number | string {
  return offset <= MAX_SAFE_OFFSET ? Number(offset) : offset.toString();
}

/** The callbacks a script may define beyond the required ones, all exposed only when defined. */
const OPTIONAL_CALLBACKS = [
  'config_complete', 'thread_model', 'get_ready', 'after_fork', 'cleanup', 'preconnect', 'list_exports',
  'default_export', 'export_description', 'block_size', 'is_rotational', 'can_write', 'can_flush',
  'can_trim', 'can_zero', 'can_fast_zero', 'can_fua', 'can_multi_conn', 'can_extents', 'can_cache',
  'pwrite', 'flush', 'trim', 'zero', 'extents', 'cache',
] as const;
type OptionalCallback = (typeof OPTIONAL_CALLBACKS)[number];

/** Callbacks that, once the interpreter has failed, do nothing rather than fail. */
const QUIET_AFTER_FAILURE: ReadonlySet<string> = new Set(['close', 'cleanup']);

/** How much of pyodide's own report of a fatal error -v shows. */
const SUPPRESSED_LINES_SHOWN = 40;

class PythonPlugin {
  private runtime: PythonRuntime | undefined;
  private d: Dispatchers | undefined;
  private heap: { HEAPU8: Uint8Array } | undefined;
  private readonly stdout = new StdoutRoute();
  private readonly stderr = new StderrRoute();
  private readonly fatal = new FatalWatch();
  private fatalReported = false;
  private script: string | undefined;
  private configDefined = false;
  /** The failure the glue reported during the current call, thrown when the call returns. */
  private failure: { message: string; errno: string } | undefined;
  /** The connection whose callback is running, for nbdkit.export_name(). */
  private connection: ConnectionInfo | undefined;
  private scratchAddress = 0;
  private scratchSize = 0;
  private scratchBuffer: PyBuffer | undefined;
  /** API 1: pread returns its data (count bytes or an error) instead of filling a buffer. */
  private preadReturnsData = false;

  constructor(private readonly host: PluginHost) {}

  private get dispatch(): Dispatchers {
    if (!this.d) throw new PluginError('python: the interpreter is not loaded', 'EIO');
    return this.d;
  }

  private hostModule(): HostModule {
    return {
      debug: (message) => this.host.debug(message),
      export_name: () => this.connection?.exportName,
      parse_size: (text) => {
        try {
          return this.host.parseSize(text).toString();
        } catch (error) {
          this.host.error(error instanceof Error ? error.message : String(error));
          return undefined;
        }
      },
      shutdown: () => this.host.shutdown(),
      fail: (message, errno) => {
        this.host.error(message);
        this.failure = { message, errno };
      },
      sync_host_fd: (fd, kind) => (this.runtime ? syncDescriptor(this.runtime.pyodide, fd, kind) : undefined),
      read_into_request: (fd, length, position) =>
        readIntoHeap(this.runtime!.pyodide, fd, this.heap!.HEAPU8, this.scratchAddress, length, position),
    };
  }

  /**
   * Run one callback. Once pyodide has fatally failed nothing enters it again: the failing
   * callback and every later one get EIO, and the failure is reported once, on one line.
   */
  private guard<T>(callback: string, call: () => T): T {
    if (this.fatal.failed) throw this.refusal(callback);
    try {
      return call();
    } catch (error) {
      const status = exitStatus(error);
      // os._exit: native nbdkit's process ends with the status the script gave.
      if (status !== undefined) process.exit(status);
      if (isPyodideFatal(error)) this.fatal.noteFrom(error);
      if (this.fatal.failed) throw this.refusal(callback);
      throw error;
    }
  }

  private guarded<A extends unknown[], R>(callback: string, fn: (...args: A) => R): (...args: A) => R {
    if (QUIET_AFTER_FAILURE.has(callback)) {
      return (...args: A): R => (this.fatal.failed ? (undefined as R) : this.guard(callback, () => fn(...args)));
    }
    return (...args: A): R => this.guard(callback, () => fn(...args));
  }

  private refusal(callback: string): ReportedPluginError {
    if (!this.fatalReported) {
      this.fatalReported = true;
      this.host.error(
        `python: the interpreter suffered a fatal error in ${callback} (${this.fatal.reason}); refusing further requests`,
      );
      const report = this.fatal.suppressed.join('').split('\n').filter((line) => line.trim() !== '');
      for (const line of report.slice(0, SUPPRESSED_LINES_SHOWN)) this.host.debug(`python: pyodide: ${line}`);
      if (report.length > SUPPRESSED_LINES_SHOWN) {
        this.host.debug(`python: pyodide: (${report.length - SUPPRESSED_LINES_SHOWN} more lines)`);
      }
    } else {
      this.host.debug(`python: ${callback} refused: the interpreter failed earlier`);
    }
    return new ReportedPluginError(`${callback}: the python interpreter is unusable after a fatal error`, 'EIO');
  }

  /** Throw the failure the glue reported during the call that just returned, if any. */
  private check(): void {
    const failure = this.failure;
    if (failure) {
      this.failure = undefined;
      throw new ReportedPluginError(failure.message, failure.errno);
    }
  }

  /** Run a call on behalf of a connection, then raise what it reported. */
  private onConnection<T>(h: Handle, call: (id: number) => T): T {
    const handle = h as PythonHandle;
    this.connection = handle.connection;
    this.failure = undefined;
    try {
      return call(handle.id);
    } finally {
      this.connection = undefined;
      this.check();
    }
  }

  private global<T>(call: (d: Dispatchers) => T): T {
    this.failure = undefined;
    const result = call(this.dispatch);
    this.check();
    return result;
  }

  /** Make sure the scratch buffer holds count bytes; returns its address in the WASM heap. */
  private scratch(count: number): number {
    if (count > this.scratchSize) {
      let size = Math.max(this.scratchSize, 64 * 1024);
      while (size < count) size *= 2;
      const bytes = this.dispatch.scratch(size);
      const view = bytes.getBuffer('u8');
      bytes.destroy();
      this.scratchBuffer?.release();
      this.scratchBuffer = view;
      this.scratchAddress = view.data.byteOffset;
      this.scratchSize = size;
    }
    return this.scratchAddress;
  }

  private heapView(address: number, count: number): Uint8Array {
    // Read HEAPU8 afresh every time: growing the WASM memory replaces it.
    return this.heap!.HEAPU8.subarray(address, address + count);
  }

  async load(): Promise<void> {
    const runtime = await startPython(this.hostModule(), this.stdout, this.stderr);
    this.fatal.install(runtime.pyodide, [this.stdout, this.stderr]);
    this.runtime = runtime;
    this.heap = (runtime.pyodide as unknown as { _module: { HEAPU8: Uint8Array } })._module;
    this.d = lookupDispatchers(runtime.glue, runtime.pyodide);
  }

  dumpPlugin(): string[] {
    const lines = [
      `python_version=${this.dispatch.pythonVersion()}`,
      'python_pep_384_abi_version=3',
      'nbdkit_python_maximum_api_version=2',
    ];
    if (this.script !== undefined) {
      this.stdout.startCapture();
      try {
        this.dispatch.dumpPlugin();
      } finally {
        const text = this.stdout.stopCapture();
        lines.push(...text.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1));
      }
    }
    return lines;
  }

  config(plugin: Plugin, key: string, value: string): void {
    if (this.script === undefined) {
      if (key !== 'script') throw new PluginError('the first parameter must be script=/path/to/python/script.py', 'EINVAL');
      this.loadScript(plugin, value);
      return;
    }
    if (!this.configDefined) {
      throw new PluginError(`${this.script}: this plugin does not need command line configuration`, 'EINVAL');
    }
    this.global((d) => d.config(key, value));
  }

  private loadScript(plugin: Plugin, path: string): void {
    this.script = path;
    const error = this.dispatch.loadScript(path);
    if (error !== undefined) throw new PluginError(error, 'EINVAL');
    const defined = new Set(this.dispatch.defined().split(' '));
    if (this.dispatch.apiVersion() === 1) {
      const glue = this.runtime!.glue;
      (this.d as { pread: unknown }).pread = glue.get('_d_pread1');
      this.preadReturnsData = true;
    }
    this.configDefined = defined.has('config');
    const callbacks = this.callbacks();
    const target = plugin as unknown as Record<string, unknown>;
    for (const name of OPTIONAL_CALLBACKS) {
      if (defined.has(name)) target[name] = this.guarded(name, callbacks[name] as (...args: unknown[]) => unknown);
    }
  }

  /** The implementations of the optional callbacks, attached to the plugin when defined. */
  private callbacks(): Required<Pick<Plugin, OptionalCallback>> {
    const bool = (name: string) => (h: Handle) => this.onConnection(h, (id) => this.dispatch.bool(name, id));
    const int = (name: string) => (h: Handle) => this.onConnection(h, (id) => this.dispatch.int(name, id) ?? 0);
    return {
      config_complete: () => this.global((d) => d.noArgs('config_complete')),
      thread_model: () => this.global((d) => d.intNoArgs('thread_model') ?? 0) as ThreadModel,
      get_ready: () => this.global((d) => d.noArgs('get_ready')),
      after_fork: () => this.global((d) => d.noArgs('after_fork')),
      cleanup: () => this.global((d) => d.noArgs('cleanup')),
      preconnect: (readonly) => this.global((d) => d.preconnect(readonly)),
      list_exports: (readonly, tls) => {
        const json = this.global((d) => d.listExports(readonly, tls)) ?? '[]';
        const list = JSON.parse(json) as [string, string | null][];
        return list.map(([name, description]): ExportInfo => (description === null ? { name } : { name, description }));
      },
      default_export: (readonly, tls) => this.global((d) => d.defaultExport(readonly, tls)) ?? '',
      export_description: (h) => this.onConnection(h, (id) => this.dispatch.exportDescription(id)) ?? '',
      block_size: (h): BlockSize => {
        const text = this.onConnection(h, (id) => this.dispatch.blockSize(id)) ?? '0 0 0';
        const [minimum, preferred, maximum] = text.split(' ').map(Number);
        return { minimum, preferred, maximum };
      },
      is_rotational: bool('is_rotational'),
      can_write: bool('can_write'),
      can_flush: bool('can_flush'),
      can_trim: bool('can_trim'),
      can_zero: bool('can_zero'),
      can_fast_zero: bool('can_fast_zero'),
      can_multi_conn: bool('can_multi_conn'),
      can_extents: bool('can_extents'),
      can_fua: int('can_fua') as (h: Handle) => FuaMode,
      can_cache: int('can_cache') as (h: Handle) => CacheMode,
      pwrite: (h, buf, offset, flags) => {
        const address = this.scratch(buf.length);
        this.heapView(address, buf.length).set(buf);
        this.onConnection(h, (id) => this.dispatch.pwrite(id, buf.length, offsetArg(offset), flags));
      },
      flush: (h, flags) => this.onConnection(h, (id) => this.dispatch.flush(id, flags)),
      trim: (h, count, offset, flags) => this.onConnection(h, (id) => this.dispatch.trim(id, count, offsetArg(offset), flags)),
      zero: (h, count, offset, flags) => {
        const result = this.onConnection(h, (id) => this.dispatch.zero(id, count, offsetArg(offset), flags));
        if (result === 'fallback') {
          this.host.debug('zero requested falling back to pwrite');
          throw new ReportedPluginError('zero requested falling back to pwrite', 'EOPNOTSUPP');
        }
      },
      cache: (h, count, offset, flags) => this.onConnection(h, (id) => this.dispatch.cache(id, count, offsetArg(offset), flags)),
      extents: (h, count, offset, flags, sink: ExtentSink) => {
        const text = this.onConnection(h, (id) => this.dispatch.extents(id, count, offsetArg(offset), flags));
        for (const extent of (text ?? '').split(',')) {
          if (extent === '') continue;
          const [start, length, type] = extent.split(' ');
          sink.add(BigInt(start), BigInt(length), Number(type));
        }
      },
    };
  }

  open(readonly: boolean, connection: ConnectionInfo): PythonHandle {
    this.connection = connection;
    this.failure = undefined;
    try {
      const id = this.dispatch.open(readonly);
      this.check();
      return { id, connection };
    } finally {
      this.connection = undefined;
    }
  }

  close(h: Handle): void {
    this.onConnection(h, (id) => this.dispatch.close(id));
  }

  getSize(h: Handle): bigint {
    const size = this.onConnection(h, (id) => this.dispatch.getSize(id));
    return typeof size === 'bigint' ? size : BigInt(size ?? 0);
  }

  /** What pread put in the scratch buffer, as a view valid until the next call into Python. */
  preadView(h: Handle, count: number, offset: bigint, flags: number): Uint8Array {
    const address = this.scratch(count);
    // An API 2 pread fills a buffer the script may leave partly unwritten; the scratch buffer
    // last held another request's data (another client's, perhaps), which must not leak.
    if (!this.preadReturnsData) this.heap!.HEAPU8.fill(0, address, address + count);
    this.onConnection(h, (id) => this.dispatch.pread(id, count, offsetArg(offset), flags));
    return this.heapView(address, count);
  }

  /** The Plugin object the server sees; optional callbacks are added by loadScript. */
  plugin(): Plugin {
    const plugin: Plugin = {
      name: 'python',
      longname: 'nbdkit python plugin',
      description: 'Python plugins run in pyodide',
      config_help: CONFIG_HELP,
      magic_config_key: 'script',
      load: () => this.load(),
      dump_plugin: this.guarded('dump_plugin', () => this.dumpPlugin()),
      config: this.guarded('config', (key: string, value: string) => this.config(plugin, key, value)),
      open: this.guarded('open', (readonly: boolean, connection: ConnectionInfo) => this.open(readonly, connection)),
      close: this.guarded('close', (h: Handle) => this.close(h)),
      get_size: this.guarded('get_size', (h: Handle) => this.getSize(h)),
      pread: this.guarded('pread', (h: Handle, buf: Uint8Array, offset: bigint, flags: number) =>
        buf.set(this.preadView(h, buf.length, offset, flags))),
      // The scratch buffer is zeroed before an API 2 pread; API 1 returns count bytes or fails.
      pread_fills_buffer: true,
      pread_view: this.guarded('pread', (h: Handle, count: number, offset: bigint, flags: number) => [
        this.preadView(h, count, offset, flags),
      ]),
    };
    return plugin;
  }
}

const factory: PluginFactory = (host) => new PythonPlugin(host).plugin();
export default factory;
