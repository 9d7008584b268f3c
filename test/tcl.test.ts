// `nbdkit-ts tcl plugin.tcl` end to end: real servers on Unix sockets, real clients (libnbd's
// Python bindings, nbdinfo, qemu-io), and native nbdkit's Tcl plugin as the oracle.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, nbdPython, ROOT, run, runNbdkitTs, type RunningServer, startServer } from './helpers/server.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'tcl');
const fixture = (name: string): string => join(FIXTURES, name);

let work: string;
const servers: RunningServer[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-tcl-'));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(work, { recursive: true, force: true });
});

async function serve(args: string[], options: { cwd?: string; native?: boolean } = {}): Promise<RunningServer> {
  const server = await startServer(args, options);
  servers.push(server);
  return server;
}

async function stop(server: RunningServer): Promise<void> {
  servers.splice(servers.indexOf(server), 1);
  await server.stop();
}

describe('a RAM disk in Tcl', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve(['tcl', fixture('ramdisk.tcl'), 'size=262144']);
  });

  it('every byte value round trips, at aligned and unaligned offsets', async () => {
    const out = await nbdPython(
      server.uri,
      `
data = bytes(range(256)) * 16
for off in (0, 4096, 12345, 262144 - len(data)):
    h.pwrite(data, off)
    assert h.pread(len(data), off) == data, off
print(h.get_size(), "ok")
`,
    );
    expect(out.trim()).toBe('262144 ok');
  });

  it('zero, trim and flush reach the script', async () => {
    const out = await nbdPython(
      server.uri,
      `
h.pwrite(b"\\xff" * 8192, 65536)
h.zero(4096, 65536)
h.trim(1024, 65536 + 4096)
h.flush()
r = h.pread(8192, 65536)
print(r[:4096] == bytes(4096), r[4096:5120] == bytes(1024), r[5120:] == b"\\xff" * 3072)
print(h.can_zero(), h.can_trim(), h.can_flush(), h.is_read_only())
`,
    );
    expect(out.trim().split('\n')).toEqual(['True True True', 'True True True False']);
  });

  it('qemu-io writes and verifies a pattern', async () => {
    const result = await run('qemu-io', [
      '-f', 'raw',
      '-c', 'write -P 0xa5 8192 65536',
      '-c', 'read -P 0xa5 8192 65536',
      server.uri,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).not.toMatch(/Pattern verification failed/);
  });

  it('--dump-plugin shows the Tcl version and the lines the script prints', async () => {
    const result = await runNbdkitTs(['tcl', fixture('ramdisk.tcl'), '--dump-plugin']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.toString().trim().split('\n');
    expect(lines).toContain('name=tcl');
    expect(lines).toContain('magic_config_key=script');
    expect(lines).toContain('tcl_version=8.6');
    expect(lines).toContain('tcl_patch_level=8.6.13');
    expect(lines.at(-1)).toBe('ramdisk_tcl=1');
  });
});

describe('a file-backed disk in Tcl', () => {
  it('reads and writes the real file, named relative to the working directory', async () => {
    const dir = mkdtempSync(join(work, 'file-'));
    const image = Buffer.alloc(1 << 20);
    for (let i = 0; i < image.length; i++) image[i] = (i * 7) & 0xff;
    writeFileSync(join(dir, 'disk.img'), image);
    const server = await serve(['tcl', `script=${fixture('filedisk.tcl')}`, 'file=disk.img'], { cwd: dir });
    const out = await nbdPython(
      server.uri,
      `
print(h.get_size())
print(h.pread(8, 1000).hex())
h.pwrite(bytes(range(256)), 4000)
h.zero(100, 5000)
h.flush()
`,
    );
    await stop(server);
    expect(out.trim().split('\n')).toEqual(['1048576', Buffer.from(image.subarray(1000, 1008)).toString('hex')]);
    const after = readFileSync(join(dir, 'disk.img'));
    expect(Array.from(after.subarray(4000, 4256))).toEqual(Array.from({ length: 256 }, (_, i) => i));
    expect(after.subarray(5000, 5100).every((b) => b === 0)).toBe(true);
    expect(after[3999]).toBe(image[3999]);
    expect(after[5100]).toBe(image[5100]);
    expect(after.length).toBe(1 << 20);
    expect(existsSync(join(dir, 'disk.img.flushed'))).toBe(true);
  });

  it('writes the same bytes as native nbdkit running the same script', async () => {
    const ops = `
import random
rnd = random.Random(7)
for i in range(40):
    off = rnd.randrange(0, (1 << 20) - 70000)
    n = rnd.randrange(1, 65536)
    h.pwrite(bytes(rnd.randrange(256) for _ in range(n)), off)
h.zero(3000, 777)
h.flush()
`;
    const images: Buffer[] = [];
    for (const native of [false, true]) {
      const dir = mkdtempSync(join(work, native ? 'native-' : 'ours-'));
      writeFileSync(join(dir, 'disk.img'), Buffer.alloc(1 << 20, 0x33));
      const server = await serve(['tcl', fixture('filedisk.tcl'), 'file=disk.img'], { cwd: dir, native });
      await nbdPython(server.uri, ops);
      await stop(server);
      images.push(readFileSync(join(dir, 'disk.img')));
    }
    expect(images[0].equals(images[1])).toBe(true);
  });
});

describe('errors in callbacks', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve(['tcl', fixture('errors.tcl')]);
  });

  it('a Tcl error is EIO for the client, with the message and errorInfo on stderr, and serving goes on', async () => {
    const out = await nbdPython(
      server.uri,
      `
try:
    h.pread(512, 69632)
    print("no error")
except nbd.Error as e:
    print(e.errno)
print(len(h.pread(512, 0)))
`,
    );
    expect(out.trim().split('\n')).toEqual(['EIO', '512']);
    const stderr = await server.logged('(procedure "pread" line 3)');
    expect(stderr).toMatch(/nbdkit-ts: error: pread: cannot read at 69632\n/);
    expect(stderr).toContain('(procedure "check_read" line 3)');
    expect(stderr).toContain('(procedure "pread" line 3)');
  });

  it('nbdkit set_error chooses the errno, by name or by number', async () => {
    const out = await nbdPython(
      server.uri,
      `
for call in (lambda: h.pwrite(b"x" * 512, 70000), lambda: h.trim(512, 0)):
    try:
        call()
        print("no error")
    except nbd.Error as e:
        print(e.errno)
h.pwrite(b"y" * 512, 0)
print(bytes(h.pread(1, 0)))
`,
    );
    expect(out.trim().split('\n')).toEqual(['ENOSPC', 'EPERM', "b'y'"]);
    expect(await server.logged(/error: pwrite: disk full at 70000/)).toMatch(/error: pwrite: disk full at 70000/);
    expect(await server.logged(/error: trim: trim refused/)).toMatch(/error: trim: trim refused/);
  });
});

describe('exit in a script', () => {
  it('ends the server with the status the script gave, as native nbdkit does', async () => {
    const server = await serve(['tcl', fixture('exit.tcl')]);
    const exited = new Promise<number | null>((resolve) => server.process.on('exit', (code) => resolve(code)));
    const out = await nbdPython(
      server.uri,
      `
print(len(h.pread(512, 0)))
try:
    h.pread(512, 512)
except nbd.Error:
    print("gone")
`,
    );
    expect(out.trim().split('\n')).toEqual(['512', 'gone']);
    expect(await exited).toBe(3);
  });
});

describe('start-up failures exit with status 1 and a clear message', () => {
  const cases: Array<[string, string[], RegExp]> = [
    [
      'a missing pread',
      [fixture('missing-pread.tcl')],
      /one of the required callbacks 'plugin_open', 'get_size' or 'pread' is not defined by this Tcl script/,
    ],
    ['an error at load', [fixture('load-error.tcl')], /could not load Tcl script: .*load-error\.tcl: line 4: .*missing operand/s],
    ['an error in config', [fixture('ramdisk.tcl'), 'colour=blue'], /config: unknown parameter colour=blue/],
    ['an error in config_complete', [fixture('filedisk.tcl')], /config_complete: file parameter missing/],
    ['no script at all', [], /the first parameter must be script=/],
    ['a key before script=', ['file=x', `script=${fixture('filedisk.tcl')}`], /the first parameter must be script=/],
  ];
  for (const [what, args, message] of cases) {
    it(what, async () => {
      const socket = join(work, `never-${what.replace(/\W/g, '')}.sock`);
      const result = await runNbdkitTs(['-f', '-U', socket, 'tcl', ...args]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(message);
      expect(existsSync(socket)).toBe(false);
    });
  }
});

describe('beyond nbdkit’s Tcl plugin', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve(['-v', 'tcl', fixture('extended.tcl'), 'size=1M']);
  });

  it('list_exports, default_export, export_description, block_size, can_fua, can_multi_conn, can_cache', async () => {
    const list = await run('nbdinfo', ['--list', '--json', server.uri]);
    expect(list.code, list.stderr).toBe(0);
    const info = JSON.parse(list.stdout.toString()) as {
      exports: Array<Record<string, unknown>>;
    };
    const names = info.exports.map((e) => e['export-name']);
    expect(names).toEqual(['first', 'second']);
    expect(info.exports[1].description).toBe('the second export');

    const uri = server.uri.replace('nbd+unix:///', 'nbd+unix:///second');
    const one = await run('nbdinfo', ['--json', uri]);
    expect(one.code, one.stderr).toBe(0);
    const second = (JSON.parse(one.stdout.toString()) as { exports: Array<Record<string, unknown>> }).exports[0];
    expect(second.description).toBe('export second, TLS 0');
    expect(second['export-size']).toBe(1048576);
    expect(second['block_size_minimum']).toBe(1);
    expect(second['block_size_preferred']).toBe(4096);
    expect(second['can_fua']).toBe(true);
    expect(second['can_multi_conn']).toBe(true);
    expect(second['can_cache']).toBe(true);
    expect(await server.logged(/open export second readonly=0/)).toMatch(/open export second readonly=0/);

    // The default export is the one default_export names.
    await run('nbdinfo', ['--size', server.uri]);
    expect(await server.logged(/open export first readonly=0/)).toMatch(/open export first readonly=0/);
  });

  it('extents from a list of {offset length type}', async () => {
    const map = await run('nbdinfo', ['--map', server.uri]);
    expect(map.code, map.stderr).toBe(0);
    const rows = map.stdout.toString().trim().split('\n').map((l) => l.trim().split(/\s+/).slice(0, 3));
    expect(rows).toEqual([
      ['0', '524288', '0'],
      ['524288', '524288', '3'],
    ]);
  });

  it('data procs with a flags parameter see FUA; cache reaches the script', async () => {
    const out = await nbdPython(
      server.uri,
      `
h.pwrite(b"a" * 512, 4096, nbd.CMD_FLAG_FUA)
h.pwrite(b"b" * 512, 8192, nbd.CMD_FLAG_FUA)
h.pwrite(b"c" * 512, 12288)
h.cache(4096, 8192)
h.pwrite(b"STAT", 0)
h.flush()
print(h.pread(64, 0).rstrip(b"\\0").decode())
`,
    );
    expect(out.trim()).toBe('fua=2 cache 8192 4096');
  });
});

describe('-s: stdout is the NBD socket', () => {
  it("the script's puts goes to stderr and the data stays intact", async () => {
    const command = JSON.stringify([process.execPath, CLI, '-s', 'tcl', fixture('noisy.tcl')]);
    const program = `import nbd
h = nbd.NBD()
h.connect_command(${command})
print(h.get_size(), h.pread(4096, 0) == b"\\xab" * 4096)
`;
    const result = await run('/usr/bin/python3', ['-c', program]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('4096 True');
    expect(result.stderr).toContain('loading noisy.tcl');
    expect(result.stderr).toContain('read 4096 at 0');
  });
});

describe('examples/tcl', () => {
  it('ramdisk.tcl keeps what is written, zeroes and trims, and maps unwritten pages as holes', async () => {
    const server = await serve(['tcl', join(ROOT, 'examples', 'tcl', 'ramdisk.tcl'), 'size=4M']);
    const out = await nbdPython(
      server.uri,
      `
import random
r = random.Random(3)
size = 4 << 20
ref = bytearray(size)
for i in range(60):
    off = r.randrange(0, size - 150000); n = r.randrange(1, 150000)
    d = bytes(r.randrange(256) for _ in range(n)); h.pwrite(d, off); ref[off:off + n] = d
    if i % 5 == 0:
        zo = r.randrange(0, size - 200000); zn = r.randrange(1, 200000); h.zero(zn, zo); ref[zo:zo + zn] = bytes(zn)
    if i % 7 == 0:
        to = r.randrange(0, size - 200000); tn = r.randrange(1, 200000); h.trim(tn, to); ref[to:to + tn] = bytes(tn)
got = b"".join(h.pread(1 << 20, o) for o in range(0, size, 1 << 20))
print(got == bytes(ref))
`,
    );
    expect(out.trim()).toBe('True');
    await stop(server);

    const fresh = await serve(['tcl', join(ROOT, 'examples', 'tcl', 'ramdisk.tcl'), 'size=1M']);
    await nbdPython(fresh.uri, 'h.pwrite(b"x" * 65536, 131072)');
    const map = await run('nbdinfo', ['--map', fresh.uri]);
    expect(map.stdout.toString().trim().split('\n').map((l) => l.trim().split(/\s+/).slice(0, 3))).toEqual([
      ['0', '131072', '3'],
      ['131072', '65536', '0'],
      ['196608', '851968', '3'],
    ]);
  });

  it('file.tcl serves a host file read-only with -r', async () => {
    const dir = mkdtempSync(join(work, 'example-'));
    writeFileSync(join(dir, 'disk.img'), Buffer.alloc(65536, 0x42));
    const server = await serve(['-r', 'tcl', join(ROOT, 'examples', 'tcl', 'file.tcl'), 'file=disk.img'], { cwd: dir });
    const out = await nbdPython(
      server.uri,
      `
print(h.is_read_only(), h.pread(4, 65532))
try:
    h.pwrite(b"z", 0)
except nbd.Error as e:
    print(e.errno)
`,
    );
    expect(out.trim().split('\n')).toEqual(["True bytearray(b'BBBB')", 'EPERM']);
  });
});
