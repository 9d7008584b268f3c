/**
 * The plugin interface: one TypeScript mirror of nbdkit-plugin(3).
 *
 * Every plugin (the built-in TypeScript ones and each language adapter) implements this and
 * nothing else; the backend (backend.ts) owns defaults, emulation, validation and serialisation.
 * Callback names are nbdkit's literal names so that a reader of nbdkit-plugin(3) finds them at once.
 *
 * Conventions:
 * - Any callback may return its result directly or as a Promise.
 * - Offsets and sizes are bigint: NBD is 64-bit end to end. Counts (one request's length) are
 *   plain numbers, since the server never accepts a request longer than 2^32 - 1 bytes.
 * - A callback reports failure by throwing. Throw a PluginError to choose the errno the client
 *   sees; any other exception becomes EIO. The backend logs the message in nbdkit's form.
 * - Flags are the bit mask of nbdkit's NBDKIT_FLAG_* values (see Flag below).
 */

export type Awaitable<T> = T | Promise<T>;

/** An opaque per-connection value returned by open and passed back to every later callback. */
export type Handle = unknown;

/** nbdkit's NBDKIT_THREAD_MODEL_* values, in the same numeric order. */
export const ThreadModel = {
  SERIALIZE_CONNECTIONS: 0,
  SERIALIZE_ALL_REQUESTS: 1,
  SERIALIZE_REQUESTS: 2,
  PARALLEL: 3,
} as const;
export type ThreadModel = (typeof ThreadModel)[keyof typeof ThreadModel];

/** nbdkit's NBDKIT_FLAG_* bits as passed to data callbacks. */
export const Flag = {
  MAY_TRIM: 1 << 0,
  FUA: 1 << 1,
  REQ_ONE: 1 << 2,
  FAST_ZERO: 1 << 3,
} as const;

/** Results of can_fua and can_cache (NBDKIT_FUA_*, NBDKIT_CACHE_*). */
export const FuaMode = { NONE: 0, EMULATE: 1, NATIVE: 2 } as const;
export type FuaMode = (typeof FuaMode)[keyof typeof FuaMode];
export const CacheMode = { NONE: 0, EMULATE: 1, NATIVE: 2 } as const;
export type CacheMode = (typeof CacheMode)[keyof typeof CacheMode];

/** Extent type bits (NBDKIT_EXTENT_*), the same values as NBD's base:allocation flags. */
export const ExtentType = { DATA: 0, HOLE: 1 << 0, ZERO: 1 << 1 } as const;

/** What the plugin's extents callback writes into. Mirrors nbdkit_add_extent. */
export interface ExtentSink {
  /**
   * Append an extent. Extents must be added in ascending order without gaps; extents that start
   * before the requested offset are clipped, and adding may stop early once enough are known.
   * Throws a PluginError(EINVAL) on an out-of-order extent, as nbdkit_add_extent fails.
   */
  add(offset: bigint, length: bigint, type: number): void;
}

export interface ExportInfo {
  name: string;
  description?: string;
}

export interface BlockSize {
  minimum: number;
  preferred: number;
  maximum: number;
}

/** Facts about the connection that nbdkit exposes to callbacks (nbdkit_export_name, nbdkit_is_tls). */
export interface ConnectionInfo {
  /** The export name the client asked for (after default_export resolution). */
  readonly exportName: string;
  readonly tls: boolean;
  readonly readonly: boolean;
}

/** Services the host offers a plugin, the equivalents of nbdkit's nbdkit_* utility functions. */
export interface PluginHost {
  /** Prints `nbdkit-ts: debug: NAME: msg` on stderr when -v is given (nbdkit_debug). */
  debug(message: string): void;
  /** Prints an error line in nbdkit's form on stderr (nbdkit_error). */
  error(message: string): void;
  /** nbdkit_parse_size: "1M" -> 1048576n. Throws PluginError(EINVAL) on bad input. */
  parseSize(text: string): bigint;
  /** nbdkit_shutdown: ask the server to exit cleanly as soon as it can. */
  shutdown(): void;
  /** True when the server was started with -r. */
  readonly readonly: boolean;
  /** True when -v was given. */
  readonly verbose: boolean;
  /** nbdkit_stdio_safe: false under -s, where stdin and stdout are the client's connection. */
  readonly stdioSafe: boolean;
}

/**
 * A plugin. Required: name, open, get_size, pread. Everything else is optional, and the
 * backend supplies nbdkit's default when it is absent.
 */
export interface Plugin {
  readonly name: string;
  readonly version?: string;
  readonly longname?: string;
  readonly description?: string;
  /** Lines printed by --help after the usage: the key=value parameters the plugin takes. */
  readonly config_help?: string;
  /** The key a bare value after the plugin name is given to (nbdkit's magic_config_key). */
  readonly magic_config_key?: string;

  load?(): Awaitable<void>;
  unload?(): Awaitable<void>;
  /** Extra `key=value` lines for --dump-plugin, returned as lines without trailing newlines. */
  dump_plugin?(): Awaitable<string[]>;
  config?(key: string, value: string): Awaitable<void>;
  config_complete?(): Awaitable<void>;
  thread_model?(): Awaitable<ThreadModel>;
  get_ready?(): Awaitable<void>;
  after_fork?(): Awaitable<void>;
  cleanup?(): Awaitable<void>;

  preconnect?(readonly: boolean): Awaitable<void>;
  /** The exports; undefined asks for the default, as nbdkit_use_default_export (see Backend.listExports). */
  list_exports?(readonly: boolean, isTls: boolean): Awaitable<ExportInfo[] | undefined>;
  default_export?(readonly: boolean, isTls: boolean): Awaitable<string>;

  open(readonly: boolean, connection: ConnectionInfo): Awaitable<Handle>;
  close?(h: Handle): Awaitable<void>;

  /** The description sent in NBD_INFO_DESCRIPTION; undefined for none. */
  export_description?(h: Handle): Awaitable<string | undefined>;
  get_size(h: Handle): Awaitable<bigint | number>;
  block_size?(h: Handle): Awaitable<BlockSize>;
  is_rotational?(h: Handle): Awaitable<boolean>;
  can_write?(h: Handle): Awaitable<boolean>;
  can_flush?(h: Handle): Awaitable<boolean>;
  can_trim?(h: Handle): Awaitable<boolean>;
  can_zero?(h: Handle): Awaitable<boolean>;
  can_fast_zero?(h: Handle): Awaitable<boolean>;
  can_fua?(h: Handle): Awaitable<FuaMode>;
  can_multi_conn?(h: Handle): Awaitable<boolean>;
  can_extents?(h: Handle): Awaitable<boolean>;
  can_cache?(h: Handle): Awaitable<CacheMode>;

  /** Fill all of buf with the data at offset. */
  pread(h: Handle, buf: Uint8Array, offset: bigint, flags: number): Awaitable<void>;
  /**
   * nbdkit-ts only: this plugin's pread writes every byte of buf whenever it succeeds (or
   * fails when it cannot). Without it the server zeroes buf before each pread, because buf is
   * a recycled buffer that last held another request's data, perhaps another client's: bytes a
   * plugin leaves unwritten must read as zeroes, never as what the buffer held before.
   */
  pread_fills_buffer?: boolean;
  /** Write all of buf at offset. buf is only valid until the returned promise settles. */
  pwrite?(h: Handle, buf: Uint8Array, offset: bigint, flags: number): Awaitable<void>;
  flush?(h: Handle, flags: number): Awaitable<void>;
  trim?(h: Handle, count: number, offset: bigint, flags: number): Awaitable<void>;
  zero?(h: Handle, count: number, offset: bigint, flags: number): Awaitable<void>;
  extents?(h: Handle, count: number, offset: bigint, flags: number, extents: ExtentSink): Awaitable<void>;
  cache?(h: Handle, count: number, offset: bigint, flags: number): Awaitable<void>;

  /**
   * nbdkit-ts only, for plugins whose pread is a plain pread(2) of one host file at the same
   * offsets: that file's descriptor, so that the server may send a read reply straight from
   * the file (sendfile) instead of through memory. Consulted once, at open, for parallel
   * plugins; undefined means no such file.
   */
  read_source_fd?(h: Handle): number | undefined;
  /**
   * nbdkit-ts only, for plugins whose pwrite is a plain pwrite(2) of one host file at the same
   * offsets, with FUA an fdatasync: that file's descriptor, so that the thread receiving a
   * connection's requests may write their payloads itself (InputReader.receiveOnThread).
   * Consulted once, at open, for parallel plugins; undefined means no such file.
   */
  write_target_fd?(h: Handle): number | undefined;
  /**
   * nbdkit-ts only, for plugins whose read data is in memory of their own (an interpreter's
   * heap, RAM disk pages): pread without the copy into the server's buffer. Returns the data as
   * views of that memory, in order, `count` bytes in all, valid only until the plugin is next
   * called (the server sends or copies them at once). Synchronous; `pread` must also be there.
   */
  pread_view?(h: Handle, count: number, offset: bigint, flags: number): Uint8Array[];
}

/** What a plugin module (built-in or language adapter) exports: a factory for its Plugin. */
export type PluginFactory = (host: PluginHost) => Awaitable<Plugin>;

/**
 * An error with the errno the client should see. `errno` is an errno name such as "ENOSPC"
 * (see errno.ts for the names understood). Language adapters throw this when a script called
 * its set_error equivalent, or when a script's error names an errno (sh plugin).
 */
export class PluginError extends Error {
  readonly errno: string;
  constructor(message: string, errno = 'EIO') {
    super(message);
    this.name = 'PluginError';
    this.errno = errno;
  }
}

/**
 * An error the language adapter has already reported on stderr (for example a Python traceback
 * printed in nbdkit's form). The backend maps its errno but does not print it again.
 */
export class ReportedPluginError extends PluginError {
  constructor(message: string, errno = 'EIO') {
    super(message, errno);
    this.name = 'ReportedPluginError';
  }
}
