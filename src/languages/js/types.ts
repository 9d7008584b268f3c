/**
 * The plugin interface of JavaScript and TypeScript plugins, as users write them: what a `js`
 * plugin module exports (`nbdkit-ts js plugin.mjs`) and what an object given to startServer
 * has. nbdkit's callback names with the arguments of nbdkit's Python API version 2; any
 * callback may be async. Published with the package: `import type { Plugin } from 'nbdkit-ts'`.
 *
 * The adapter (index.ts) turns this into the server's own interface (host/plugin.ts), where
 * offsets are always bigints and nbdkit's defaults are applied by the backend.
 */
import type { CacheMode, ConnectionInfo, FuaMode, ThreadModel } from '../../host/plugin.js';

export type Awaitable<T> = T | Promise<T>;

/** An offset or size: a number, or a bigint beyond Number.MAX_SAFE_INTEGER (either may be returned). */
export type Offset = number | bigint;

/** An export in list_exports' result: a name, a [name, description] pair, or an object. */
export type ExportEntry = string | [name: string, description?: string] | { name: string; description?: string };

/** An extent in extents' result; type bits are ExtentType's (1 hole, 2 zero, 0 data). */
export type Extent = [offset: Offset, length: Offset, type: number] | { offset: Offset; length: Offset; type: number };

/**
 * A plugin. `H` is the handle `open` returns, passed back to every callback of that connection.
 * Only open, get_size and pread are required; for the rest the server applies nbdkit's
 * defaults (read-only without pwrite, zero emulated by writing, FUA by flush, and so on).
 *
 * To fail a request, throw: an error whose `errno` is an errno name ('ENOSPC') or number picks
 * the error the client sees (a PluginError does), anything else is EIO.
 */
export interface Plugin<H = unknown> {
  /** key=value parameters, in order (startServer's params, or those after script= of `js`). */
  config?(key: string, value: string): Awaitable<void>;
  config_complete?(): Awaitable<void>;
  /** ThreadModel: 0 serialize_connections, 1 serialize_all_requests (default), 2 serialize_requests, 3 parallel. */
  thread_model?(): Awaitable<ThreadModel>;
  get_ready?(): Awaitable<void>;
  after_fork?(): Awaitable<void>;
  cleanup?(): Awaitable<void>;
  unload?(): Awaitable<void>;
  /** Lines (an array or one string) added to --dump-plugin. */
  dump_plugin?(): Awaitable<string[] | string | undefined>;

  preconnect?(readonly: boolean): Awaitable<void>;
  list_exports?(readonly: boolean, isTls: boolean): Awaitable<ExportEntry[]>;
  default_export?(readonly: boolean, isTls: boolean): Awaitable<string>;

  open(readonly: boolean, connection: ConnectionInfo): Awaitable<H>;
  close?(h: H): Awaitable<void>;

  export_description?(h: H): Awaitable<string | undefined>;
  get_size(h: H): Awaitable<Offset>;
  /** [minimum, preferred, maximum] block sizes. */
  block_size?(h: H): Awaitable<[minimum: number, preferred: number, maximum: number]>;
  is_rotational?(h: H): Awaitable<boolean>;
  can_write?(h: H): Awaitable<boolean>;
  can_flush?(h: H): Awaitable<boolean>;
  can_trim?(h: H): Awaitable<boolean>;
  can_zero?(h: H): Awaitable<boolean>;
  can_fast_zero?(h: H): Awaitable<boolean>;
  can_multi_conn?(h: H): Awaitable<boolean>;
  can_extents?(h: H): Awaitable<boolean>;
  can_fua?(h: H): Awaitable<FuaMode>;
  can_cache?(h: H): Awaitable<CacheMode>;

  /** Fill all of `buf` with the data at `offset`. Flags are Flag's bits. */
  pread(h: H, buf: Uint8Array, offset: Offset, flags: number): Awaitable<void>;
  /** Write all of `buf` at `offset`; `buf` is valid only until the call settles. */
  pwrite?(h: H, buf: Uint8Array, offset: Offset, flags: number): Awaitable<void>;
  flush?(h: H, flags: number): Awaitable<void>;
  trim?(h: H, count: number, offset: Offset, flags: number): Awaitable<void>;
  zero?(h: H, count: number, offset: Offset, flags: number): Awaitable<void>;
  cache?(h: H, count: number, offset: Offset, flags: number): Awaitable<void>;
  /** The extents from `offset` on, in order and without gaps, covering at least one byte. */
  extents?(h: H, count: number, offset: Offset, flags: number): Awaitable<Iterable<Extent>>;
}
