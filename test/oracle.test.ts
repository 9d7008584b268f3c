/**
 * Native nbdkit (Debian's 1.32.5) as the oracle: the same command under both servers must
 * look the same to nbdinfo.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomRequests, replies } from './helpers/conformance.js';
import { seededUniform } from './helpers/random.js';
import { run, runNbdkitTs, startServer } from './helpers/server.js';

/** Run the same --run command under native nbdkit and nbdkit-ts; return both outputs. */
async function both(args: string[], command: string): Promise<[string, string]> {
  const native = await run('nbdkit', ['-U', '-', ...args, '--run', command]);
  const ours = await runNbdkitTs(['-U', '-', ...args, '--run', command]);
  expect(native.code, native.stderr).toBe(0);
  expect(ours.code, ours.stderr).toBe(0);
  // The private socket path differs between the two runs.
  const clean = (text: string): string => text.replace(/"uri": ".*"/g, '"uri": ""');
  return [clean(ours.stdout.toString()), clean(native.stdout.toString())];
}

const WRITES = [
  'h.pwrite(b"hello" * 1000, 100000)',
  'h.pwrite(b"\\x00" * 4096, 2000000)',
  'h.zero(65536, 1048576)',
  'h.pwrite(b"x" * 70000, 3000000)',
  'h.trim(32768, 3014656)',
  'h.zero(100, 3000010)',
  'h.zero(40000, 5000000, nbd.CMD_FLAG_NO_HOLE)',
  'h.pwrite(b"\\xff" * 512, 64 * 1024 * 1024 - 512)',
].join('; ');

/**
 * Writes of 256 KiB, which after the first are received and done by the request thread (into
 * the memory file for the memory plugin): data, zeroes written as data, page-unaligned, then
 * zeroes and trims across what they wrote.
 */
const LARGE_WRITES = [
  'h.pwrite(b"a" * 262144, 0)',
  'h.pwrite(b"\\x00" * 262144, 1048576)',
  'h.pwrite(b"b" * 100000 + b"\\x00" * 162144, 2097152 + 5000)',
  'h.pwrite(b"c" * 262144, 4194304 + 4096)',
  'h.zero(40000, 4194304 + 10000)',
  'h.trim(262144, 4194304 + 32768)',
  'h.zero(5000, 2097152)',
  'h.trim(100000, 1048576 + 1000)',
].join('; ');

describe('memory plugin against native nbdkit', () => {
  it('nbdinfo --json lists the same capabilities', async () => {
    const [ours, native] = await both(['memory', '64M'], 'nbdinfo --json "$uri"');
    expect(JSON.parse(ours)).toEqual(JSON.parse(native));
  });

  it('nbdinfo --map after writes, zeroes and trims prints the same map', async () => {
    const command = `nbdsh -u "$uri" -c '${WRITES}' && nbdinfo --map "$uri" && nbdinfo --map --totals "$uri"`;
    const [ours, native] = await both(['memory', '64M'], command);
    expect(ours).toContain('data');
    expect(ours).toBe(native);
  });

  it('large writes, zeroes and trims read back the same, and reading holes leaves the same map', async () => {
    // 256 KiB reads over the whole disk, some across data and holes, hashed; then the map, which
    // a read that allocated what it read would change.
    const readAll = 'import hashlib; print(hashlib.sha256(b"".join(h.pread(262144, o) for o in range(0, 8388608 - 262144, 100000))).hexdigest())';
    const command = `nbdsh -u "$uri" -c '${LARGE_WRITES}' -c '${readAll}' && nbdinfo --map "$uri" && nbdinfo --map --totals "$uri"`;
    const [ours, native] = await both(['memory', '8M'], command);
    expect(ours).toMatch(/^[0-9a-f]{64}\n[^]*data\n[^]*zero\n[^]*data/);
    expect(ours).toBe(native);
  });

  it('read-only (-r) looks the same', async () => {
    const [ours, native] = await both(['-r', 'memory', '1M'], 'nbdinfo --json "$uri"');
    expect(JSON.parse(ours)).toEqual(JSON.parse(native));
  });

  it('--no-sr looks the same', async () => {
    const [ours, native] = await both(['--no-sr', 'memory', '1M'], 'nbdinfo --json "$uri"');
    expect(JSON.parse(ours)).toEqual(JSON.parse(native));
  });
});

describe('file plugin against native nbdkit', () => {
  it('trim, zero and extents give the same map and capabilities on a sparse file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-oracle-'));
    try {
      const data = randomBytes(2 * 1024 * 1024);
      const makeDisk = (name: string): string => {
        const path = join(dir, name);
        writeFileSync(path, Buffer.alloc(0));
        truncateSync(path, 8 * 1024 * 1024);
        const fd = openSync(path, 'r+');
        writeSync(fd, data, 0, data.length, 4 * 1024 * 1024);
        closeSync(fd);
        return path;
      };
      const script = [
        'h.pwrite(b"x" * 70000, 1000000)', 'h.trim(65536, 0)', 'h.zero(8192, 2000000)',
        'h.zero(4096, 1004096, nbd.CMD_FLAG_NO_HOLE)', 'h.trim(1048576, 4194304)',
      ].join('; ');
      const command = (disk: string): string[] => [
        '-U', '-', 'file', disk, '--run', `nbdsh -u "$uri" -c '${script}' && nbdinfo --map "$uri" && nbdinfo --json "$uri"`,
      ];
      const native = await run('nbdkit', command(makeDisk('native.img')));
      const ours = await runNbdkitTs(command(makeDisk('ours.img')));
      expect(ours.code, ours.stderr).toBe(0);
      const clean = (text: string): string => text.replace(/"uri": ".*"/g, '');
      expect(clean(ours.stdout.toString())).toMatch(/hole,zero/);
      expect(clean(ours.stdout.toString())).toBe(clean(native.stdout.toString()));
      expect(readFileSync(join(dir, 'ours.img')).equals(readFileSync(join(dir, 'native.img')))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('export names and descriptions against native nbdkit', () => {
  it('NBD_INFO_NAME reports the name default_export chose, and the description is sent', async () => {
    const args = [
      'eval', 'default_export=echo chosen', 'get_size=echo 1M', 'export_description=echo described',
      'pread=dd if=/dev/zero count=$3 iflag=count_bytes status=none',
    ];
    const [ours, native] = await both(args, 'nbdinfo --json "$uri"');
    expect(JSON.parse(ours).exports[0]['export-name']).toBe('chosen');
    expect(JSON.parse(ours)).toEqual(JSON.parse(native));
  });
});

describe('null plugin against native nbdkit', () => {
  it('nbdinfo --json and --map are the same', async () => {
    const [ours, native] = await both(['null', '1G'], 'nbdinfo --json "$uri" && nbdinfo --map "$uri"');
    expect(ours).toBe(native);
  });
});

describe('sizes parse as nbdkit_parse_size', () => {
  const sizes = ['512', '7k', '7K', '64M', '1G', '2T', '1P', '1E', '3b', '1s', '2S', '0', '007', ' 5k', '+3'];
  it(`accepts ${sizes.join(' ')} with the same values`, async () => {
    for (const size of sizes) {
      const native = await run('nbdkit', ['-U', '-', 'null', size, '--run', 'nbdinfo --size "$uri"']);
      const ours = await runNbdkitTs(['-U', '-', 'null', size, '--run', 'nbdinfo --size "$uri"']);
      expect(`${size}: ${ours.code} ${ours.stdout.toString().trim()}`).toBe(`${size}: ${native.code} ${native.stdout.toString().trim()}`);
    }
  });

  it('rejects what nbdkit rejects', async () => {
    for (const size of ['', 'k', '1.5M', '-1', '1X', '16E', '10KiB', '4MB', 'M1', '0x10', '99999999999999999999']) {
      const native = await run('nbdkit', ['-U', '-', 'null', `size=${size}`, '--run', 'true']);
      const ours = await runNbdkitTs(['-U', '-', 'null', `size=${size}`, '--run', 'true']);
      expect(`${size}: ${ours.code}`).toBe(`${size}: ${native.code}`);
    }
  });
});

describe('random requests against native nbdkit', () => {
  for (const structured of [false, true]) {
    it(`the memory plugin answers 300 random requests as nbdkit does (${structured ? 'structured' : 'simple'} replies)`, async () => {
      const diskSize = 8 << 20;
      const requests = randomRequests(seededUniform(structured ? 7 : 11), diskSize, 300);
      const [ours, native] = await Promise.all([startServer(['memory', `${diskSize}`]), startServer(['memory', `${diskSize}`], { native: true })]);
      try {
        const [got, expected] = await Promise.all([replies(ours.socket, structured, requests), replies(native.socket, structured, requests)]);
        expect(expected.some((line) => /error=0 /.test(line) || /type=1 /.test(line))).toBe(true);
        expect(got).toEqual(expected);
      } finally {
        await Promise.all([ours.stop(), native.stop()]);
      }
    });
  }
});
