/**
 * js: plugins written as JavaScript ES modules, `nbdkit-ts js plugin.mjs` or `script=plugin.mjs`.
 *
 * The module exports functions with nbdkit's callback names and Python API version 2 arguments
 * (see README "JavaScript plugins"): pread(h, buf, offset, flags) fills the Uint8Array buf, and so on.
 * Offsets reach the module as numbers, or as bigints beyond Number.MAX_SAFE_INTEGER. Any function may
 * be async. This adapter converts arguments and results; nbdkit's defaults stay in the backend.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { errnoName } from '../../host/errno.js';
import { nbdkitTsVersion } from '../../host/version.js';
import {
  disconnect,
  parseDelay,
  parseProbability,
  peerGid,
  peerPid,
  peerSecurityContext,
  peerTlsDn,
  peerTlsIssuerDn,
  peerUid,
  readPassword,
} from '../../host/script-api.js';
import {
  type BlockSize,
  type ConnectionInfo,
  type ExportInfo,
  type Handle,
  type Plugin,
  type PluginFactory,
  type PluginHost,
  PluginError,
  type ThreadModel,
} from '../../host/plugin.js';

type Offset = number | bigint;
type Callback = (...args: unknown[]) => unknown;
type ScriptModule = Record<string, unknown>;

/** The callbacks a script may export, and which do not need translation of arguments. */
const PASS_THROUGH = [
  'unload', 'get_ready', 'after_fork', 'cleanup', 'close',
  'export_description', 'get_size', 'is_rotational', 'can_write', 'can_flush', 'can_trim', 'can_zero',
  'can_fast_zero', 'can_fua', 'can_multi_conn', 'can_extents', 'can_cache',
] as const;

function jsOffset(offset: bigint): Offset {
  return offset <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(offset) : offset;
}

function toBigInt(value: unknown, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new PluginError(`${what}: expected an integer, got ${String(value)}`, 'EINVAL');
}

/** An exception's errno: `error.errno` as a name ('ENOSPC') or a number (28), else EIO. */
function translateError(error: unknown): PluginError {
  if (error instanceof PluginError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const errno = (error as { errno?: unknown } | null)?.errno ?? (error as { code?: unknown } | null)?.code;
  let name = 'EIO';
  if (typeof errno === 'string' && /^E[A-Z0-9]+$/.test(errno)) name = errno;
  else if (typeof errno === 'number') name = errnoName(Math.abs(errno)) ?? 'EIO';
  return new PluginError(message, name);
}

async function call(fn: Callback, args: unknown[]): Promise<unknown> {
  try {
    return await fn(...args);
  } catch (error) {
    throw translateError(error);
  }
}

function exportsList(value: unknown): ExportInfo[] {
  if (!Array.isArray(value)) throw new PluginError('list_exports must return an array', 'EINVAL');
  return value.map((entry: unknown) => {
    if (typeof entry === 'string') return { name: entry };
    if (Array.isArray(entry)) return { name: String(entry[0]), description: entry[1] === undefined ? undefined : String(entry[1]) };
    const object = entry as { name?: unknown; description?: unknown };
    return { name: String(object.name), description: object.description === undefined ? undefined : String(object.description) };
  });
}

/**
 * What a JavaScript plugin sees as the global `nbdkit` (as a Lua script sees its `nbdkit`
 * table): nbdkit's utility functions that need no connection. The per-connection ones
 * (peer credentials, TLS names, disconnect) are methods of `conn`, open's second argument.
 */
export interface JsNbdkit {
  debug(message: string): void;
  shutdown(): void;
  stdio_safe(): boolean;
  parse_size(text: string): bigint;
  parse_delay(what: string, text: string): { sec: number; nsec: number };
  parse_probability(what: string, text: string): number;
  read_password(value: string): string;
  /** Resolves after the delay; the server goes on serving meanwhile. */
  nanosleep(sec: number, nsec: number): Promise<void>;
}

function jsNbdkit(host: PluginHost): JsNbdkit {
  return {
    debug: (message) => host.debug(String(message)),
    shutdown: () => host.shutdown(),
    stdio_safe: () => host.stdioSafe,
    parse_size: (text) => host.parseSize(String(text)),
    parse_delay: (what, text) => parseDelay(String(what), String(text)),
    parse_probability: (what, text) => parseProbability(String(what), String(text)),
    read_password: (value) => readPassword(String(value)),
    nanosleep: (sec, nsec) => {
      if (!Number.isInteger(sec) || !Number.isInteger(nsec) || sec < 0 || nsec < 0) {
        return Promise.reject(new PluginError('nanosleep: seconds and nanoseconds must be non-negative integers', 'EINVAL'));
      }
      return new Promise((resolve) => setTimeout(resolve, sec * 1000 + nsec / 1e6));
    },
  };
}

/**
 * open's `conn`: the connection's facts, with nbdkit's per-connection functions as methods
 * named in JavaScript's style (script-api.ts gives them nbdkit's errors).
 */
function jsConnection(connection: ConnectionInfo): Record<string, unknown> {
  return {
    exportName: connection.exportName,
    tls: connection.tls,
    readonly: connection.readonly,
    peerPid: () => peerPid(connection),
    peerUid: () => peerUid(connection),
    peerGid: () => peerGid(connection),
    peerSecurityContext: () => peerSecurityContext(connection),
    peerTlsDn: () => peerTlsDn(connection),
    peerTlsIssuerDn: () => peerTlsIssuerDn(connection),
    disconnect: (force = false) => void disconnect(connection, Boolean(force)),
  };
}

/**
 * The adapter around a script module. With `loaded`, the module is already there (an object an
 * embedder passes to startServer): every parameter goes to its config. Without, the first
 * parameter must be script=FILE, which is imported.
 */
function adapt(loaded?: ScriptModule): Plugin {
  let script: ScriptModule | undefined = loaded;
  const fn = (name: string): Callback | undefined => {
    const value = script?.[name];
    // Bound, so that an object's methods (a class instance given to startServer) keep `this`.
    return typeof value === 'function' ? (value as Callback).bind(script) : undefined;
  };

  const adapter: Record<string, unknown> = {};
  const plugin = {
    name: 'js',
    // nbdkit has no JavaScript plugin: this one is nbdkit-ts's own and carries its version.
    version: nbdkitTsVersion(),
    longname: 'nbdkit-ts JavaScript plugin',
    description: 'Runs a plugin written as a JavaScript ES module.',
    magic_config_key: 'script',
    config_help: 'script=<FILENAME>  (required) The JavaScript module (.mjs or .js) to run.',

    async config(key: string, value: string) {
      if (script === undefined) {
        if (key !== 'script') throw new PluginError('the first parameter must be script=/path/to/plugin.mjs', 'EINVAL');
        script = await loadScript(value);
        bindCallbacks();
        return;
      }
      const config = fn('config');
      if (!config) throw new PluginError(`${key}: this plugin does not take parameters (no config function)`, 'EINVAL');
      await call(config, [key, value]);
    },

    async config_complete() {
      if (script === undefined) throw new PluginError('the first parameter must be script=/path/to/plugin.mjs', 'EINVAL');
      const complete = fn('config_complete');
      if (complete) await call(complete, []);
    },

    open: async (readonly: boolean, connection: ConnectionInfo): Promise<Handle> => {
      const open = fn('open');
      return call(open!, [readonly, jsConnection(connection)]);
    },
    get_size: async (h: Handle) => toBigInt(await call(fn('get_size')!, [h]), 'get_size'),
    pread: async (h: Handle, buf: Uint8Array, offset: bigint, flags: number) => {
      await call(fn('pread')!, [h, buf, jsOffset(offset), flags]);
    },
  } as Plugin & Record<string, unknown>;

  /** Attach exactly the callbacks the script defines, so the backend applies its defaults to the rest. */
  function bindCallbacks(): void {
    for (const required of ['open', 'get_size', 'pread']) {
      if (!fn(required)) throw new PluginError(`script does not export a '${required}' function, which is required`, 'EINVAL');
    }
    for (const name of PASS_THROUGH) {
      const f = fn(name);
      if (f) adapter[name] = (...args: unknown[]) => call(f, args);
    }
    const defined = (name: string, wrap: (f: Callback) => unknown): void => {
      const f = fn(name);
      if (f) adapter[name] = wrap(f);
    };
    defined('thread_model', (f) => async (): Promise<ThreadModel> => Number(await call(f, [])) as ThreadModel);
    defined('dump_plugin', (f) => async (): Promise<string[]> => {
      const result = await call(f, []);
      if (result === undefined || result === null) return [];
      return (Array.isArray(result) ? result.map(String) : String(result).split('\n')).filter((l) => l !== '');
    });
    defined('preconnect', (f) => (readonly: boolean, connection?: ConnectionInfo) =>
      call(f, [readonly, connection && jsConnection(connection)]));
    defined('list_exports', (f) => async (readonly: boolean, tls: boolean, connection?: ConnectionInfo) =>
      exportsList(await call(f, [readonly, tls, connection && jsConnection(connection)])));
    defined('default_export', (f) => (readonly: boolean, tls: boolean, connection?: ConnectionInfo) =>
      call(f, [readonly, tls, connection && jsConnection(connection)]));
    defined('block_size', (f) => async (h: Handle): Promise<BlockSize> => {
      const [minimum, preferred, maximum] = (await call(f, [h])) as number[];
      return { minimum: Number(minimum), preferred: Number(preferred), maximum: Number(maximum) };
    });
    defined('pwrite', (f) => (h: Handle, buf: Uint8Array, offset: bigint, flags: number) => call(f, [h, buf, jsOffset(offset), flags]));
    defined('flush', (f) => (h: Handle, flags: number) => call(f, [h, flags]));
    for (const name of ['trim', 'zero', 'cache']) {
      defined(name, (f) => (h: Handle, count: number, offset: bigint, flags: number) => call(f, [h, count, jsOffset(offset), flags]));
    }
    defined('extents', (f) => async (h: Handle, count: number, offset: bigint, flags: number, sink: { add(o: bigint, l: bigint, t: number): void }) => {
      const result = await call(f, [h, count, jsOffset(offset), flags]);
      for (const entry of result as Iterable<unknown>) {
        const [o, l, t] = Array.isArray(entry)
          ? entry
          : [(entry as { offset: unknown }).offset, (entry as { length: unknown }).length, (entry as { type: unknown }).type];
        sink.add(toBigInt(o, 'extents offset'), toBigInt(l, 'extents length'), Number(t));
      }
    });
    Object.assign(plugin, adapter);
  }

  if (loaded !== undefined) bindCallbacks();
  return plugin;
}

const createJsPlugin: PluginFactory = (host) => {
  // Defined before the module loads, so its top level may use it too.
  (globalThis as { nbdkit?: JsNbdkit }).nbdkit ??= jsNbdkit(host);
  return adapt();
};

/**
 * A plugin from an object shaped as a `js` plugin module (nbdkit's callback names, Python API
 * version 2 arguments): what the in-process API serves. Throws a PluginError when it lacks
 * open, get_size or pread.
 */
export function pluginFromObject(object: object): Plugin {
  return adapt(object as ScriptModule);
}

async function loadScript(path: string): Promise<ScriptModule> {
  try {
    return (await import(pathToFileURL(resolve(path)).href)) as ScriptModule;
  } catch (error) {
    throw new PluginError(`${path}: ${(error as Error).message}`, 'EINVAL');
  }
}

export default createJsPlugin;
