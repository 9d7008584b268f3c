/**
 * nbdkit-ts as a library: run the server in-process with nbdkit's command-line arguments, and
 * the plugin interface and constants for writing plugins in TypeScript.
 */
export { main } from './host/server.js';
export {
  CacheMode,
  ExtentType,
  Flag,
  FuaMode,
  PluginError,
  ThreadModel,
  type BlockSize,
  type ConnectionInfo,
  type ExportInfo,
  type ExtentSink,
  type Handle,
  type Plugin,
  type PluginFactory,
  type PluginHost,
} from './host/plugin.js';
