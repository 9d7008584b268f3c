/**
 * pattern: `nbdkit-ts pattern 1G`, a read-only disk where each 8-byte aligned word holds its own
 * offset, big-endian (nbdkit-pattern-plugin(1)). Handy to see where a client read from.
 */
import { CacheMode, type PluginFactory, ThreadModel } from '../host/plugin.js';
import { unknownParameter } from './parse-number.js';

/** Fill buf with the pattern as it is at offset (any offset up to 2^63). */
export function fillPattern(buf: Uint8Array, offset: bigint): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let word = offset & ~7n;
  let skip = Number(offset & 7n);
  // The first word may be cut short at the front; build it in a scratch word.
  let done = 0;
  if (skip !== 0 || buf.length < 8) {
    const scratch = new DataView(new ArrayBuffer(8));
    scratch.setBigUint64(0, word);
    const n = Math.min(8 - skip, buf.length);
    buf.set(new Uint8Array(scratch.buffer, skip, n), 0);
    done = n;
    word += 8n;
    skip = 0;
  }
  // Whole words: the offset as two 32-bit halves, carried by hand.
  let hi = Number(word >> 32n);
  let lo = Number(word & 0xffffffffn);
  for (; done + 8 <= buf.length; done += 8) {
    view.setUint32(done, hi);
    view.setUint32(done + 4, lo);
    lo += 8;
    if (lo > 0xffffffff) {
      lo -= 0x100000000;
      hi++;
    }
  }
  if (done < buf.length) {
    const scratch = new DataView(new ArrayBuffer(8));
    scratch.setUint32(0, hi);
    scratch.setUint32(4, lo);
    buf.set(new Uint8Array(scratch.buffer, 0, buf.length - done), done);
  }
}

const createPatternPlugin: PluginFactory = (host) => {
  let size = 0n;
  return {
    name: 'pattern',
    longname: 'nbdkit pattern plugin',
    description: 'A read-only disk where each 8-byte word holds its own offset (big-endian).',
    magic_config_key: 'size',
    config_help: 'size=<SIZE>  (required) Size of the backing disk',
    config(key, value) {
      if (key === 'size') size = host.parseSize(value);
      else throw unknownParameter(key);
    },
    thread_model: () => ThreadModel.PARALLEL,
    open: () => ({}),
    get_size: () => size,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.NATIVE,
    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread: (_h, buf, offset) => fillPattern(buf, offset),
  };
};

export default createPatternPlugin;
