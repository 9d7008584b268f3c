/**
 * The plugin methods shared by the sh and eval plugins: each one runs the script with the
 * arguments of nbdkit-sh-plugin(3) and reads its answer.
 *
 * Unlike other adapters these are all defined, whatever the script implements, because a
 * script can only say "missing" (exit 2) when it is run. What a missing method means is
 * decided here, as nbdkit's sh plugin decides it: a missing can_write is false even when
 * pwrite exists, a missing can_fua follows can_flush, and so on. The backend then sees
 * the same answers a native nbdkit server computes.
 */
import type { BlockSize, CacheMode, ConnectionInfo, ExportInfo, ExtentSink, FuaMode, Plugin, PluginHost } from '../../host/plugin.js';
import { CacheMode as Cache, FuaMode as Fua, PluginError, ThreadModel } from '../../host/plugin.js';
import type { ScriptCaller } from './call.js';
import { MAX_KNOWN_STATUS } from './status.js';
import type { ParsedExtent } from './parse.js';
import {
  chomp,
  flagsString,
  parseBlockSize,
  parseDefaultExport,
  parseExports,
  parseExtents,
  parseThreadModel,
  parseTriState,
} from './parse.js';

/** The per-connection handle: the string open printed, plus two answers nbdkit caches. */
export interface ShHandle {
  readonly id: string;
  canFlush?: boolean;
  canZero?: boolean;
}

function asHandle(h: unknown): ShHandle {
  return h as ShHandle;
}

const bool = (value: boolean): string => (value ? 'true' : 'false');

/** The methods of Plugin that the script answers, built on one caller. */
export type ScriptMethods = Required<
  Pick<
    Plugin,
    | 'dump_plugin' | 'thread_model' | 'get_ready' | 'after_fork' | 'preconnect' | 'list_exports'
    | 'default_export' | 'open' | 'close' | 'export_description' | 'get_size' | 'block_size'
    | 'can_write' | 'can_flush' | 'is_rotational' | 'can_trim' | 'can_zero' | 'can_fast_zero'
    | 'can_extents' | 'can_fua' | 'can_multi_conn' | 'can_cache' | 'pread' | 'pwrite' | 'flush'
    | 'trim' | 'zero' | 'extents' | 'cache' | 'pread_fills_buffer'
  >
>;

export function scriptMethods(host: PluginHost, caller: ScriptCaller): ScriptMethods {
  /** Methods whose only answer is the exit status: OK and MISSING succeed. */
  async function plainCall(method: string, args: readonly string[]): Promise<void> {
    const { outcome } = await caller.call(method, args);
    if (outcome === 'false') throw caller.unexpectedFalse(method);
  }

  /** Boolean methods: 0 true, 3 false, 2 the given default. */
  async function booleanCall(method: string, h: ShHandle, missing: boolean): Promise<boolean> {
    const { outcome } = await caller.call(method, [h.id]);
    if (outcome === 'missing') return missing;
    return outcome === 'ok';
  }

  /** can_fua and can_cache print none/emulate/native. */
  async function triStateCall(method: string, h: ShHandle): Promise<number | undefined> {
    const { outcome, text } = await caller.callText(method, [h.id]);
    if (outcome === 'missing') return undefined;
    if (outcome === 'false') throw caller.unexpectedFalse(method);
    const mode = parseTriState(text);
    if (mode === undefined) {
      throw new PluginError(`${caller.target(method).argv0}: could not parse output from ${method} method: ${chomp(text)}`, 'EIO');
    }
    return mode;
  }

  async function canFlush(h: ShHandle): Promise<boolean> {
    h.canFlush ??= await booleanCall('can_flush', h, false);
    return h.canFlush;
  }

  async function canZero(h: ShHandle): Promise<boolean> {
    h.canZero ??= await booleanCall('can_zero', h, false);
    return h.canZero;
  }

  async function defaultExport(readonly: boolean, isTls: boolean): Promise<string> {
    const { outcome, text } = await caller.callText('default_export', [bool(readonly), bool(isTls)]);
    if (outcome === 'false') throw caller.unexpectedFalse('default_export');
    return outcome === 'ok' ? parseDefaultExport(text) : '';
  }

  return {
    async dump_plugin(): Promise<string[]> {
      const out = [`max_known_status=${MAX_KNOWN_STATUS}`];
      if (!caller.hasScript('dump_plugin')) return out;
      try {
        const { outcome, text } = await caller.callText('dump_plugin', []);
        if (outcome === 'false') throw caller.unexpectedFalse('dump_plugin');
        if (text !== '') out.push(...chomp(text).split('\n'));
      } catch (err) {
        // nbdkit prints the script's error and still dumps what it has.
        host.error((err as Error).message);
      }
      return out;
    },

    async thread_model(): Promise<ThreadModel> {
      // No script at all (eval without methods is impossible; sh without script= fails
      // earlier): nbdkit calls that parallel. A script that does not answer stays safe.
      if (!caller.hasScript('thread_model')) return ThreadModel.PARALLEL;
      const { outcome, text } = await caller.callText('thread_model', []);
      if (outcome === 'missing') return ThreadModel.SERIALIZE_ALL_REQUESTS;
      if (outcome === 'false') throw caller.unexpectedFalse('thread_model');
      const model = parseThreadModel(text);
      if (model === undefined) {
        host.debug(`${caller.target('thread_model').argv0}: ignoring unrecognized thread model: ${chomp(text)}`);
        return ThreadModel.SERIALIZE_ALL_REQUESTS;
      }
      return model;
    },

    get_ready: () => plainCall('get_ready', []),
    after_fork: () => plainCall('after_fork', []),
    preconnect: (readonly: boolean) => plainCall('preconnect', [bool(readonly)]),

    async list_exports(readonly: boolean, isTls: boolean): Promise<ExportInfo[] | undefined> {
      const { outcome, text } = await caller.callText('list_exports', [bool(readonly), bool(isTls)]);
      if (outcome === 'false') throw caller.unexpectedFalse('list_exports');
      // The server's default: the export default_export names, or none if that fails.
      if (outcome === 'missing') return undefined;
      return parseExports(text);
    },

    default_export: defaultExport,

    async open(readonly: boolean, connection: ConnectionInfo): Promise<ShHandle> {
      const { outcome, text } = await caller.callText('open', [
        bool(readonly),
        connection.exportName,
        bool(connection.tls),
      ]);
      if (outcome === 'false') throw caller.unexpectedFalse('open');
      // open is optional for scripts: without it the handle is the empty string.
      const id = outcome === 'ok' ? chomp(text) : '';
      if (id !== '') host.debug(`sh: handle: ${id}`);
      return { id };
    },

    async close(h: unknown): Promise<void> {
      // Errors from close cannot reach the client: report them and carry on, as nbdkit does.
      try {
        await caller.call('close', [asHandle(h).id]);
      } catch (err) {
        host.error((err as Error).message);
      }
    },

    async export_description(h: unknown): Promise<string | undefined> {
      const { outcome, text } = await caller.callText('export_description', [asHandle(h).id]);
      if (outcome === 'false') throw caller.unexpectedFalse('export_description');
      // nbdkit tells "no description" (method missing) from an empty one.
      return outcome === 'ok' ? chomp(text) : undefined;
    },

    async get_size(h: unknown): Promise<bigint> {
      const { outcome, text } = await caller.callText('get_size', [asHandle(h).id]);
      const argv0 = caller.target('get_size').argv0;
      if (outcome === 'missing') throw new PluginError(`${argv0}: the get_size method is required`, 'EIO');
      if (outcome === 'false') throw caller.unexpectedFalse('get_size');
      const value = chomp(text);
      try {
        return host.parseSize(value);
      } catch {
        throw new PluginError(`${argv0}: could not parse output from get_size method: ${value}`, 'EIO');
      }
    },

    async block_size(h: unknown): Promise<BlockSize> {
      const { outcome, text } = await caller.callText('block_size', [asHandle(h).id]);
      if (outcome === 'missing') return { minimum: 0, preferred: 0, maximum: 0 };
      if (outcome === 'false') throw caller.unexpectedFalse('block_size');
      const sizes = parseBlockSize(text, (s) => host.parseSize(s));
      if (!sizes) throw new PluginError(`${caller.target('block_size').argv0}: block_size method cannot be parsed`, 'EIO');
      return sizes;
    },

    can_write: (h: unknown) => booleanCall('can_write', asHandle(h), false),
    can_flush: (h: unknown) => canFlush(asHandle(h)),
    is_rotational: (h: unknown) => booleanCall('is_rotational', asHandle(h), false),
    can_trim: (h: unknown) => booleanCall('can_trim', asHandle(h), false),
    can_zero: (h: unknown) => canZero(asHandle(h)),
    can_extents: (h: unknown) => booleanCall('can_extents', asHandle(h), false),
    can_multi_conn: (h: unknown) => booleanCall('can_multi_conn', asHandle(h), false),

    async can_fast_zero(h: unknown): Promise<boolean> {
      const handle = asHandle(h);
      const { outcome } = await caller.call('can_fast_zero', [handle.id]);
      if (outcome !== 'missing') return outcome === 'ok';
      // As the server does for plugins without can_fast_zero: fast zero is trivially
      // supported (by failing at once) when zero is not.
      return !(await canZero(handle));
    },

    async can_fua(h: unknown): Promise<FuaMode> {
      const handle = asHandle(h);
      const mode = await triStateCall('can_fua', handle);
      if (mode !== undefined) return mode as FuaMode;
      return (await canFlush(handle)) ? Fua.EMULATE : Fua.NONE;
    },

    async can_cache(h: unknown): Promise<CacheMode> {
      const mode = await triStateCall('can_cache', asHandle(h));
      // Emulating cache with pread could be very slow for a script: only on request.
      return mode === undefined ? Cache.NONE : (mode as CacheMode);
    },

    async pread(h: unknown, buf: Uint8Array, offset: bigint): Promise<void> {
      const count = buf.length;
      const { outcome, stdoutLength } = await caller.call('pread', [asHandle(h).id, String(count), String(offset)], {
        stdoutInto: buf,
      });
      const argv0 = caller.target('pread').argv0;
      if (outcome === 'missing') throw new PluginError(`${argv0}: the pread method is required`, 'EIO');
      if (outcome === 'false') throw caller.unexpectedFalse('pread');
      if (stdoutLength !== count) {
        throw new PluginError(
          `${argv0}: incorrect amount of data read: expecting ${count} bytes but received ${stdoutLength} bytes from the script`,
          'EIO',
        );
      }
    },
    // A pread that printed fewer than count bytes has failed above.
    pread_fills_buffer: true,

    async pwrite(h: unknown, buf: Uint8Array, offset: bigint, flags: number): Promise<void> {
      const args = [asHandle(h).id, String(buf.length), String(offset), flagsString(flags)];
      const { outcome } = await caller.call('pwrite', args, { stdin: buf });
      if (outcome === 'missing') throw new PluginError('pwrite not implemented', 'EIO');
      if (outcome === 'false') throw caller.unexpectedFalse('pwrite');
    },

    flush: (h: unknown) => plainCall('flush', [asHandle(h).id]),

    trim: (h: unknown, count: number, offset: bigint, flags: number) =>
      plainCall('trim', [asHandle(h).id, String(count), String(offset), flagsString(flags)]),

    async zero(h: unknown, count: number, offset: bigint, flags: number): Promise<void> {
      const { outcome } = await caller.call('zero', [asHandle(h).id, String(count), String(offset), flagsString(flags)]);
      if (outcome === 'false') throw caller.unexpectedFalse('zero');
      if (outcome === 'missing') {
        // ENOTSUP asks the server to fall back to writing zeroes with pwrite.
        host.debug('zero falling back to pwrite');
        throw new PluginError('zero falling back to pwrite', 'EOPNOTSUPP');
      }
    },

    async extents(h: unknown, count: number, offset: bigint, flags: number, sink: ExtentSink): Promise<void> {
      const args = [asHandle(h).id, String(count), String(offset), flagsString(flags)];
      const { outcome, text } = await caller.callText('extents', args);
      const argv0 = caller.target('extents').argv0;
      if (outcome === 'missing') {
        throw new PluginError(`${argv0}: can_extents returned true, but extents method is not defined`, 'EIO');
      }
      if (outcome === 'false') throw caller.unexpectedFalse('extents');
      let parsed: ParsedExtent[];
      try {
        parsed = parseExtents(text, (s) => host.parseSize(s));
      } catch (err) {
        throw new PluginError(`${argv0}: ${(err as Error).message}`, 'EIO');
      }
      for (const e of parsed) {
        if (host.verbose) host.debug(`${argv0}: adding extent ${e.offset} ${e.length} ${e.type}`);
        sink.add(e.offset, e.length, e.type);
      }
    },

    cache: (h: unknown, count: number, offset: bigint) =>
      plainCall('cache', [asHandle(h).id, String(count), String(offset)]),
  };
}
