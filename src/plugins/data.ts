/**
 * data: `nbdkit-ts data '0 1 2 3 @0x1fe 0x55 0xaa'` (or data=, raw=, base64=), a RAM disk whose
 * first contents are written on the command line (nbdkit-data-plugin(1)); the language is in
 * data-format.ts. Writes are kept in memory until the server exits, as with `memory`.
 *
 * The disk is the memory plugin's page store (sparse-pages.ts) with the page rules of the
 * allocator chosen: `sparse` (the default) and `zstd` as nbdkit's (zstd's pages are kept
 * uncompressed here), or `malloc`, whose extents report everything as data.
 */
import { CacheMode, ExtentType, FuaMode, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { decodeBase64Strict } from './base64.js';
import { evaluateData } from './data-format.js';
import { parseBool } from './parse-number.js';
import { SparsePages } from './sparse-pages.js';

type Source = { kind: 'data' | 'raw' | 'base64'; value: string };

/** The page store for allocator=TYPE[,key=value...], with nbdkit's checks of the parameters. */
function createStore(spec: string): { pages: SparsePages; allData: boolean } {
  const [type, ...params] = spec.split(',');
  const settings = params.map((param) => {
    const eq = param.indexOf('=');
    if (eq <= 0) throw new PluginError(`allocator: could not parse allocator parameters, expecting key=value: ${param}`, 'EINVAL');
    return [param.slice(0, eq), param.slice(eq + 1)] as const;
  });
  switch (type) {
    case 'sparse':
    case 'zstd':
      if (settings.length > 0) throw new PluginError(`allocator=${type} does not take extra parameters`, 'EINVAL');
      if (type === 'sparse') return { pages: new SparsePages(), allData: false };
      return { pages: new SparsePages({ freePartlyZeroedPages: false, freeZeroPagesAfterBlit: false }), allData: false };
    case 'malloc':
      for (const [key, value] of settings) {
        if (key !== 'mlock') throw new PluginError(`allocator=malloc: unknown parameter ${key}`, 'EINVAL');
        if (parseBool(value)) throw new PluginError('mlock is not supported on this platform', 'ENOTSUP');
      }
      return { pages: new SparsePages(), allData: true };
    default:
      throw new PluginError(`unknown allocator "${spec}"`, 'EINVAL');
  }
}

const createDataPlugin: PluginFactory = (host) => {
  let size: bigint | undefined;
  let allocator = 'sparse';
  let source: Source | undefined;
  /** key=value parameters the plugin does not know: $var looks them up. */
  const extra: Array<[string, string]> = [];
  let pages = new SparsePages();
  let allData = false;

  return {
    name: 'data',
    longname: 'nbdkit data plugin',
    description: 'A RAM disk whose first contents are given on the command line.',
    magic_config_key: 'data',
    config_help: 'data|raw|base64=...     Specify disk data on the command line\nsize=<SIZE>             Size of the backing disk',

    config(key, value) {
      if (key === 'size') size = host.parseSize(value);
      else if (key === 'allocator') allocator = value;
      else if (key === 'data' || key === 'raw' || key === 'base64') {
        if (source) throw new PluginError('raw|base64|data parameter must be specified exactly once', 'EINVAL');
        source = { kind: key, value };
      } else extra.push([key, value]);
    },
    // nbdkit builds the disk in get_ready; here it is done at the end of config_complete (nothing
    // runs in between without filters), whose errors are printed as nbdkit prints get_ready's.
    async config_complete() {
      if (!source) throw new PluginError('raw|base64|data parameter was not specified', 'EINVAL');
      if (source.kind !== 'data' && extra.length > 0) throw new PluginError("extra parameters passed and not using data='...'", 'EINVAL');
      ({ pages, allData } = createStore(allocator));
      let dataSize: bigint;
      switch (source!.kind) {
        case 'raw': {
          // The parameter's bytes as the C string nbdkit sees (the command line is bytes).
          const bytes = Buffer.from(source!.value, 'utf8');
          pages.write(bytes, 0n);
          dataSize = BigInt(bytes.length);
          break;
        }
        case 'base64': {
          const bytes = decodeBase64Strict(source!.value);
          pages.write(bytes, 0n);
          dataSize = BigInt(bytes.length);
          break;
        }
        default: {
          const lookup = (name: string): string | undefined => extra.find(([key]) => key === name)?.[1] ?? process.env[name];
          const printTree = host.debugFlag?.('data.AST') ? (line: string) => host.debug(line) : undefined;
          dataSize = await evaluateData(source!.value, pages, lookup, printTree);
        }
      }
      host.debug(`implicit data size: ${dataSize}`);
      if (size === undefined) size = dataSize;
      host.debug(`final size: ${size}`);
    },
    dump_plugin: () => ['data_base64=yes', 'mlock=no', 'zstd=yes'],
    thread_model: () => ThreadModel.PARALLEL,

    open: () => ({}),
    get_size: () => size!,
    can_fua: () => FuaMode.NATIVE,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.NATIVE,
    can_fast_zero: () => true,
    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread: (_h, buf, offset) => pages.read(buf, offset),
    pwrite: (_h, buf, offset) => pages.write(buf, offset),
    zero: (_h, count, offset) => pages.zero(count, offset),
    trim: (_h, count, offset) => pages.zero(count, offset),
    flush: () => undefined,
    extents(_h, count, offset, _flags, extents) {
      if (allData) extents.add(offset, BigInt(count), ExtentType.DATA);
      else pages.extents(count, offset, extents);
    },
  };
};

export default createDataPlugin;
