/**
 * The pseudo-random generator nbdkit's random, sparse-random and partitioning plugins use:
 * xoshiro256** seeded through splitmix64 (the public-domain generators of Blackman and Vigna).
 * Those plugins derive their disks from it, so `random seed=N` only serves the same bytes as
 * native nbdkit if every bit of it is the same.
 *
 * 64-bit words are kept as pairs of unsigned 32-bit numbers: BigInt arithmetic is two orders of
 * magnitude slower, and the random plugin runs this seven times per byte it serves.
 */

/** High and low halves of the last 64-bit result of mul64/snext (to avoid allocating pairs). */
let outHi = 0;
let outLo = 0;

/** (ah:al) * (bh:bl) mod 2^64, into outHi:outLo. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  // The high half of al*bl, plus the cross terms that land in the high word.
  const carry = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  outLo = Math.imul(al, bl) >>> 0;
  outHi = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** A 64-bit seed as it advances through splitmix64. */
interface SplitMix {
  hi: number;
  lo: number;
}

/** One splitmix64 step: advance the seed and return the mixed value in outHi:outLo. */
function snext(seed: SplitMix): void {
  // seed += 0x9e3779b97f4a7c15
  const lo = seed.lo + 0x7f4a7c15;
  seed.hi = (seed.hi + 0x9e3779b9 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  seed.lo = lo >>> 0;
  let hi = seed.hi;
  let low = seed.lo;
  // z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
  mul64(hi ^ (hi >>> 30), (low ^ ((low >>> 30) | (hi << 2))) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  hi = outHi;
  low = outLo;
  // z = (z ^ (z >> 27)) * 0x94d049bb133111eb
  mul64(hi ^ (hi >>> 27), (low ^ ((low >>> 27) | (hi << 5))) >>> 0, 0x94d049bb, 0x133111eb);
  hi = outHi;
  low = outLo;
  // z ^ (z >> 31)
  outHi = (hi ^ (hi >>> 31)) >>> 0;
  outLo = (low ^ ((low >>> 31) | (hi << 1))) >>> 0;
}

/** xoshiro256** state, four 64-bit words as eight 32-bit halves. */
export class Xoshiro256 {
  private s0h = 0;
  private s0l = 0;
  private s1h = 0;
  private s1l = 0;
  private s2h = 0;
  private s2l = 0;
  private s3h = 0;
  private s3l = 0;
  /** The high and low halves of the last next() result. */
  hi = 0;
  lo = 0;

  constructor(seed: bigint = 0n) {
    this.seed(seed);
  }

  /** Seed from a 64-bit value (taken modulo 2^64), as nbdkit's xsrandom. */
  seed(seed: bigint): void {
    const value = BigInt.asUintN(64, seed);
    this.seedHalves(Number(value >> 32n), Number(value & 0xffffffffn));
  }

  /** Seed from the halves of a 64-bit value (no BigInt on the random plugin's path). */
  seedHalves(hi: number, lo: number): void {
    const sm: SplitMix = { hi: hi >>> 0, lo: lo >>> 0 };
    snext(sm);
    this.s0h = outHi;
    this.s0l = outLo;
    snext(sm);
    this.s1h = outHi;
    this.s1l = outLo;
    snext(sm);
    this.s2h = outHi;
    this.s2l = outLo;
    snext(sm);
    this.s3h = outHi;
    this.s3l = outLo;
  }

  /** Advance; the 64-bit result is left in this.hi:this.lo. Returns its low 32 bits. */
  next(): number {
    // result = rotl(s1 * 5, 7) * 9
    mul64(this.s1h, this.s1l, 0, 5);
    const rh = ((outHi << 7) | (outLo >>> 25)) >>> 0;
    const rl = ((outLo << 7) | (outHi >>> 25)) >>> 0;
    mul64(rh, rl, 0, 9);
    this.hi = outHi;
    this.lo = outLo;
    // t = s1 << 17
    const th = ((this.s1h << 17) | (this.s1l >>> 15)) >>> 0;
    const tl = (this.s1l << 17) >>> 0;
    this.s2h = (this.s2h ^ this.s0h) >>> 0;
    this.s2l = (this.s2l ^ this.s0l) >>> 0;
    this.s3h = (this.s3h ^ this.s1h) >>> 0;
    this.s3l = (this.s3l ^ this.s1l) >>> 0;
    this.s1h = (this.s1h ^ this.s2h) >>> 0;
    this.s1l = (this.s1l ^ this.s2l) >>> 0;
    this.s0h = (this.s0h ^ this.s3h) >>> 0;
    this.s0l = (this.s0l ^ this.s3l) >>> 0;
    this.s2h = (this.s2h ^ th) >>> 0;
    this.s2l = (this.s2l ^ tl) >>> 0;
    // s3 = rotl(s3, 45): swap the halves (32), then rotate by 13.
    const h = this.s3l;
    const l = this.s3h;
    this.s3h = ((h << 13) | (l >>> 19)) >>> 0;
    this.s3l = ((l << 13) | (h >>> 19)) >>> 0;
    return this.lo;
  }

  /** The last result as a double, rounded as C converts a uint64_t. */
  get asDouble(): number {
    return this.hi * 4294967296 + this.lo;
  }

  /** The last result as a bigint (for tests). */
  get asBigInt(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

/**
 * The random plugin's bytes computed literally, as nbdkit does: for byte i, seed with
 * seed + offset + i and keep the low 8 bits of the third output. Slow (fourteen 64-bit
 * multiplications a byte): the plugin uses random-wasm.ts, and tests check it against this.
 */
export function literalRandomBytes(buf: Uint8Array, seed: number, offset: bigint): void {
  const rng = new Xoshiro256();
  const start = BigInt.asUintN(64, BigInt(seed) + offset);
  let hi = Number(start >> 32n);
  let lo = Number(start & 0xffffffffn);
  for (let i = 0; i < buf.length; i++) {
    rng.seedHalves(hi, lo);
    rng.next();
    rng.next();
    buf[i] = rng.next() & 0xff;
    if (++lo > 0xffffffff) {
      lo = 0;
      hi = (hi + 1) >>> 0;
    }
  }
}
