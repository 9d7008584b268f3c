/**
 * The everyday built-in plugins (data, pattern, zero, full, random, sparse-random, info, split,
 * partitioning) against native nbdkit 1.32.5: the same command line under both servers, the
 * same description of the disk from a Python libnbd client (size, capabilities, a hash of the
 * content, the allocation map, and the results of writes where a case makes some), or the same
 * start-up error.
 */
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { literalRandomBytes } from '../src/plugins/xoshiro.js';
import { fillRandomBytes, fillXoshiroStream } from '../src/plugins/random-wasm.js';
import { Xoshiro256 } from '../src/plugins/xoshiro.js';
import { CLIENT_ENV, ROOT, run, runNbdkitTs } from './helpers/server.js';
import { seededRandom } from './helpers/random.js';

const PROBE = join(ROOT, 'test', 'helpers', 'probe-disk.py');
const work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-builtins-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Files for <FILE, split and partitioning, the same bytes on every run. */
function makeFile(name: string, length: number, seed: number, holeAt?: number): string {
  const random = seededRandom(seed);
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = random(256);
  const path = join(work, name);
  writeFileSync(path, holeAt === undefined ? bytes : bytes.subarray(0, Math.min(length, 4096)));
  if (holeAt !== undefined) {
    // A sparse file: data at the start and at holeAt, a hole between.
    truncateSync(path, length);
    const fd = openSync(path, 'r+');
    writeSync(fd, bytes.subarray(0, 4096), 0, 4096, holeAt);
    closeSync(fd);
  }
  return path;
}

const f1 = makeFile('f1', 10000, 1);
const f2 = makeFile('f2', 2 * 1024 * 1024 + 3, 2);
const f3 = makeFile('f3', 513, 3);
const sparse = makeFile('sparse', 1024 * 1024, 4, 600 * 1024);
const empty = makeFile('empty', 0, 5);
const parts = Array.from({ length: 6 }, (_, i) => makeFile(`p${i}`, 700 + 300 * i, 10 + i));

interface Case {
  name: string;
  args: string[];
  /** Python expressions run on the connection first (see probe-disk.py), ';'-separated. */
  ops?: string;
  maskGpt?: boolean;
  /** Leave the content out of the comparison (it changes from read to read). */
  noContent?: boolean;
  env?: Record<string, string>;
}

/** Run the probe under both servers; returns [ours, native] with what may differ removed. */
async function probeBoth(c: Case): Promise<[string, string]> {
  const env = { ...CLIENT_ENV, ...c.env, PROBE_OPS: c.ops ?? '', PROBE_MASK_GPT: c.maskGpt ? '1' : '0', PROBE_NO_CONTENT: c.noContent ? '1' : '0' };
  const command = `/usr/bin/python3 ${PROBE} "$uri"`;
  const options = { cwd: work, env, timeoutMs: 120_000 };
  const native = await run('nbdkit', ['-U', '-', ...c.args, '--run', command], options);
  const ours = await runNbdkitTs(['-U', '-', ...c.args, '--run', command], options);
  const describe = (r: { code: number | null; stdout: Buffer; stderr: string }, program: RegExp): string => {
    const firstError = r.stderr.split('\n').find((line) => / error: /.test(line)) ?? '';
    // nbdkit names the thread in an error from a connection (nbdkit: data.0: error: ...);
    // nbdkit-ts names the callback (nbdkit-ts: error: pwrite: ...): compare the message.
    const message = firstError.replace(program, '').replace(/^[\w.-]*\[?\d*\]?:? ?error: /, '').replace(/^(open|pread|pwrite|zero|trim|get_ready): /, '');
    return `exit ${r.code}\n${r.stdout.toString()}${message ? `error: ${message}\n` : ''}`;
  };
  return [describe(ours, /^nbdkit-ts: /), describe(native, /^nbdkit: /)];
}

const CASES: Case[] = [
  // data: the language, the other sources, size and allocators.
  { name: 'data bytes, offsets and a boot signature', args: ['data', '0 1 2 3 @0x1fe 0x55 0xaa'] },
  { name: 'data alignment, relative offsets, words', args: ['data', '0 1 2 3 @^0x200 @-2 le16:0xaa55 be32:1 le64:0x0102030405060708 be16:258'] },
  { name: 'data: a lone zero byte is allocated, a fill of zeroes is not', args: ['data', '0 @32768 0 0 @65536 0*40000 @200000 0'] },
  { name: 'data repeats and nested groups', args: ['data', '( 0x55 0xAA )*2048 ( "Hello" )*2000 ((1 (2 3)*3)*2 @+5)*4'] },
  { name: 'data strings with escapes, slices', args: ['data', '"abc\\x00\\n\\t\\"q" ( 0 1 2 )[1:2] ("hello")[2:] (1 2 3 4 5)[:3] (1 2 3)[:]'] },
  { name: 'data names and scopes', args: ['data', '( 0x55 0xAA ) -> \\sig ( @0x1fe \\sig ) -> \\sector \\sector \\sector'] },
  { name: 'data files, file slices, /dev/zero', args: ['data', `<${f1} @^512 <${f3}[10:300] @^512 </dev/zero[:512]*3 <${f2}[2000000:]`] },
  { name: 'data scripts, cut short and whole', args: ['data', '<( i=0; while :; do printf "%04d" $i; i=$((i+1)); done )[:32768] <(echo hello)'] },
  { name: 'data $var from a parameter and from the environment', args: ['data', '$pattern*16 $FROM_ENV', 'pattern=0x55 0xAA'], env: { FROM_ENV: '"env" 1' } },
  { name: 'data size= extends', args: ['data', '1 2 3', 'size=1M'] },
  { name: 'data size= truncates', args: ['data', '( "abc" )*100', 'size=7'] },
  { name: 'data raw=', args: ['data', 'raw=Hello, world!'] },
  { name: 'data base64= with size', args: ['data', 'base64=aGVs bG8=', 'size=100000'] },
  { name: 'data allocator=zstd keeps blitted zero pages', args: ['data', '(0 0 1)[:2] @40000 (0)*3 @70000 1', 'allocator=zstd'], ops: 'h.zero(100, 70000); h.pwrite(b"x", 100000)' },
  { name: 'data allocator=malloc maps all data', args: ['data', '1 @1M 2', 'allocator=malloc'] },
  { name: 'data writes, zeroes and trims', args: ['data', '@100000 1', 'size=4M'], ops: 'h.pwrite(b"x"*70000, 10); h.zero(40000, 5000); h.trim(32768, 65536); h.pread(8, 69990)' },
  { name: 'data: a parse error', args: ['data', '0 1 @1M 2'] },
  { name: 'data: an unmatched parenthesis', args: ['data', '( 1 2'] },
  { name: 'data: a byte out of range', args: ['data', '256'] },
  { name: 'data: an undefined name', args: ['data', '\\nothing'] },
  { name: 'data: an invalid slice', args: ['data', '(1 2)[5:1]'] },
  { name: 'data: bad base64', args: ['data', 'base64=aGVsbG8'] },
  { name: 'data: two sources', args: ['data', '1', 'raw=x'] },
  { name: 'data: no source', args: ['data', 'size=1M'] },
  { name: 'data: a missing file', args: ['data', '<nosuchfile'] },
  { name: 'data: a failing script', args: ['data', '<(exit 3)'] },
  // pattern, zero, full.
  { name: 'pattern', args: ['pattern', '1M'] },
  { name: 'pattern, odd size, read near 2^63', args: ['pattern', 'size=9223372036854775807'], ops: 'h.pread(21, 9223372036854775807 - 21); h.pread(13, 4611686018427387907)' },
  { name: 'zero', args: ['zero'] },
  { name: 'full: writes, zeroes and trims fail with ENOSPC', args: ['full', '1M'], ops: 'h.pwrite(b"x", 0); h.zero(512, 0); h.trim(512, 0); h.pread(4, 100)' },
  { name: 'full without size', args: ['full'] },
  // random and sparse-random: the same disk for the same seed.
  { name: 'random', args: ['random', 'size=3M', 'seed=42'], ops: 'h.pwrite(h.pread(5000, 1000), 1000); h.pwrite(b"x", 0); h.trim(512, 0)' },
  { name: 'random, hex seed, unaligned size', args: ['random', 'size=100001', 'seed=0xdeadbeef'] },
  { name: 'random: a bad seed', args: ['random', 'size=1M', 'seed=-1'] },
  { name: 'sparse-random', args: ['sparse-random', 'size=64M', 'seed=7'] },
  { name: 'sparse-random with random content, short runs', args: ['sparse-random', 'size=20M', 'seed=9', 'percent=30', 'runlength=64k', 'random-content=true'], ops: 'h.pread(10000, 4095); h.pwrite(h.pread(9000, 1000), 1000); h.pwrite(b"\\xff" * 4096, 0)' },
  { name: 'sparse-random, 100% and a large disk', args: ['sparse-random', 'size=2G', 'percent=100', 'seed=1'] },
  { name: 'sparse-random, a large sparse map', args: ['sparse-random', 'size=8G', 'seed=3', 'runlength=1M'] },
  { name: 'sparse-random: bad percent', args: ['sparse-random', 'size=1M', 'percent=101'] },
  // info.
  { name: 'info: the export name', args: ['-e', 'hello', 'info'] },
  { name: 'info: a base64 export name', args: ['-e', 'aGVsbG8gd29ybGQ=', 'info', 'mode=base64exportname'] },
  { name: 'info: the address of a Unix socket client', args: ['info', 'mode=address'] },
  { name: 'info: time (its size and capabilities; the content moves)', args: ['info', 'mode=time'], ops: 'len(h.pread(12, 0))', noContent: true },
  { name: 'info: a bad mode', args: ['info', 'mode=bogus'] },
  // split.
  { name: 'split: files, an empty one and a sparse one', args: ['split', f1, empty, sparse, f3] },
  { name: 'split: read-only', args: ['-r', 'split', `file=${f1}`, `file=${f2}`] },
  { name: 'split: a missing file', args: ['split', f1, 'nosuch'] },
  // partitioning: MBR byte for byte, GPT but for its random GUIDs.
  { name: 'partitioning: one file, MBR', args: ['partitioning', f1] },
  { name: 'partitioning: MBR types and alignment', args: ['partitioning', f1, 'mbr-id=0x82', f3, 'mbr-id=default', 'alignment=4k', f2] },
  { name: 'partitioning: MBR with logical partitions', args: ['partitioning', ...parts, 'partition-type=mbr', 'alignment=512'] },
  { name: 'partitioning: GPT by default for more than four files', args: ['partitioning', ...parts], maskGpt: true },
  { name: 'partitioning: GPT with type GUIDs', args: ['partitioning', 'partition-type=gpt', f1, 'type-guid=C12A7328-F81F-11D2-BA4B-00A0C93EC93B', f3, 'type-guid=default', f2], maskGpt: true },
  { name: 'partitioning: writes to the table and padding', args: ['partitioning', f1, f3], ops: 'h.pwrite(h.pread(512, 0), 0); h.pwrite(bytes(100), 20000); h.pwrite(b"x", 0); h.pwrite(b"x", 1048576 + 10000)' },
  { name: 'partitioning: no files', args: ['partitioning'] },
  { name: 'partitioning: an empty file', args: ['partitioning', empty] },
  { name: 'partitioning: a bad alignment', args: ['partitioning', 'alignment=100', f1] },
];

describe('built-in plugins against native nbdkit', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const [ours, native] = await probeBoth(c);
      expect(ours).toBe(native);
    }, 180_000);
  }

  it('a case that serves a disk describes it (the comparison is not of two failures)', async () => {
    const [ours] = await probeBoth({ name: 'data', args: ['data', '1 2 3'] });
    expect(ours).toMatch(/^exit 0\nsize 3\n[^]*sha256 [0-9a-f]{64}\nextent 0 3 0\n$/);
  });
});

describe('data: the simplified tree (-D data.AST=1) is nbdkit\'s', () => {
  // nbdkit's own test-data-optimum.sh reads this; it also decides which pages get allocated.
  const tree = async (command: string, args: string[]): Promise<string> => {
    const result = command === 'nbdkit' ? await run('nbdkit', args, { cwd: work }) : await runNbdkitTs(args, { cwd: work });
    const lines = result.stderr.split('\n').map((line) => line.replace(/^.*?debug: /, ''));
    return lines.slice(lines.indexOf('BEGIN AST (-D data.AST=1)'), lines.indexOf('END AST') + 1).join('\n');
  };
  for (const data of [
    '(((2 2 2) 2)) (1 1 1 (1 3)) "ab"*3 "a"*9 (1 2 3)*0 (0x31 0x32)*2*3',
    '( 0x55 0xAA ) -> \\a ( @0x1fe \\a ) -> \\b \\b*2 @-1 @^512 ("abc")[1:] (9)[:1] ("xyz")[1:2] <(echo hi)[:2]',
  ]) {
    it(data, async () => {
      const args = ['-U', '-', '-fv', '-D', 'data.AST=1', 'data', data, '--run', 'true'];
      const native = await tree('nbdkit', args);
      expect(native).toMatch(/^BEGIN AST[^]*END AST$/);
      expect(await tree('nbdkit-ts', args)).toBe(native);
    });
  }
});

describe('info mode=address over TCP', () => {
  it('reports an IPv4 client as IP:PORT, not as an IPv4-mapped IPv6 address', async () => {
    const port = String(20000 + Math.floor(Math.random() * 20000));
    const result = await runNbdkitTs(['-p', port, 'info', 'mode=address', '--run', `/usr/bin/nbdsh -u nbd://127.0.0.1:${port} -c 'print(h.pread(h.get_size(), 0).decode())'`]);
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toMatch(/^127\.0\.0\.1:\d+\n$/);
  });
});

describe('the random generators', () => {
  it('the WebAssembly bytes of the random plugin are the literal generator\'s', () => {
    for (const [seed, offset] of [[42, 0n], [0, 2n ** 32n - 5n], [4294967295, 2n ** 64n - 10n - 4294967295n], [123, 999_999n]] as const) {
      const literal = new Uint8Array(70_000);
      const fast = new Uint8Array(70_000);
      literalRandomBytes(literal, seed, offset);
      fillRandomBytes(fast, seed, offset);
      expect(Buffer.compare(literal, fast), `seed ${seed} offset ${offset}`).toBe(0);
    }
  });

  it('the WebAssembly xoshiro256** stream is the literal generator\'s, and both are the reference values', () => {
    // splitmix64 seeding then xoshiro256**, outputs for seed 12345 (computed with the reference C).
    const rng = new Xoshiro256(12345n);
    const outputs = Array.from({ length: 3 }, () => (rng.next(), rng.asBigInt));
    expect(outputs).toEqual([13720838825685603483n, 2398916695208396998n, 17770384849984869256n]);
    const literal = new Xoshiro256(777n);
    const expected = Uint8Array.from({ length: 4096 }, () => literal.next() & 0xff);
    const fast = new Uint8Array(4096);
    fillXoshiroStream(fast, 777n);
    expect(Buffer.compare(expected, fast)).toBe(0);
  });
});
