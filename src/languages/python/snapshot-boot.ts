/**
 * Booting pyodide from a sparse snapshot file (snapshot-format.ts), through two of loadPyodide's
 * internal options: `_loadSnapshot` (the snapshot) and `createPyodideModule` (the factory of the
 * emscripten module, which pyodide otherwise imports itself).
 *
 * pyodide sizes the WASM memory from the snapshot's length and then copies the snapshot into it
 * (API.restoreSnapshot). Here it is handed only the snapshot's header, the memory size is set in
 * the factory, and the restore step is wrapped: pyodide checks the header (magic, build id) and
 * copies nothing, then the file's runs are read straight into the memory.
 */
import { loadPyodide, type PyodideAPI } from 'pyodide';
import type { SnapshotFile } from './snapshot-format.js';

type LoadOptions = NonNullable<Parameters<typeof loadPyodide>[0]>;
/** The emscripten module's factory, the default export of pyodide.asm.mjs (typed by pyodide). */
type ModuleFactory = NonNullable<LoadOptions['createPyodideModule']>;
type Settings = Parameters<ModuleFactory>[0];
type PyodideModule = Awaited<ReturnType<ModuleFactory>>;

// A specifier in a variable: that file has no declarations of its own.
const FACTORY_MODULE: string = 'pyodide/pyodide.asm.mjs';

async function pyodideFactory(): Promise<ModuleFactory> {
  const module = (await import(FACTORY_MODULE)) as { default: ModuleFactory };
  return module.default;
}

/** loadPyodide with the interpreter's memory restored from file. */
export async function loadFromSnapshot(file: SnapshotFile, options: LoadOptions): Promise<PyodideAPI> {
  let restored = false;
  const createPyodideModule = async (settings: Settings): Promise<PyodideModule> => {
    // pyodide set this from the length of what it was given (the header alone).
    settings.INITIAL_MEMORY = file.snapshotLength;
    const module = await (await pyodideFactory())(settings);
    const api = module.API;
    const restoreHeader = api.restoreSnapshot;
    api.restoreSnapshot = (header) => {
      const info = restoreHeader.call(api, header);
      file.restoreInto(module.HEAPU8);
      restored = true;
      return info;
    };
    return module;
  };
  const pyodide = await loadPyodide({ ...options, _loadSnapshot: file.header, createPyodideModule });
  // A pyodide that ignored the factory would run on an empty memory: refuse it.
  if (!restored) throw new Error('this pyodide did not restore through nbdkit-ts');
  return pyodide;
}
