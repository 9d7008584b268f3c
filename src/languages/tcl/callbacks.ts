/**
 * The Tcl procs a plugin script may define, by the name the script uses and the nbdkit-plugin(3)
 * callback each one implements. `open`, `close` and `flush` are Tcl built-in commands, so those
 * three carry a `plugin_` prefix, as in nbdkit's Tcl plugin.
 */
import type { Plugin } from '../../host/plugin.js';

/** The callbacks of nbdkit's own Tcl plugin (nbdkit-tcl-plugin(3)), then the rest of nbdkit-plugin(3). */
export const PROC_FOR_CALLBACK = {
  dump_plugin: 'dump_plugin',
  config: 'config',
  config_complete: 'config_complete',
  open: 'plugin_open',
  close: 'plugin_close',
  get_size: 'get_size',
  can_write: 'can_write',
  can_flush: 'can_flush',
  is_rotational: 'is_rotational',
  can_trim: 'can_trim',
  pread: 'pread',
  pwrite: 'pwrite',
  flush: 'plugin_flush',
  trim: 'trim',
  zero: 'zero',
  // Beyond nbdkit's Tcl plugin:
  thread_model: 'thread_model',
  get_ready: 'get_ready',
  after_fork: 'after_fork',
  cleanup: 'cleanup',
  preconnect: 'preconnect',
  list_exports: 'list_exports',
  default_export: 'default_export',
  export_description: 'export_description',
  block_size: 'block_size',
  can_zero: 'can_zero',
  can_fast_zero: 'can_fast_zero',
  can_fua: 'can_fua',
  can_multi_conn: 'can_multi_conn',
  can_extents: 'can_extents',
  can_cache: 'can_cache',
  extents: 'extents',
  cache: 'cache',
} as const satisfies Partial<Record<keyof Plugin, string>>;

export type TclCallback = keyof typeof PROC_FOR_CALLBACK;

/** nbdkit requires these three; a script without them fails at start-up. */
export const REQUIRED_PROCS = ['plugin_open', 'get_size', 'pread'] as const;

/**
 * How many arguments each data proc takes before the optional trailing flags argument. A proc
 * declaring one more parameter (or `args`) also receives the request's NBDKIT_FLAG_* bit mask.
 */
export const ARGS_BEFORE_FLAGS = {
  pread: 3, // h count offset
  pwrite: 3, // h buf offset
  plugin_flush: 1, // h
  trim: 3, // h count offset
  zero: 4, // h count offset may_trim
  cache: 3, // h count offset
  extents: 3, // h count offset
} as const;

export type FlaggedProc = keyof typeof ARGS_BEFORE_FLAGS;
