/**
 * Parsing what scripts print on stdout, in the formats of nbdkit-sh-plugin(3): thread model
 * names, fua/cache modes, export lists, block sizes and extents; and the flags string the
 * data methods receive.
 */
import { CacheMode, ExtentType, Flag, FuaMode, PluginError, ThreadModel } from '../../host/plugin.js';
import type { BlockSize, ExportInfo } from '../../host/plugin.js';

/** Output with one trailing newline removed, as nbdkit does for single-value answers. */
export function chomp(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

const THREAD_MODELS: Readonly<Record<string, ThreadModel>> = {
  parallel: ThreadModel.PARALLEL,
  serialize_requests: ThreadModel.SERIALIZE_REQUESTS,
  'serialize-requests': ThreadModel.SERIALIZE_REQUESTS,
  serialize_all_requests: ThreadModel.SERIALIZE_ALL_REQUESTS,
  'serialize-all-requests': ThreadModel.SERIALIZE_ALL_REQUESTS,
  serialize_connections: ThreadModel.SERIALIZE_CONNECTIONS,
  'serialize-connections': ThreadModel.SERIALIZE_CONNECTIONS,
};

/** A thread model name, or undefined when unrecognised (the caller falls back to the safe one). */
export function parseThreadModel(text: string): ThreadModel | undefined {
  const key = chomp(text).toLowerCase();
  return Object.prototype.hasOwnProperty.call(THREAD_MODELS, key) ? THREAD_MODELS[key] : undefined;
}

/** "none", "emulate" or "native" (any case): the shared values of FuaMode and CacheMode. */
export function parseTriState(text: string): FuaMode | CacheMode | undefined {
  switch (chomp(text).toLowerCase()) {
    case 'none':
      return FuaMode.NONE;
    case 'emulate':
      return FuaMode.EMULATE;
    case 'native':
      return FuaMode.NATIVE;
    default:
      return undefined;
  }
}

/** Lines of output; a final line without a newline still counts, a trailing newline adds none. */
function lines(text: string): string[] {
  if (text === '') return [];
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all;
}

const EXPORT_MODES = ['NAMES', 'INTERLEAVED', 'NAMES+DESCRIPTIONS'] as const;

/** Split off the format line of list_exports/default_export output, if there is one. */
function exportMode(text: string): { mode: (typeof EXPORT_MODES)[number]; body: string } {
  for (const mode of EXPORT_MODES) {
    if (text.startsWith(mode + '\n')) return { mode, body: text.slice(mode.length + 1) };
  }
  return { mode: 'NAMES', body: text };
}

/** list_exports output: NAMES (the default), INTERLEAVED or NAMES+DESCRIPTIONS. */
export function parseExports(text: string): ExportInfo[] {
  const { mode, body } = exportMode(text);
  const rows = lines(body);
  switch (mode) {
    case 'NAMES':
      return rows.map((name) => ({ name }));
    case 'INTERLEAVED': {
      const result: ExportInfo[] = [];
      for (let i = 0; i < rows.length; i += 2) result.push({ name: rows[i], description: rows[i + 1] ?? '' });
      return result;
    }
    case 'NAMES+DESCRIPTIONS': {
      const count = Math.ceil(rows.length / 2);
      const result: ExportInfo[] = [];
      for (let i = 0; i < count; i++) result.push({ name: rows[i], description: rows[count + i] ?? '' });
      return result;
    }
  }
}

/** default_export output: the first name of any list form, or "" for an empty list. */
export function parseDefaultExport(text: string): string {
  const { body } = exportMode(text);
  const newline = body.indexOf('\n');
  return newline < 0 ? body : body.slice(0, newline);
}

const UINT32_MAX = 0xffffffffn;

/** block_size output: three sizes (minimum preferred maximum) separated by whitespace. */
export function parseBlockSize(text: string, parseSize: (s: string) => bigint): BlockSize | undefined {
  const words = text.split(/[ \t\n]+/).filter((w) => w !== '');
  if (words.length < 3) return undefined;
  const values: number[] = [];
  for (const word of words.slice(0, 3)) {
    let value: bigint;
    try {
      value = parseSize(word);
    } catch {
      return undefined;
    }
    if (value < 0n || value > UINT32_MAX) return undefined;
    values.push(Number(value));
  }
  return { minimum: values[0], preferred: values[1], maximum: values[2] };
}

export interface ParsedExtent {
  readonly offset: bigint;
  readonly length: bigint;
  readonly type: number;
}

/**
 * extents output: one "offset length [type]" per line, where type is a number, absent (data),
 * or words containing "hole" and/or "zero". Throws PluginError naming the bad line.
 */
export function parseExtents(text: string, parseSize: (s: string) => bigint): ParsedExtent[] {
  const result: ParsedExtent[] = [];
  for (const line of lines(text)) {
    const words = line.split(/[ \t]+/).filter((w) => w !== '');
    if (words.length === 0) continue;
    if (words.length < 2) throw new PluginError(`extents: cannot parse ${line}`, 'EIO');
    let offset: bigint;
    let length: bigint;
    try {
      offset = parseSize(words[0]);
      length = parseSize(words[1]);
    } catch (err) {
      throw new PluginError(`extents: cannot parse ${line}: ${(err as Error).message}`, 'EIO');
    }
    let type = 0;
    const word = words[2];
    if (word !== undefined) {
      const numeric = /^\d+/.exec(word);
      if (numeric) {
        type = Number(numeric[0]) >>> 0;
      } else {
        if (word.includes('hole')) type |= ExtentType.HOLE;
        if (word.includes('zero')) type |= ExtentType.ZERO;
      }
    }
    result.push({ offset, length, type });
  }
  return result;
}

/** NBDKIT_FLAG_* bits as the comma-separated words scripts receive, in nbdkit's order. */
export function flagsString(flags: number): string {
  const words: string[] = [];
  if (flags & Flag.FUA) words.push('fua');
  if (flags & Flag.MAY_TRIM) words.push('may_trim');
  if (flags & Flag.REQ_ONE) words.push('req_one');
  if (flags & Flag.FAST_ZERO) words.push('fast');
  return words.join(',');
}
