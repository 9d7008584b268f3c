/**
 * The backend: what nbdkit's server does between the protocol and a plugin.
 *
 * - the defaults for callbacks a plugin leaves out (can_write from the presence of pwrite, ...),
 * - emulation (zero by writing zeroes, FUA by flush, cache by pread, extents as "all data"),
 * - request validation against the export (bounds, flags, capabilities),
 * - turning a plugin's exception into an errno and a message on stderr,
 * - serialisation of plugin calls by thread model.
 *
 * The protocol layer (handshake.ts, transmission.ts) only ever talks to this module.
 */
import { logDebug, logError } from './log.js';
import {
  CacheMode,
  type ConnectionInfo,
  type ExportInfo,
  type ExtentSink,
  ExtentType,
  Flag,
  FuaMode,
  type Handle,
  type Plugin,
  PluginError,
  ReportedPluginError,
  ThreadModel,
} from './plugin.js';
import { Command, CommandFlag, MAX_REQUEST_SIZE, MAX_STRING, TransmissionFlag, commandName } from './protocol.js';
import type { WriteTarget } from './input.js';
import { isPromise, type MaybePromise, type RequestSerializer, ServerLocks } from './serialize.js';
import { MAX_SIZE } from './size.js';

/** A failed request: the errno to map for the client. The message has already been logged. */
export class RequestError extends Error {
  constructor(readonly errno: string, message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

/** nbdkit's zero levels: the plugin's can_zero only says whether .zero is worth calling. */
const ZeroMode = { NONE: 0, EMULATE: 1, NATIVE: 2 } as const;
type ZeroMode = (typeof ZeroMode)[keyof typeof ZeroMode];

/** Commands that need a transmission flag to have been advertised. */
const COMMAND_NEEDS: ReadonlyArray<readonly [number, number]> = [
  [Command.FLUSH, TransmissionFlag.SEND_FLUSH],
  [Command.TRIM, TransmissionFlag.SEND_TRIM],
  [Command.WRITE_ZEROES, TransmissionFlag.SEND_WRITE_ZEROES],
  [Command.CACHE, TransmissionFlag.SEND_CACHE],
];

const KNOWN_COMMAND_FLAGS =
  CommandFlag.FUA | CommandFlag.NO_HOLE | CommandFlag.DF | CommandFlag.REQ_ONE | CommandFlag.FAST_ZERO;

/**
 * Log why a request is refused and give its errno. The message is built only here, for a
 * request that fails: validation runs for every request.
 */
function refuse(command: number, errno: string, why: (name: string) => string): string {
  logError(`invalid request: ${why(commandName(command))}`);
  return errno;
}

/** The most exports list_exports may return, as nbdkit. */
const MAX_EXPORTS = 10000;

/** The extent limit per reply, as nbdkit (keeps one reply's memory bounded). */
const MAX_EXTENTS = 1024 * 1024;

export interface BackendOptions {
  readonly: boolean;
  /** -t: at most this many requests of one connection inside a parallel plugin. */
  threads: number;
}

/** Error text for a thrown value, whatever a plugin threw. */
function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The errno a thrown value asks for: a PluginError's, a Node system error's, or EIO. */
function errnoOf(error: unknown): string {
  if (error instanceof PluginError) return error.errno;
  if (error instanceof RequestError) return error.errno;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
  return 'EIO';
}

/** A plugin's failure as a RequestError, logged in nbdkit's form unless already reported. */
function failure(what: string, error: unknown): RequestError {
  if (error instanceof RequestError) return error;
  const message = describe(error);
  if (!(error instanceof ReportedPluginError)) logError(`${what}: ${message}`);
  return new RequestError(errnoOf(error), message);
}

/**
 * Call a plugin callback, turning any failure into a logged RequestError. `what` names the
 * callback in nbdkit's message form: `nbdkit-ts: error: pread: message`. A callback that
 * returns synchronously is answered synchronously: no promise on the common data path.
 */
function invoke<T>(what: string, call: () => MaybePromise<T>): MaybePromise<T> {
  let result: MaybePromise<T>;
  try {
    result = call();
  } catch (error) {
    throw failure(what, error);
  }
  if (!isPromise(result)) return result;
  return result.catch((error: unknown) => {
    throw failure(what, error);
  });
}

/** Run a call whose failure has been logged by invoke and must not propagate. */
async function quietly(call: () => MaybePromise<void>): Promise<void> {
  try {
    await call();
  } catch {
    // already reported
  }
}

function toBigInt(value: bigint | number, what: string): bigint {
  if (typeof value === 'bigint') return value;
  if (!Number.isSafeInteger(value)) throw new PluginError(`${what} returned a non-integer (${value})`, 'EIO');
  return BigInt(value);
}

/** The server-wide half: one plugin, configured and ready, shared by every connection. */
export class Backend {
  private locks: ServerLocks | undefined;

  constructor(
    readonly plugin: Plugin,
    private readonly options: BackendOptions,
  ) {}

  get readonly(): boolean {
    return this.options.readonly;
  }

  /** The thread model in force, known after prepare(). */
  get threadModel(): ThreadModel {
    if (!this.locks) throw new Error('backend used before prepare()');
    return this.locks.threadModel;
  }

  get serverLocks(): ServerLocks {
    if (!this.locks) throw new Error('backend used before prepare()');
    return this.locks;
  }

  /** After config_complete: settle the thread model and call get_ready, as nbdkit does before listening. */
  async prepare(): Promise<void> {
    const declared = this.plugin.thread_model
      ? await invoke('thread_model', () => this.plugin.thread_model!())
      : ThreadModel.SERIALIZE_ALL_REQUESTS;
    if (!Object.values(ThreadModel).includes(declared)) {
      throw new PluginError(`thread_model returned an unknown thread model (${String(declared)})`, 'EINVAL');
    }
    logDebug(`${this.plugin.name}: thread model ${threadModelName(declared)}`);
    this.locks = new ServerLocks(declared, this.options.threads);
    if (this.plugin.get_ready) await invoke('get_ready', () => this.plugin.get_ready!());
  }

  async afterFork(): Promise<void> {
    if (this.plugin.after_fork) await invoke('after_fork', () => this.plugin.after_fork!());
  }

  async preconnect(readonly: boolean): Promise<void> {
    if (this.plugin.preconnect) await invoke('preconnect', () => this.plugin.preconnect!(readonly));
  }

  /**
   * list_exports with nbdkit's default (also what a plugin's undefined asks for, as
   * nbdkit_use_default_export): the one export default_export names, or none at all when
   * default_export fails (its error is logged; the client still gets a list, as from nbdkit).
   * More than nbdkit's limit of exports fails, as nbdkit_add_export does: one client's
   * NBD_OPT_LIST must not cost the server without bound.
   */
  async listExports(readonly: boolean, tls: boolean): Promise<ExportInfo[]> {
    const exports = this.plugin.list_exports
      ? await invoke('list_exports', () => this.plugin.list_exports!(readonly, tls))
      : undefined;
    if (exports === undefined) {
      try {
        return [{ name: await this.defaultExport(readonly, tls) }];
      } catch {
        return [];
      }
    }
    if (exports.length > MAX_EXPORTS) {
      logError(`list_exports: too many exports (${exports.length}, at most ${MAX_EXPORTS})`);
      throw new RequestError('EINVAL', 'too many exports');
    }
    // As nbdkit_add_export: a name or description longer than NBD allows fails the whole list.
    for (const e of exports) {
      const tooLong =
        Buffer.byteLength(e.name) > MAX_STRING ? 'name' : Buffer.byteLength(e.description ?? '') > MAX_STRING ? 'description' : '';
      if (tooLong) {
        logError(`nbdkit_add_export: ${tooLong} too long`);
        throw new RequestError('EINVAL', `nbdkit_add_export: ${tooLong} too long`);
      }
    }
    return exports;
  }

  async defaultExport(readonly: boolean, tls: boolean): Promise<string> {
    if (!this.plugin.default_export) return '';
    return invoke('default_export', () => this.plugin.default_export!(readonly, tls));
  }

  /**
   * Open the export for a connection and probe every capability once, as nbdkit does in
   * protocol_common_open, so that requests never meet a failing can_* later.
   */
  async open(exportName: string, tls: boolean, serializer: RequestSerializer): Promise<ExportContext> {
    const readonly = this.options.readonly;
    const resolvedName = exportName === '' ? await this.defaultExport(readonly, tls) : exportName;
    const info: ConnectionInfo = { exportName: resolvedName, tls, readonly };
    const handle = await serializer.run(() => invoke('open', () => this.plugin.open(readonly, info)));
    const context = new ExportContext(this.plugin, handle, readonly, serializer, resolvedName);
    try {
      await serializer.run(() => context.probe(this.threadModel));
    } catch (error) {
      await context.close();
      throw error;
    }
    return context;
  }

  /** cleanup and unload are best effort: their failures are logged, the exit goes on. */
  async cleanup(): Promise<void> {
    if (this.plugin.cleanup) await quietly(() => invoke('cleanup', () => this.plugin.cleanup!()));
  }

  async unload(): Promise<void> {
    if (this.plugin.unload) await quietly(() => invoke('unload', () => this.plugin.unload!()));
  }
}

export function threadModelName(model: ThreadModel): string {
  switch (model) {
    case ThreadModel.SERIALIZE_CONNECTIONS:
      return 'serialize_connections';
    case ThreadModel.SERIALIZE_ALL_REQUESTS:
      return 'serialize_all_requests';
    case ThreadModel.SERIALIZE_REQUESTS:
      return 'serialize_requests';
    default:
      return 'parallel';
  }
}

/** Extents collected for one BLOCK_STATUS request, with nbdkit_add_extent's rules. */
export class ExtentList implements ExtentSink {
  readonly offsets: bigint[] = [];
  readonly lengths: bigint[] = [];
  readonly types: number[] = [];
  private next = -1n;

  constructor(
    private readonly start: bigint,
    private readonly end: bigint,
  ) {}

  get count(): number {
    return this.types.length;
  }

  add(offset: bigint, length: bigint, type: number): void {
    if (this.next >= 0n && this.next !== offset) {
      throw new PluginError('extents must be added in ascending order and must be contiguous', 'ERANGE');
    }
    if (length < 0n) throw new PluginError(`extent length is negative (${length})`, 'ERANGE');
    this.next = offset + length;
    if (length === 0n || offset >= this.end || this.types.length >= MAX_EXTENTS) return;
    if (offset + length > this.end) length = this.end - offset;
    const n = this.types.length;
    if (n === 0) {
      if (offset + length <= this.start) return;
      if (offset > this.start) throw new PluginError(`first extent must not be > start (${this.start})`, 'ERANGE');
      length -= this.start - offset;
      offset = this.start;
    }
    if (n > 0 && this.types[n - 1] === type) {
      this.lengths[n - 1] += length;
      return;
    }
    this.offsets.push(offset);
    this.lengths.push(length);
    this.types.push(type);
  }
}

/** The per-connection half: one open handle, its cached capabilities, and the data path. */
export class ExportContext {
  size = 0n;
  /** Transmission flags; the capabilities below are the ones requests consult. */
  eflags = 0;
  private zeroMode: ZeroMode = ZeroMode.NONE;
  private fuaMode: FuaMode = FuaMode.NONE;
  private canExtents = false;
  private cacheMode: CacheMode = CacheMode.NONE;
  private closed = false;
  description: string | undefined;
  blockSize: { minimum: number; preferred: number; maximum: number } | undefined;
  /** The host file reads may be sent from directly (Plugin.read_source_fd), if any. */
  readSourceFd: number | undefined;
  /** Where a thread may write payloads itself (Plugin.write_target_fd), if anywhere. */
  writeTarget: WriteTarget | undefined;

  constructor(
    private readonly plugin: Plugin,
    private readonly handle: Handle,
    private readonly readonly: boolean,
    private readonly serializer: RequestSerializer,
    /** The export name after default_export resolved "" (what NBD_INFO_NAME reports). */
    readonly exportName: string,
  ) {}

  /** Everything nbdkit asks a plugin at open time, with nbdkit's defaults and dependencies. */
  async probe(threadModel: ThreadModel): Promise<void> {
    const p = this.plugin;
    const h = this.handle;
    const size = toBigInt(await invoke('get_size', () => p.get_size(h)), 'get_size');
    if (size < 0n || size > MAX_SIZE) throw new RequestError('EINVAL', `get_size returned invalid value (${size})`);
    this.size = size;

    const ask = async (name: keyof Plugin, fallback: boolean): Promise<boolean> => {
      const callback = p[name] as ((h: Handle) => unknown) | undefined;
      if (!callback) return fallback;
      return Boolean(await invoke(name, () => callback.call(p, h)));
    };

    const canWrite = !this.readonly && (await ask('can_write', p.pwrite !== undefined));
    const canFlush = await ask('can_flush', p.flush !== undefined);
    const isRotational = await ask('is_rotational', false);
    const canTrim = canWrite && (await ask('can_trim', p.trim !== undefined));
    if (!canWrite) this.zeroMode = ZeroMode.NONE;
    else if (p.can_zero) this.zeroMode = (await ask('can_zero', true)) ? ZeroMode.NATIVE : ZeroMode.EMULATE;
    else this.zeroMode = p.zero ? ZeroMode.NATIVE : ZeroMode.EMULATE;
    let canFastZero: boolean;
    if (this.zeroMode === ZeroMode.NONE) canFastZero = false;
    else if (p.can_fast_zero) canFastZero = await ask('can_fast_zero', false);
    else canFastZero = p.zero === undefined || this.zeroMode !== ZeroMode.NATIVE;
    if (!canWrite) this.fuaMode = FuaMode.NONE;
    else if (p.can_fua) this.fuaMode = await this.askMode('can_fua', () => p.can_fua!(h));
    else this.fuaMode = p.flush ? FuaMode.EMULATE : FuaMode.NONE;
    const canMultiConn = await ask('can_multi_conn', false);
    if (p.can_cache) this.cacheMode = await this.askMode('can_cache', () => p.can_cache!(h));
    else this.cacheMode = p.cache ? CacheMode.NATIVE : CacheMode.NONE;
    this.canExtents = await ask('can_extents', p.extents !== undefined);

    if (p.export_description) {
      this.description = await invoke('export_description', () => p.export_description!(h));
    }
    if (p.block_size) {
      const b = await invoke('block_size', () => p.block_size!(h));
      if (b.minimum !== 0) this.blockSize = validateBlockSize(b);
    }

    let flags = TransmissionFlag.HAS_FLAGS;
    if (!canWrite) flags |= TransmissionFlag.READ_ONLY;
    if (this.zeroMode !== ZeroMode.NONE) flags |= TransmissionFlag.SEND_WRITE_ZEROES;
    if (canFastZero) flags |= TransmissionFlag.SEND_FAST_ZERO;
    if (canTrim) flags |= TransmissionFlag.SEND_TRIM;
    if (this.fuaMode !== FuaMode.NONE) flags |= TransmissionFlag.SEND_FUA;
    if (canFlush) flags |= TransmissionFlag.SEND_FLUSH;
    if (isRotational) flags |= TransmissionFlag.ROTATIONAL;
    // Multi-conn promises consistency between connections, meaningless if they cannot coexist.
    if (canMultiConn && threadModel > ThreadModel.SERIALIZE_CONNECTIONS) flags |= TransmissionFlag.CAN_MULTI_CONN;
    if (this.cacheMode !== CacheMode.NONE) flags |= TransmissionFlag.SEND_CACHE;
    this.eflags = flags;
    // Sending from the file skips the request locks, so only a plugin that takes none may.
    if (threadModel === ThreadModel.PARALLEL && p.read_source_fd) this.readSourceFd = p.read_source_fd(h);
    const writeFd = threadModel === ThreadModel.PARALLEL && canWrite ? p.write_target_fd?.(h) : undefined;
    if (writeFd !== undefined) {
      // FUA is the plugin's fdatasync only when the plugin does FUA itself.
      this.writeTarget = { fd: writeFd, size, fua: this.fuaMode === FuaMode.NATIVE, maxLength: MAX_REQUEST_SIZE };
    }
  }

  private async askMode<T extends number>(name: string, call: () => Promise<T> | T): Promise<T> {
    const value = await invoke(name, call);
    if (typeof value === 'boolean') return (value ? 2 : 0) as T; // tolerate a boolean from a lax plugin
    if (value !== 0 && value !== 1 && value !== 2) {
      throw new RequestError('EINVAL', `${name} returned an invalid value (${String(value)})`);
    }
    return value;
  }

  /**
   * Check a request against the export, as nbdkit's validate_request. Returns the errno for
   * the client and logs why, or undefined when the request may go ahead.
   */
  validate(command: number, flags: number, offset: bigint, count: number, structuredReplies: boolean, baseAllocation: boolean): string | undefined {
    if (
      this.eflags & TransmissionFlag.READ_ONLY &&
      (command === Command.WRITE || command === Command.TRIM || command === Command.WRITE_ZEROES)
    ) {
      return refuse(command, 'EROFS', (name) => `${name}: write request on readonly connection`);
    }
    switch (command) {
      case Command.READ:
      case Command.CACHE:
      case Command.WRITE:
      case Command.TRIM:
      case Command.WRITE_ZEROES:
      case Command.BLOCK_STATUS:
        // A zero-length range counts as out of range, as in nbdkit's backend_valid_range.
        if (count === 0 || offset > this.size || BigInt(count) > this.size - offset) {
          const errno = command === Command.WRITE || command === Command.WRITE_ZEROES ? 'ENOSPC' : 'EINVAL';
          return refuse(command, errno, (name) => `${name}: offset and count are out of range: offset=${offset} count=${count}`);
        }
        break;
      case Command.FLUSH:
        if (offset !== 0n || count !== 0) return refuse(command, 'EINVAL', (name) => `${name}: expecting offset and count = 0`);
        break;
      default:
        return refuse(command, 'EINVAL', () => `unknown command (${command}) ignored`);
    }
    if (flags & ~KNOWN_COMMAND_FLAGS) return refuse(command, 'EINVAL', () => `unknown flag (0x${flags.toString(16)})`);
    if (flags & CommandFlag.NO_HOLE && command !== Command.WRITE_ZEROES) {
      return refuse(command, 'EINVAL', () => 'NO_HOLE flag needs WRITE_ZEROES request');
    }
    if (flags & CommandFlag.FAST_ZERO) {
      if (command !== Command.WRITE_ZEROES) return refuse(command, 'EINVAL', () => 'FAST_ZERO flag needs WRITE_ZEROES request');
      // A slow zero would defeat the flag's purpose (nbdkit 1.32.5 itself aborts here).
      if (!(this.eflags & TransmissionFlag.SEND_FAST_ZERO)) {
        return refuse(command, 'EINVAL', (name) => `${name}: fast zero support was not advertised`);
      }
    }
    if (flags & CommandFlag.DF) {
      if (command !== Command.READ) return refuse(command, 'EINVAL', () => 'DF flag needs READ request');
      if (!structuredReplies) return refuse(command, 'EINVAL', (name) => `${name}: structured replies was not negotiated`);
    }
    if (flags & CommandFlag.REQ_ONE && command !== Command.BLOCK_STATUS) {
      return refuse(command, 'EINVAL', () => 'REQ_ONE flag needs BLOCK_STATUS request');
    }
    if (flags & CommandFlag.FUA && !(this.eflags & TransmissionFlag.SEND_FUA)) {
      return refuse(command, 'EINVAL', () => 'FUA flag not supported');
    }
    if ((command === Command.WRITE || command === Command.READ) && count > MAX_REQUEST_SIZE) {
      return refuse(command, 'ENOMEM', (name) => `${name}: data request is too large (${count} > ${MAX_REQUEST_SIZE})`);
    }
    for (const [cmd, flag] of COMMAND_NEEDS) {
      if (command === cmd && !(this.eflags & flag)) return refuse(command, 'EINVAL', (name) => `${name}: operation not supported`);
    }
    if (command === Command.BLOCK_STATUS) {
      if (!structuredReplies) return refuse(command, 'EINVAL', (name) => `${name}: structured replies was not negotiated`);
      if (!baseAllocation) return refuse(command, 'EINVAL', (name) => `${name}: base:allocation was not negotiated`);
    }
    return undefined;
  }

  private run<T>(what: string, call: () => MaybePromise<T>): MaybePromise<T> {
    return this.serializer.run(() => invoke(what, call));
  }

  /** Synchronous when the plugin is: the caller awaits only a promise. */
  pread(buf: Uint8Array, offset: bigint): MaybePromise<void> {
    if (!this.plugin.pread_fills_buffer) buf.fill(0);
    return this.run('pread', () => this.plugin.pread(this.handle, buf, offset, 0));
  }

  /** Whether preadView can be used: the plugin hands out views of its own memory. */
  get readsViews(): boolean {
    return this.plugin.pread_view !== undefined;
  }

  /**
   * A read through Plugin.pread_view: `consume` gets the view while it is valid, inside the
   * same lock, before anything else can call the plugin.
   */
  preadView(count: number, offset: bigint, consume: (parts: Uint8Array[]) => void): MaybePromise<void> {
    return this.run('pread', () => {
      const parts = this.plugin.pread_view!(this.handle, count, offset, 0);
      let length = 0;
      for (const part of parts) length += part.length;
      if (length !== count) throw new PluginError(`returned ${length} bytes, not ${count}`, 'EIO');
      consume(parts);
    });
  }

  /** Strip FUA for plugins that do not handle it natively; the caller flushes instead. */
  private splitFua(flags: number): [number, boolean] {
    if (flags & Flag.FUA && this.fuaMode !== FuaMode.NATIVE) return [flags & ~Flag.FUA, true];
    return [flags, false];
  }

  private async flushAfter(needFlush: boolean): Promise<void> {
    if (needFlush) await this.flush();
  }

  /** Synchronous when the plugin is and no FUA needs emulating. */
  pwrite(buf: Uint8Array, offset: bigint, flags: number): MaybePromise<void> {
    const [pluginFlags, needFlush] = this.splitFua(flags);
    const pwrite = this.plugin.pwrite;
    if (!pwrite) throw new RequestError('EROFS', 'pwrite: plugin cannot write');
    const written = this.run('pwrite', () => pwrite.call(this.plugin, this.handle, buf, offset, pluginFlags));
    if (!needFlush) return written;
    return Promise.resolve(written).then(() => this.flush());
  }

  async flush(): Promise<void> {
    const flush = this.plugin.flush;
    if (!flush) throw new RequestError('EINVAL', 'flush: plugin cannot flush');
    await this.run('flush', () => flush.call(this.plugin, this.handle, 0));
  }

  async trim(count: number, offset: bigint, flags: number): Promise<void> {
    const [pluginFlags, needFlush] = this.splitFua(flags);
    const trim = this.plugin.trim;
    if (!trim) throw new RequestError('EINVAL', 'trim: plugin cannot trim');
    await this.run('trim', () => trim.call(this.plugin, this.handle, count, offset, pluginFlags));
    await this.flushAfter(needFlush);
  }

  /** zero, falling back to writing zeroes where the plugin cannot (unless the client wants it fast). */
  async zero(count: number, offset: bigint, flags: number): Promise<void> {
    const [pluginFlags, needFlush] = this.splitFua(flags);
    if (count === 0) return this.flushAfter(needFlush);
    const zero = this.plugin.zero;
    if (this.zeroMode === ZeroMode.NATIVE && zero) {
      try {
        await this.run('zero', () => zero.call(this.plugin, this.handle, count, offset, pluginFlags));
        return this.flushAfter(needFlush);
      } catch (error) {
        const errno = errnoOf(error);
        if (errno !== 'ENOTSUP' && errno !== 'EOPNOTSUPP') throw error;
      }
    }
    if (flags & Flag.FAST_ZERO) throw new RequestError('ENOTSUP', 'zero: fast zero not possible');
    const writeFlags = pluginFlags & ~(Flag.MAY_TRIM | Flag.FAST_ZERO);
    const chunk = Math.min(count, MAX_REQUEST_SIZE);
    const zeroes = new Uint8Array(chunk);
    let done = 0;
    while (done < count) {
      const length = Math.min(chunk, count - done);
      await this.pwrite(zeroes.subarray(0, length), offset + BigInt(done), writeFlags);
      done += length;
    }
    await this.flushAfter(needFlush);
  }

  /** Fill the list for [offset, offset+count), or report all data when the plugin has no extents. */
  async extents(count: number, offset: bigint, flags: number): Promise<ExtentList> {
    const list = new ExtentList(offset, this.size);
    const extents = this.plugin.extents;
    if (!this.canExtents || !extents) {
      list.add(offset, BigInt(count), ExtentType.DATA);
      return list;
    }
    await this.run('extents', () => extents.call(this.plugin, this.handle, count, offset, flags, list));
    if (list.count < 1) {
      logError('extents: plugin must return at least one extent');
      throw new RequestError('EINVAL', 'extents: plugin must return at least one extent');
    }
    return list;
  }

  /** cache: native, emulated by reading and discarding, or a no-op when advertised without a callback. */
  async cache(count: number, offset: bigint, flags: number): Promise<void> {
    if (this.cacheMode === CacheMode.EMULATE) {
      const chunk = Math.min(count, MAX_REQUEST_SIZE);
      const scratch = new Uint8Array(chunk);
      for (let done = 0; done < count; done += chunk) {
        const length = Math.min(chunk, count - done);
        await this.pread(scratch.subarray(0, length), offset + BigInt(done));
      }
      return;
    }
    const cache = this.plugin.cache;
    if (!cache) return;
    await this.run('cache', () => cache.call(this.plugin, this.handle, count, offset, flags));
  }

  /** close the handle once; errors are logged, never thrown, as the connection is going anyway. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const close = this.plugin.close;
    if (close) await quietly(() => this.run('close', () => close.call(this.plugin, this.handle)));
  }
}

function validateBlockSize(b: { minimum: number; preferred: number; maximum: number }): typeof b {
  const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
  const ok =
    pow2(b.minimum) &&
    b.minimum <= 65536 &&
    pow2(b.preferred) &&
    b.preferred >= 512 &&
    b.preferred <= 32 * 1024 * 1024 &&
    b.preferred >= b.minimum &&
    (b.maximum === 0xffffffff || (b.maximum >= b.preferred && b.maximum % b.minimum === 0));
  if (!ok) {
    throw new RequestError(
      'EINVAL',
      `block_size: invalid minimum, preferred or maximum (${b.minimum}, ${b.preferred}, ${b.maximum})`,
    );
  }
  return b;
}
