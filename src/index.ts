/**
 * nbdkit-ts as a library: start a server in-process (startServer) with a plugin object or any
 * plugin the command runs, or run the command itself with its arguments (main); the plugin
 * interface of JavaScript and TypeScript plugins, and nbdkit's constants.
 */
export { startServer, type Listen, type NbdServer, type StartOptions } from './embed.js';
export { main, type MainOptions } from './host/server.js';
export type { Awaitable, ExportEntry, Extent, Offset, Plugin } from './languages/js/types.js';
export { CacheMode, ExtentType, Flag, FuaMode, PluginError, ThreadModel, type ConnectionInfo } from './host/plugin.js';
