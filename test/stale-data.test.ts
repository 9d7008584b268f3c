// A reply never carries bytes the plugin did not produce for that request. Plugins whose pread
// fills a buffer (JavaScript, Python API 2) may leave part of it unwritten, as a real plugin
// with an off-by-one does: those bytes must read as zeroes, not as whatever the recycled
// buffer held last (another client's data). Plugins whose pread returns its data (Lua, Tcl,
// Python API 1, sh) fail a short answer instead. Each case: client 1 writes a secret and reads
// it back (so every buffer on the read path has held it), then client 2 reads a range the
// plugin leaves alone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLIENT_ENV, nbdPython, serversStoppedAfterEach } from './helpers/server.js';

const SIZE = 2 * 1024 * 1024;
/** Where client 2 reads: the plugins below never touch their buffer for offsets other than 0. */
const UNFILLED = 1024 * 1024;

// Made at once: the cases below write their scripts while the tests are collected.
const work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-stale-'));
const env: NodeJS.ProcessEnv = { ...CLIENT_ENV, XDG_CACHE_HOME: join(work, 'cache') };
const serve = serversStoppedAfterEach();

afterAll(() => rmSync(work, { recursive: true, force: true }));

function script(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

/** Client 1 writes and reads back `count` secret bytes at 0; returns what client 2 reads at UNFILLED. */
async function secretThenRead(uri: string, count: number): Promise<string> {
  await nbdPython(
    uri,
    `secret = (b"SECRET!!" * ${count / 8})
h.pwrite(secret, 0)
assert h.pread(${count}, 0) == secret, "client 1 did not read its own data back"`,
  );
  return nbdPython(
    uri,
    `try:
    data = h.pread(${count}, ${UNFILLED})
    print("zeroes" if data == bytes(${count}) else "LEAK %r" % data[:16])
except nbd.Error as e:
    print("error %s" % e.errno)`,
  );
}

const PYTHON_API2 = `API_VERSION = 2
disk = bytearray(${SIZE})
def open(readonly): return 1
def get_size(h): return len(disk)
def pwrite(h, buf, offset, flags): disk[offset:offset + len(buf)] = buf
def pread(h, buf, offset, flags):
    # Fills the buffer only for offset 0; elsewhere it forgets to (the bug under test).
    if offset == 0:
        buf[:] = disk[:len(buf)]
`;

const JAVASCRIPT = `const disk = new Uint8Array(${SIZE});
export const open = () => 1;
export const get_size = () => disk.length;
export const pwrite = (h, buf, offset) => disk.set(buf, Number(offset));
export function pread(h, buf, offset) {
  if (offset === 0) buf.set(disk.subarray(0, buf.length));
}
`;

describe('bytes a plugin leaves unwritten read as zeroes', () => {
  for (const count of [512, 256 * 1024]) {
    it(`JavaScript pread(h, buf) of ${count} bytes`, async () => {
      const server = await serve(['js', script('unfilling.mjs', JAVASCRIPT)], { env });
      expect(await secretThenRead(server.uri, count)).toBe('zeroes\n');
    });

    it(`Python API 2 pread(h, buf) of ${count} bytes`, async () => {
      const server = await serve(['python', script('unfilling.py', PYTHON_API2)], { env, timeoutMs: 60_000 });
      expect(await secretThenRead(server.uri, count)).toBe('zeroes\n');
    });
  }
});

describe('a short answer from a pread that returns its data is an error, never padding', () => {
  const cases: Array<[string, string[]]> = [
    [
      'Lua',
      [
        'lua',
        script(
          'short.lua',
          `local disk = {}
function open(ro) return 1 end
function get_size(h) return ${SIZE} end
function pwrite(h, buf, offset) disk[offset] = buf end
function pread(h, count, offset)
  if offset == 0 then return disk[0] end
  return "x"
end
`,
        ),
      ],
    ],
    [
      'Tcl',
      [
        'tcl',
        script(
          'short.tcl',
          `set disk ""
proc plugin_open {readonly} { return 1 }
proc get_size {h} { return ${SIZE} }
proc pwrite {h buf offset} { global disk; if {$offset == 0} { set disk $buf } }
proc pread {h count offset} {
    global disk
    if {$offset == 0} { return $disk }
    return "x"
}
`,
        ),
      ],
    ],
    [
      'Python API 1',
      [
        'python',
        script(
          'short-v1.py',
          `disk = bytearray(${SIZE})
def open(readonly): return 1
def get_size(h): return len(disk)
def pwrite(h, buf, offset): disk[offset:offset + len(buf)] = buf
def pread(h, count, offset):
    return bytes(disk[:count]) if offset == 0 else b"x"
`,
        ),
      ],
    ],
  ];
  for (const [language, args] of cases) {
    it(language, async () => {
      const server = await serve(args, { env, timeoutMs: 60_000 });
      expect(await secretThenRead(server.uri, 512)).toBe('error EIO\n');
    });
  }

  it('sh', async () => {
    const disk = join(work, 'sh-disk');
    writeFileSync(disk, Buffer.alloc(SIZE));
    const server = await serve(
      [
        'eval',
        `get_size=echo ${SIZE}`,
        `pwrite=dd of=${disk} bs=1 seek=$4 conv=notrunc status=none`,
        `pread=if [ "$4" = 0 ]; then dd if=${disk} bs=$3 count=1 status=none; else printf x; fi`,
      ],
      { env },
    );
    expect(await secretThenRead(server.uri, 512)).toBe('error EIO\n');
  });
});
