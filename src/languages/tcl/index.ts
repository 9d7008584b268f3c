/**
 * The `tcl` plugin: nbdkit Tcl plugin scripts on Tcl 8.6 compiled to WebAssembly
 * (runtimes/wasm-tcl). `nbdkit-ts tcl plugin.tcl [key=value ...]`.
 */
import type { PluginFactory } from '../../host/plugin.js';
import { TclAdapter } from './adapter.js';

const factory: PluginFactory = (host) => new TclAdapter(host).plugin;
export default factory;
