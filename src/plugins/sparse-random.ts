/**
 * sparse-random: `nbdkit-ts sparse-random 1G [seed=N] [percent=P] [runlength=N]
 * [random-content=BOOL]`, a sparse disk of runs of data blocks between holes, like a virtual
 * machine's disk, for testing copying tools (nbdkit-sparse-random-plugin(1)). Writes succeed
 * only if they write what is already there; zero and trim only where there are holes.
 *
 * The layout is a walk over 4 KiB blocks that flips between data and hole with the
 * probabilities that give the wanted percentage and mean run length, drawing one xoshiro256**
 * number per block, exactly as nbdkit does, so the same seed gives the same disk as native.
 */
import { CacheMode, ExtentType, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { parseBool, parseUnsigned, unknownParameter } from './parse-number.js';
import { fillXoshiroStream } from './random-wasm.js';
import { Xoshiro256 } from './xoshiro.js';

const BLOCK_SIZE = 4096;
/** The largest disk whose block map is kept (one bit per block, like nbdkit's bitmap). */
const MAX_BLOCKS = 2 ** 40;

/** strtod's prefix of a string as sscanf("%lf") reads it (no hex floats, inf or nan). */
function scanDouble(text: string): number | undefined {
  const match = /^[ \t\n\v\f\r]*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** One bit per block: set where the block holds data. */
export class BlockMap {
  readonly bits: Uint8Array;
  constructor(readonly blocks: number) {
    this.bits = new Uint8Array(Math.ceil(blocks / 8));
  }
  isData(block: number): boolean {
    return block < this.blocks && (this.bits[block >>> 3] & (1 << (block & 7))) !== 0;
  }
  set(block: number): void {
    this.bits[block >>> 3] |= 1 << (block & 7);
  }
}

/** nbdkit's layout walk for these parameters. */
export function makeLayout(size: bigint, seed: number, percent: number, runlength: bigint): BlockMap {
  const blocks = Number((size + BigInt(BLOCK_SIZE) - 1n) / BigInt(BLOCK_SIZE));
  const map = new BlockMap(blocks);
  if (percent === 0) return map;
  if (percent === 100) {
    map.bits.fill(0xff);
    return map;
  }
  const pDataToHole = 1 / (Number(runlength) / BLOCK_SIZE);
  const pHoleToData = ((percent / 100) * pDataToHole) / (1 - percent / 100);
  // (double) UINT64_MAX is 2^64.
  const limitData = pDataToHole * 18446744073709551616;
  const limitHole = pHoleToData * 18446744073709551616;
  const rng = new Xoshiro256(BigInt(seed));
  let data = false;
  for (let block = 0; block < blocks; block++) {
    if (data) map.set(block);
    rng.next();
    if (rng.asDouble <= (data ? limitData : limitHole)) data = !data;
  }
  return map;
}

const createSparseRandomPlugin: PluginFactory = (host) => {
  let size = 0n;
  let seed = Math.floor(Date.now() / 1000) >>> 0;
  let percent = 10;
  let runlength = 16n * 1024n * 1024n;
  let randomContent = false;
  let map = new BlockMap(0);

  /** One whole block's bytes; `offset` seeds it (nbdkit seeds an unaligned first block from the request's offset). */
  const readBlock = (block: number, offset: bigint, out: Uint8Array): void => {
    if (!map.isData(block)) {
      out.fill(0);
      return;
    }
    if (!randomContent) {
      const byte = new Xoshiro256(BigInt(seed) + offset).next() & 0xff;
      out.fill(byte === 0 ? 1 : byte);
      return;
    }
    fillXoshiroStream(out, BigInt(seed) + offset);
  };

  /** Visit [offset, offset+count) block by block as nbdkit does: head, whole blocks, tail. */
  const eachBlock = (
    count: number,
    offset: bigint,
    visit: (block: number, blockOffset: number, length: number, position: bigint, done: number) => void,
  ): void => {
    let block = Number(offset / BigInt(BLOCK_SIZE));
    let inBlock = Number(offset % BigInt(BLOCK_SIZE));
    let done = 0;
    while (done < count) {
      const n = Math.min(BLOCK_SIZE - inBlock, count - done);
      visit(block, inBlock, n, offset + BigInt(done), done);
      done += n;
      block++;
      inBlock = 0;
    }
  };

  return {
    name: 'sparse-random',
    longname: 'nbdkit sparse-random plugin',
    description: 'A sparse disk of random data runs and holes, the same for the same seed.',
    magic_config_key: 'size',
    config_help: [
      'size=<SIZE>  (required) Size of the backing disk',
      'seed=<SEED>             Random number generator seed',
      'percent=<PERCENT>       Percentage of data',
      'runlength=<BYTES>       Expected average run length of data',
      'random-content=true     Fully random content in each block',
    ].join('\n'),
    config(key, value) {
      switch (key) {
        case 'seed':
          seed = Number(parseUnsigned('seed', value, 32));
          break;
        case 'size':
          size = host.parseSize(value);
          break;
        case 'percent': {
          const p = scanDouble(value);
          if (p === undefined || p < 0 || p > 100) throw new PluginError(`cannot parse percent parameter: ${value}`, 'EINVAL');
          percent = p;
          break;
        }
        case 'runlength':
          runlength = parseUnsigned('runlength', value, 64);
          if (runlength <= 0n) throw new PluginError('runlength parameter must be > 0', 'EINVAL');
          break;
        case 'random-content':
          randomContent = parseBool(value);
          break;
        default:
          throw unknownParameter(key);
      }
    },
    get_ready() {
      if ((size + BigInt(BLOCK_SIZE) - 1n) / BigInt(BLOCK_SIZE) > BigInt(MAX_BLOCKS)) {
        throw new PluginError(`sparse-random: size ${size} is too large (at most ${MAX_BLOCKS * BLOCK_SIZE} bytes)`, 'ENOMEM');
      }
      map = makeLayout(size, seed, percent, runlength);
    },
    thread_model: () => ThreadModel.PARALLEL,
    open: () => ({}),
    get_size: () => size,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.NATIVE,

    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread(_h, buf, offset) {
      const scratch = new Uint8Array(BLOCK_SIZE);
      eachBlock(buf.length, offset, (block, inBlock, n, position, done) => {
        if (n === BLOCK_SIZE) readBlock(block, position, buf.subarray(done, done + n));
        else {
          readBlock(block, position, scratch);
          buf.set(scratch.subarray(inBlock, inBlock + n), done);
        }
      });
    },
    pwrite(_h, buf, offset) {
      const scratch = new Uint8Array(BLOCK_SIZE);
      eachBlock(buf.length, offset, (block, inBlock, n, position, done) => {
        readBlock(block, position, scratch);
        if (Buffer.compare(scratch.subarray(inBlock, inBlock + n), buf.subarray(done, done + n)) !== 0) {
          throw new PluginError('data written does not match expected', 'EIO');
        }
      });
    },
    flush: () => undefined,
    trim: (_h, count, offset) => holesOnly(count, offset),
    zero: (_h, count, offset) => holesOnly(count, offset),
    extents(_h, count, offset, _flags, extents) {
      eachBlock(count, offset, (block, _inBlock, n, position) => {
        extents.add(position, BigInt(n), map.isData(block) ? ExtentType.DATA : ExtentType.HOLE | ExtentType.ZERO);
      });
    },
  };

  function holesOnly(count: number, offset: bigint): void {
    eachBlock(count, offset, (block) => {
      if (map.isData(block)) throw new PluginError('trying to trim or zero non-hole in disk', 'EIO');
    });
  }
};

export default createSparseRandomPlugin;
