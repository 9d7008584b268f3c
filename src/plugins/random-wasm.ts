/**
 * The random plugins' byte generators as a small WebAssembly module, assembled here from the
 * instructions below (no toolchain needed). JavaScript has no 64-bit integers but BigInt, and
 * emulating the generators' 64-bit multiplications on 32-bit halves ran at a few MB/s, where
 * native nbdkit's random plugin serves a few hundred; WebAssembly's i64 instructions are the
 * machine's own, which brings the two level.
 *
 * Two exported functions write into the module's one page of memory (64 KiB at a time):
 *
 * - `perByte(start, ptr, len)`: the random plugin's disk (random.ts). Byte i is, as in nbdkit,
 *   the low 8 bits of the third xoshiro256** output after seeding with start + i through
 *   splitmix64. Two facts shorten that: after two xoshiro updates s1 = a0 ^ a3 ^ (a1 << 17) in
 *   terms of the seeded words a0..a3 (a2 drops out), and the third output is
 *   rotl(s1 * 5, 7) * 9. So a byte costs three splitmix64 mixes (of start+i plus 1, 2 and 4
 *   golden-ratio steps). The tests check it against the literal generator in xoshiro.ts.
 * - `stream(seed, ptr, len)`: the low 8 bits of `len` successive xoshiro256** outputs after
 *   seeding with `seed` (sparse-random.ts's random-content=true blocks).
 */

const GOLDEN = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;

// The few opcodes used (WebAssembly core specification, binary format).
const OP = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Store8: 0x3a,
  i32Const: 0x41,
  i64Const: 0x42,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i64Add: 0x7c,
  i64Mul: 0x7e,
  i64Xor: 0x85,
  i64Shl: 0x86,
  i64ShrU: 0x88,
  i64Rotl: 0x89,
  i32WrapI64: 0xa7,
} as const;
const I32 = 0x7f;
const I64 = 0x7e;

function unsignedLeb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function signedLeb(value: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = Number(value & 0x7fn);
    value >>= 7n;
    const done = (value === 0n && (byte & 0x40) === 0) || (value === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const i64 = (value: bigint): number[] => [OP.i64Const, ...signedLeb(BigInt.asIntN(64, value))];
const get = (local: number): number[] => [OP.localGet, local];
const set = (local: number): number[] => [OP.localSet, local];

/** splitmix64's finaliser of local `z`, using local `t`; leaves the result on the stack. */
function mix(z: number, t: number): number[] {
  return [
    ...get(z), ...get(z), ...i64(30n), OP.i64ShrU, OP.i64Xor, ...i64(MIX1), OP.i64Mul, ...set(t),
    ...get(t), ...get(t), ...i64(27n), OP.i64ShrU, OP.i64Xor, ...i64(MIX2), OP.i64Mul, ...set(t),
    ...get(t), ...get(t), ...i64(31n), OP.i64ShrU, OP.i64Xor,
  ];
}

/** ptr += 1, and loop while ptr < end (locals `ptr`, `end`); `body` comes first. */
function byteLoop(ptr: number, end: number, body: number[]): number[] {
  return [
    OP.block, 0x40, OP.loop, 0x40,
    ...get(ptr), ...get(end), OP.i32GeU, OP.brIf, 1,
    ...body,
    ...get(ptr), OP.i32Const, 1, OP.i32Add, ...set(ptr),
    OP.br, 0, OP.end, OP.end,
  ];
}

/** perByte(start i64, ptr i32, len i32). Locals: 3 end, 4 x1, 5 x2, 6 x4, 7 a0, 8 a1, 9 t. */
function perByteBody(): number[] {
  const [start, ptr, len, end, x1, x2, x4, a0, a1, t] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const bump = (x: number): number[] => [...get(x), ...i64(1n), OP.i64Add, ...set(x)];
  const code = [
    ...get(ptr), ...get(len), OP.i32Add, ...set(end),
    ...get(start), ...i64(GOLDEN), OP.i64Add, ...set(x1),
    ...get(start), ...i64(2n * GOLDEN), OP.i64Add, ...set(x2),
    ...get(start), ...i64(4n * GOLDEN), OP.i64Add, ...set(x4),
    ...byteLoop(ptr, end, [
      ...mix(x1, t), ...set(a0),
      ...mix(x2, t), ...set(a1),
      // s1 = a0 ^ a3 ^ (a1 << 17); byte = rotl(s1 * 5, 7) * 9
      ...get(ptr),
      ...mix(x4, t), ...get(a0), OP.i64Xor, ...get(a1), ...i64(17n), OP.i64Shl, OP.i64Xor,
      ...i64(5n), OP.i64Mul, ...i64(7n), OP.i64Rotl, ...i64(9n), OP.i64Mul,
      OP.i32WrapI64, OP.i32Store8, 0, 0,
      ...bump(x1), ...bump(x2), ...bump(x4),
    ]),
    OP.end,
  ];
  return [2, 1, I32, 6, I64, ...code];
}

/** stream(seed i64, ptr i32, len i32). Locals: 3 end, 4 x, 5 s0, 6 s1, 7 s2, 8 s3, 9 t. */
function streamBody(): number[] {
  const [seed, ptr, len, end, x, s0, s1, s2, s3, t] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const seedWord = (s: number): number[] => [...get(x), ...i64(GOLDEN), OP.i64Add, OP.localTee, x, ...set(t), ...mix(t, t), ...set(s)];
  const xorInto = (target: number, other: number): number[] => [...get(target), ...get(other), OP.i64Xor, ...set(target)];
  const code = [
    ...get(ptr), ...get(len), OP.i32Add, ...set(end),
    ...get(seed), ...set(x),
    ...seedWord(s0), ...seedWord(s1), ...seedWord(s2), ...seedWord(s3),
    ...byteLoop(ptr, end, [
      // *ptr = rotl(s1 * 5, 7) * 9
      ...get(ptr), ...get(s1), ...i64(5n), OP.i64Mul, ...i64(7n), OP.i64Rotl, ...i64(9n), OP.i64Mul,
      OP.i32WrapI64, OP.i32Store8, 0, 0,
      // t = s1 << 17; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 45)
      ...get(s1), ...i64(17n), OP.i64Shl, ...set(t),
      ...xorInto(s2, s0), ...xorInto(s3, s1), ...xorInto(s1, s2), ...xorInto(s0, s3), ...xorInto(s2, t),
      ...get(s3), ...i64(45n), OP.i64Rotl, ...set(s3),
    ]),
    OP.end,
  ];
  return [2, 1, I32, 6, I64, ...code];
}

function section(id: number, contents: number[]): number[] {
  return [id, ...unsignedLeb(contents.length), ...contents];
}

function name(text: string): number[] {
  return [text.length, ...Buffer.from(text, 'latin1')];
}

function assemble(): Uint8Array {
  const bodies = [perByteBody(), streamBody()];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 3, I64, I32, I32, 0]), // one type: (i64, i32, i32) -> ()
    ...section(3, [2, 0, 0]), // two functions of that type
    ...section(5, [1, 0x00, 1]), // one memory of one page
    ...section(7, [3, ...name('perByte'), 0x00, 0, ...name('stream'), 0x00, 1, ...name('memory'), 0x02, 0]),
    ...section(10, [2, ...bodies.flatMap((body) => [...unsignedLeb(body.length), ...body])]),
  ]);
}

interface RandomExports {
  perByte(start: bigint, ptr: number, len: number): void;
  stream(seed: bigint, ptr: number, len: number): void;
  memory: { readonly buffer: ArrayBuffer };
}

/** The part of the WebAssembly API used (the project's TypeScript libraries do not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

const CHUNK = 65536;
let instance: RandomExports | undefined;

function exports(): RandomExports {
  instance ??= new wasmApi.Instance(new wasmApi.Module(assemble())).exports as RandomExports;
  return instance;
}

/** Fill buf with the random plugin's disk for `seed`, from offset. */
export function fillRandomBytes(buf: Uint8Array, seed: number, offset: bigint): void {
  const wasm = exports();
  const start = BigInt(seed) + offset;
  for (let done = 0; done < buf.length; done += CHUNK) {
    const n = Math.min(CHUNK, buf.length - done);
    // An i64 argument is taken modulo 2^64, as nbdkit's uint64_t arithmetic wraps.
    wasm.perByte(BigInt.asIntN(64, start + BigInt(done)), 0, n);
    buf.set(new Uint8Array(wasm.memory.buffer, 0, n), done);
  }
}

/** Fill buf (at most 64 KiB) with the low bytes of successive xoshiro256** outputs after seeding with `seed`. */
export function fillXoshiroStream(buf: Uint8Array, seed: bigint): void {
  if (buf.length > CHUNK) throw new RangeError('fillXoshiroStream: at most 64 KiB at a time');
  const wasm = exports();
  wasm.stream(BigInt.asIntN(64, seed), 0, buf.length);
  buf.set(new Uint8Array(wasm.memory.buffer, 0, buf.length));
}
