/**
 * random: `nbdkit-ts random 1G [seed=N]`, a disk of random bytes that are the same on every
 * read (nbdkit-random-plugin(1)). Writes succeed only if they write what is already there.
 *
 * Byte i of the disk is, as in nbdkit, the low 8 bits of the third xoshiro256** output after
 * seeding with seed + i, so the same seed gives the same disk as native nbdkit (computed in
 * WebAssembly: random-wasm.ts).
 */
import { CacheMode, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { parseUnsigned, unknownParameter } from './parse-number.js';
import { fillRandomBytes } from './random-wasm.js';

const createRandomPlugin: PluginFactory = (host) => {
  let size = 0n;
  // As nbdkit: without seed=, the time the plugin was loaded.
  let seed = Math.floor(Date.now() / 1000) >>> 0;
  return {
    name: 'random',
    longname: 'nbdkit random plugin',
    description: 'A disk of random bytes, the same for the same seed.',
    magic_config_key: 'size',
    config_help: 'size=<SIZE>  (required) Size of the backing disk\nseed=<SEED>             Random number generator seed',
    config(key, value) {
      if (key === 'seed') seed = Number(parseUnsigned('seed', value, 32));
      else if (key === 'size') size = host.parseSize(value);
      else throw unknownParameter(key);
    },
    thread_model: () => ThreadModel.PARALLEL,
    open: () => ({}),
    get_size: () => size,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.NATIVE,
    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread: (_h, buf, offset) => fillRandomBytes(buf, seed, offset),
    pwrite: (_h, buf, offset) => {
      const expected = new Uint8Array(buf.length);
      fillRandomBytes(expected, seed, offset);
      if (Buffer.compare(expected, buf) !== 0) throw new PluginError('data written does not match expected', 'EIO');
    },
    trim: () => {
      throw new PluginError('attempt to trim or zero non-sparse random disk', 'EIO');
    },
    zero: () => {
      throw new PluginError('attempt to trim or zero non-sparse random disk', 'EIO');
    },
  };
};

export default createRandomPlugin;
