/**
 * Reading the results of the optional callbacks (thread models, FUA/cache modes, extents,
 * block sizes, export lists) from Tcl values. Names are accepted wherever nbdkit has a constant,
 * so a script can return `parallel` or `native` as readably as the number.
 */
import type { TclInterp, TclObj } from '#wasm-tcl';
import {
  type BlockSize,
  type CacheMode,
  type ExportInfo,
  ExtentType,
  type FuaMode,
  PluginError,
  ThreadModel,
} from '../../host/plugin.js';

const THREAD_MODELS: Readonly<Record<string, ThreadModel>> = {
  serialize_connections: ThreadModel.SERIALIZE_CONNECTIONS,
  serialize_all_requests: ThreadModel.SERIALIZE_ALL_REQUESTS,
  serialize_requests: ThreadModel.SERIALIZE_REQUESTS,
  parallel: ThreadModel.PARALLEL,
};

const MODES: Readonly<Record<string, 0 | 1 | 2>> = { none: 0, emulate: 1, native: 2 };

function invalid(what: string, text: string): PluginError {
  return new PluginError(`${what} returned an invalid value (${text})`, 'EINVAL');
}

/** thread_model: a name (parallel, serialize_requests, ...) or nbdkit's number. */
export function threadModelOf(text: string): ThreadModel {
  const word = text.trim().toLowerCase();
  if (word in THREAD_MODELS) return THREAD_MODELS[word];
  if (/^[0-3]$/.test(word)) return Number(word) as ThreadModel;
  throw invalid('thread_model', text);
}

/** can_fua / can_cache: none, emulate, native, or 0, 1, 2. */
export function modeOf(what: 'can_fua', text: string): FuaMode;
export function modeOf(what: 'can_cache', text: string): CacheMode;
export function modeOf(what: string, text: string): FuaMode | CacheMode {
  const word = text.trim().toLowerCase();
  if (word in MODES) return MODES[word];
  if (/^[0-2]$/.test(word)) return Number(word) as 0 | 1 | 2;
  throw invalid(what, text);
}

/** An extent type: a number (NBDKIT_EXTENT_* bits), or the words data, hole, zero. */
function extentTypeOf(interp: TclInterp, obj: TclObj): number {
  const text = interp.objString(obj).trim().toLowerCase();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n <= 3) return n;
  }
  let type = 0;
  for (const word of text.split(/[\s,|]+/)) {
    if (word === 'hole') type |= ExtentType.HOLE;
    else if (word === 'zero') type |= ExtentType.ZERO;
    else if (word !== 'data' && word !== '') throw invalid('extents', text);
  }
  return type;
}

export interface Extent {
  offset: bigint;
  length: bigint;
  type: number;
}

/**
 * extents: a list of {offset length type} triples, or the same values as one flat list
 * (offset length type offset length type ...).
 */
export function extentsOf(interp: TclInterp, list: TclObj): Extent[] {
  const elements = interp.listElements(list);
  if (elements.length === 0) return [];
  const nested = interp.listElements(elements[0]).length === 3;
  const triples: TclObj[][] = [];
  if (nested) {
    for (const e of elements) {
      const triple = interp.listElements(e);
      if (triple.length !== 3) throw invalid('extents', interp.objString(e));
      triples.push(triple);
    }
  } else {
    if (elements.length % 3 !== 0) throw invalid('extents', interp.objString(list));
    for (let i = 0; i < elements.length; i += 3) triples.push(elements.slice(i, i + 3));
  }
  return triples.map(([offset, length, type]) => ({
    offset: interp.objWide(offset),
    length: interp.objWide(length),
    type: extentTypeOf(interp, type),
  }));
}

/** block_size: {minimum preferred maximum}. */
export function blockSizeOf(interp: TclInterp, list: TclObj): BlockSize {
  const elements = interp.listElements(list);
  if (elements.length !== 3) throw invalid('block_size', interp.objString(list));
  const [minimum, preferred, maximum] = elements.map((e) => Number(interp.objWide(e)));
  return { minimum, preferred, maximum };
}

/** list_exports: a list whose elements are a name, or {name description}. */
export function exportsOf(interp: TclInterp, list: TclObj): ExportInfo[] {
  return interp.listElements(list).map((e) => {
    const parts = interp.listElements(e);
    if (parts.length === 2) {
      return { name: interp.objString(parts[0]), description: interp.objString(parts[1]) };
    }
    return { name: interp.objString(e) };
  });
}
