/**
 * Booting pyodide for a plugin: from the cached memory snapshot when there is one (a few hundred
 * milliseconds), otherwise cold (a few seconds), making the snapshot for next time.
 *
 * The snapshot holds the interpreter, a few standard modules and the glue (glue.ts); its file
 * name hashes all of them. After boot, the process-specific parts are added, none of which may
 * ever enter a snapshot: stdio routing, the host's directories, the host services the glue calls
 * back into, the real environment and working directory.
 */
import { delayWasmTierUp } from '../wasm-tiering.js';
import { existsSync, writeSync } from 'node:fs';
import { loadPyodide, version as pyodideVersion, type PyodideAPI } from 'pyodide';
import type { PyDict, PyProxy } from 'pyodide/ffi';
import { logDebug, logRaw, PROGRAM } from '../../host/log.js';
import { GLUE, GLUE_FILENAME, SNAPSHOT_PRELUDE } from './glue.js';
import { mountHostDirectories, syncHostDescriptor } from './host-fs.js';
import { COMPILED_EXTENSION_FINDER } from './import-paths.js';
import { SOCKET_LAYER } from './socket-layer.js';
import { SSL_LAYER } from './ssl-layer.js';
import { THREAD_LIMITS } from './thread-limits.js';
import { loadFromSnapshot } from './snapshot-boot.js';
import { discardSnapshot, snapshotPath, writeSnapshot } from './snapshot-cache.js';
import { encodeSnapshot, SnapshotFile } from './snapshot-format.js';

/**
 * The services the glue calls back into (`_host` in glue.ts). "Nothing" is undefined, which
 * Python sees as None (null would arrive as a JsNull).
 */
export interface HostModule {
  debug(message: string): void;
  export_name(): string | undefined;
  parse_size(text: string): string | undefined;
  shutdown(): void;
  /** `summary`: one line for the client's error reply (the method and the exception), if any. */
  fail(message: string, errno: string, summary?: string): void;
  /**
   * nbdkit's newer utility functions by name (script-api.ts), for the current callback's
   * connection. undefined (None) when the call failed: the reason has been printed.
   */
  api(name: string, ...args: unknown[]): string | number | boolean | undefined;
  sync_host_fd(fd: number, kind: string): string | undefined;
  /** Read from a descriptor into the request buffer; bytes read, or minus pyodide's errno. */
  read_into_request(fd: number, length: number, position: number): number;
  /** A network request as JSON (socket-layer.ts), with the bytes to send; the reply as JSON. */
  socket_call(request: string, data: PyProxy | undefined): string;
  /** The bytes the last socket_call received. */
  socket_data(): Uint8Array;
}

/**
 * Where Python's stderr goes: the process's stderr, except while pyodide reports a fatal error
 * (see fatal.ts), when the text is collected instead.
 */
export class StderrRoute {
  private sink: ((text: string) => void) | undefined;
  private readonly decoder = new TextDecoder();

  write(buffer: Uint8Array): number {
    if (this.sink) {
      this.sink(this.decoder.decode(buffer));
      return buffer.length;
    }
    return this.writeUndiverted(buffer);
  }

  /** Send everything to sink instead (pyodide's fatal-error report, see fatal.ts). */
  divert(sink: ((text: string) => void) | undefined): void {
    this.sink = sink;
  }

  protected writeUndiverted(buffer: Uint8Array): number {
    return writeToStderr(buffer);
  }
}

/**
 * Where Python's stdout goes: stderr too (under -s stdout is the socket), except while
 * dump_plugin output is being collected, or when diverted like stderr.
 */
export class StdoutRoute extends StderrRoute {
  private capture: Uint8Array[] | undefined;

  protected override writeUndiverted(buffer: Uint8Array): number {
    if (!this.capture) return writeToStderr(buffer);
    this.capture.push(buffer.slice());
    return buffer.length;
  }

  startCapture(): void {
    this.capture = [];
  }

  /** The text written since startCapture. */
  stopCapture(): string {
    const parts = this.capture ?? [];
    this.capture = undefined;
    return Buffer.concat(parts).toString('utf8');
  }
}

function writeToStderr(buffer: Uint8Array): number {
  try {
    let done = 0;
    while (done < buffer.length) done += writeSync(2, buffer, done, buffer.length - done);
  } catch {
    // stderr closed: the output has nowhere to go, and the plugin must not fail for it.
  }
  return buffer.length;
}

/**
 * Python modules of nbdkit-ts run into the snapshot after the glue, in this order, each as the
 * code of the module named: import paths, the network layers replacing `_socket` and `ssl`
 * (socket-layer.ts, ssl-layer.ts), the limits on threads.
 */
const LAYERS: [string, string][] = [
  ['_nbdkit_imports', COMPILED_EXTENSION_FINDER],
  ['_nbdkit_socket', SOCKET_LAYER],
  ['ssl', SSL_LAYER],
  ['_nbdkit_threads', THREAD_LIMITS],
];

/** All the Python source in a snapshot: its file name hashes this. */
const SNAPSHOT_SOURCE = SNAPSHOT_PRELUDE + GLUE + LAYERS.map(([name, source]) => name + source).join('');

/** The snapshot contents: the prelude's imports and the glue module, nothing of any script. */
function prepareInterpreter(pyodide: PyodideAPI): void {
  const builtins = pyodide.pyimport('builtins') as PyProxy & Builtins;
  const prelude = builtins.dict() as PyDict;
  builtins.exec(builtins.compile(SNAPSHOT_PRELUDE, '<nbdkit-ts prelude>', 'exec'), prelude);
  const module = pyodide.runPython(
    "import sys, types\nsys.modules['_nbdkit_glue'] = types.ModuleType('_nbdkit_glue')\nsys.modules['_nbdkit_glue'].__dict__",
    { globals: prelude },
  ) as PyDict;
  builtins.exec(builtins.compile(GLUE, GLUE_FILENAME, 'exec'), module);
  module.destroy();
  for (const [name, source] of LAYERS) {
    const namespace = pyodide.runPython(
      `import sys, types\nsys.modules['${name}'] = types.ModuleType('${name}')\nsys.modules['${name}'].__dict__`,
      { globals: prelude },
    ) as PyDict;
    builtins.exec(builtins.compile(source, `<nbdkit-ts ${name}>`, 'exec'), namespace);
    namespace.destroy();
  }
  prelude.destroy();
  builtins.destroy();
}

interface Builtins {
  dict(): PyDict;
  compile(source: string, filename: string, mode: string): PyProxy;
  exec(code: PyProxy, globals: PyDict): void;
}

/**
 * Python's stdin is always at end of file: under -s the real stdin is the NBD socket, and a
 * script reading it would steal the client's requests.
 */
const BASE_CONFIG = { stdin: (): null => null } as const;

async function bootFromSnapshot(path: string): Promise<PyodideAPI | undefined> {
  if (!existsSync(path)) return undefined;
  let file: SnapshotFile | undefined;
  try {
    file = SnapshotFile.open(path);
    const pyodide = await loadFromSnapshot(file, BASE_CONFIG);
    pyodide.runPython('1');
    return pyodide;
  } catch (error) {
    logDebug(`python: snapshot ${path} unusable (${error instanceof Error ? error.message : String(error)}), rebuilding`);
    discardSnapshot(path);
    return undefined;
  } finally {
    file?.close();
  }
}

async function bootCold(path: string): Promise<PyodideAPI> {
  logRaw(`${PROGRAM}: python: first start with pyodide ${pyodideVersion}: preparing the interpreter ` +
    `(a few seconds); later starts reuse ${path}`);
  const pyodide = await loadPyodide({ ...BASE_CONFIG, _makeSnapshot: true });
  prepareInterpreter(pyodide);
  const failure = writeSnapshot(path, encodeSnapshot(pyodide.makeMemorySnapshot()));
  if (failure) logDebug(`python: could not save the snapshot: ${failure}`);
  return pyodide;
}

/**
 * Python's WebAssembly tier-up budget (see ../wasm-tiering.ts). At about 11 times V8's default,
 * start-up CPU fell by a sixth and file-backed throughput did not change, while a script
 * computing in Python (a loop over every byte) kept its full speed; the budget Lua and Tcl use
 * matched it on start-up and I/O but left such a script 8-20% slower after seconds of work.
 */
const TIERING_BUDGET = 20_000_000;

/** Snapshots can be turned off (for debugging the adapter, or a read-only home). */
function snapshotsDisabled(): boolean {
  const value = process.env.NBDKIT_TS_PYTHON_SNAPSHOT;
  return value === '0' || value === 'no' || value === 'off';
}

/**
 * pyodide's loader leaves its WASM binary (about 10 MB) reachable from the module, through the
 * instantiation hook it installed; the module is compiled and instantiated by now.
 */
function releaseLoaderBuffers(pyodide: PyodideAPI): void {
  const module = (pyodide as unknown as { _module: { instantiateWasm?: unknown } })._module;
  delete module.instantiateWasm;
}

export interface PythonRuntime {
  pyodide: PyodideAPI;
  /** The glue module's namespace, where the dispatchers live. */
  glue: PyDict;
}

/** A booted interpreter with the glue bound to this process, ready to run a script. */
export async function startPython(host: HostModule, stdout: StdoutRoute, stderr: StderrRoute): Promise<PythonRuntime> {
  const started = performance.now();
  delayWasmTierUp(TIERING_BUDGET);
  const path = snapshotPath(pyodideVersion, SNAPSHOT_SOURCE);
  let pyodide: PyodideAPI | undefined;
  if (snapshotsDisabled()) {
    pyodide = await loadPyodide(BASE_CONFIG);
    prepareInterpreter(pyodide);
  } else {
    pyodide = (await bootFromSnapshot(path)) ?? (await bootCold(path));
  }
  releaseLoaderBuffers(pyodide);
  pyodide.setStdout({ write: (buffer: Uint8Array) => stdout.write(buffer), isatty: false });
  pyodide.setStderr({ write: (buffer: Uint8Array) => stderr.write(buffer), isatty: false });
  pyodide.FS.chdir('/');
  const skipped = mountHostDirectories(pyodide);
  if (skipped.length > 0) logDebug(`python: host directories not mounted: ${skipped.join(' ')}`);
  const module = pyodide.pyimport('_nbdkit_glue') as PyProxy & { __dict__: PyDict };
  // The namespace is borrowed from the module proxy, which therefore lives as long as the process.
  const glue = module.__dict__;
  (glue.get('_bind') as (host: HostModule) => void)(host);
  (glue.get('_adopt_process') as (env: string, cwd: string) => void)(JSON.stringify(process.env), process.cwd());
  logDebug(`python: pyodide ${pyodideVersion} ready in ${Math.round(performance.now() - started)} ms`);
  return { pyodide, glue };
}

export function syncDescriptor(pyodide: PyodideAPI, fd: number, kind: string): string | undefined {
  return syncHostDescriptor(pyodide, fd, kind);
}
