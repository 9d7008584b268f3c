/**
 * `nbdkit-ts lua script.lua` end to end: real NBD clients (libnbd's Python bindings, nbdcopy,
 * nbdinfo, qemu-io) over a Unix socket against Lua plugin scripts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, ROOT, nbdPython, run, runNbdkitTs, startServer, type RunningServer } from './helpers/server.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'lua');
const fixture = (name: string): string => join(FIXTURES, name);
const scratch = mkdtempSync(join(tmpdir(), 'lua-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const servers: RunningServer[] = [];
async function serve(args: string[], cwd?: string): Promise<RunningServer> {
  const server = await startServer(args, { cwd });
  servers.push(server);
  return server;
}
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

/** A deterministic pseudo-random file (every byte value, no long runs). */
function patternFile(path: string, size: number): Buffer {
  const data = Buffer.alloc(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  writeFileSync(path, data);
  return data;
}

describe('lua plugin scripts under real clients', () => {
  it('serves a disk held in a Lua string (the style of nbdkit tests/test.lua)', async () => {
    const server = await serve(['lua', fixture('string-disk.lua')]);
    const out = await nbdPython(
      server.uri,
      `print(h.get_size())
h.pwrite(b"hello\\x00\\xff world", 1000)
print(h.pread(15, 998).hex())
print(h.pread(4, 1048572).hex())`,
    );
    expect(out.split('\n')).toEqual([
      '1048576',
      Buffer.concat([Buffer.alloc(2), Buffer.from('hello\x00\xff world', 'latin1')]).toString('hex'),
      '00000000',
      '',
    ]);
  });

  it('serves a host file through io.open/seek/read/write, relative to the working directory', async () => {
    const dir = mkdtempSync(join(scratch, 'file-'));
    const data = patternFile(join(dir, 'disk.img'), 3 * 1024 * 1024 + 512);
    const server = await serve(['lua', fixture('file-disk.lua'), 'file=disk.img'], dir);
    const copy = join(dir, 'copy.img');
    const copied = await run('nbdcopy', [server.uri, copy]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(readFileSync(copy).equals(data)).toBe(true);
    const io = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xa5 4096 65536', server.uri]);
    expect(io.code, io.stderr).toBe(0);
    const after = readFileSync(join(dir, 'disk.img'));
    expect(after.subarray(4096, 4096 + 65536).every((b) => b === 0xa5)).toBe(true);
    expect(after.subarray(0, 4096).equals(data.subarray(0, 4096))).toBe(true);
    expect(after.length).toBe(data.length);
  });

  it('moves every byte value unchanged both ways', async () => {
    const server = await serve(['lua', fixture('bytes.lua')]);
    const out = await nbdPython(
      server.uri,
      `data = h.pread(1024, 0)
assert data == bytes(i % 256 for i in range(1024)), data[:32]
rev = bytes(255 - (i % 256) for i in range(512, 1024))
h.pwrite(rev, 512)
assert h.pread(512, 512) == rev
print("ok")`,
    );
    expect(out).toBe('ok\n');
  });

  it('reports script errors on stderr, gives the client EIO or the chosen errno, and keeps serving', async () => {
    const server = await serve(['lua', fixture('errors.lua')]);
    const out = await nbdPython(
      server.uri,
      `import errno
def attempt(f):
    try:
        f()
        return "ok"
    except nbd.Error as e:
        return e.errno if isinstance(e.errno, str) else errno.errorcode[e.errno]
print(attempt(lambda: h.pread(512, 4096)))
print(attempt(lambda: h.pread(512, 0)))
print(attempt(lambda: h.pwrite(b"x" * 512, 0)))
print(attempt(lambda: h.trim(512, 0)))
print(attempt(lambda: h.pread(512, 8192)))`,
    );
    expect(out.split('\n')).toEqual(['EIO', 'ok', 'ENOSPC', 'EPERM', 'ok', '']);
    const refused = `nbdkit-ts: error: pread: ${fixture('errors.lua')}:12: pread refused at 4096\n`;
    const full = `nbdkit-ts: error: pwrite: ${fixture('errors.lua')}:19: disk full\n`;
    expect(await server.logged(refused)).toContain(refused);
    expect(await server.logged(full)).toContain(full);
  });

  it('passes flags to data callbacks and serves exports, extents and descriptions', async () => {
    const server = await serve(['lua', fixture('callbacks.lua')]);
    const out = await nbdPython(
      server.uri,
      `h.pwrite(b"\\x00" * 512, 4096, nbd.CMD_FLAG_FUA)
h.zero(1024, 8192, nbd.CMD_FLAG_NO_HOLE)
h.flush()
print(h.pread(512, 0).decode().rstrip())`,
    );
    expect(out.split('\n')).toEqual(['pwrite 512 4096 2', 'zero 1024 8192 false 0', 'flush 0', '']);
    const list = await run('nbdinfo', ['--list', server.uri]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.toString()).toMatch(/export="described":\n\tdescription: the second export/);
    const map = await run('nbdinfo', ['--map', `nbd+unix:///plain?socket=${server.socket}`]);
    expect(map.code, map.stderr).toBe(0);
    expect(map.stdout.toString().trim().split('\n').map((l) => l.trim().split(/\s+/).slice(0, 3).join(' '))).toEqual([
      '0 65536 0',
      '65536 65536 3',
      '131072 917504 0',
    ]);
  });

  it('keeps print() off stdout, which under -s is the NBD socket', async () => {
    const script = join(scratch, 'printing.lua');
    writeFileSync(
      script,
      `print ("printed at load")
io.write ("written at load\\n")
function open (ro) print ("printed in open") return 1 end
function get_size (h) return 4096 end
function pread (h, c, o) return string.rep ("p", c) end`,
    );
    const result = await run('/usr/bin/python3', [
      '-c',
      `import nbd
h = nbd.NBD()
h.connect_command([${JSON.stringify(process.execPath)}, ${JSON.stringify(CLI)}, "-s", "lua", ${JSON.stringify(script)}])
print(h.pread(4, 0).decode())`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toBe('pppp\n');
    expect(result.stderr).toContain('printed at load\nwritten at load\n');
    expect(result.stderr).toContain('printed in open\n');
  });
});

describe('lua plugin start-up', () => {
  it('exits with status 1 and a clear message on a bad script', async () => {
    const cases: Array<[string, string]> = [
      ['syntax-error.lua', `could not parse Lua script ${fixture('syntax-error.lua')}:4: ')' expected near 'return'`],
      ['missing-pread.lua', `${fixture('missing-pread.lua')}: one of the required callbacks 'open', 'get_size' or 'pread' is not defined`],
      ['load-error.lua', `could not run Lua script: ${fixture('load-error.lua')}:4: stopped at load`],
    ];
    for (const [name, message] of cases) {
      const result = await runNbdkitTs(['lua', fixture(name), '--run', 'true']);
      expect(result.code, name).toBe(1);
      // Printed once, in nbdkit's form.
      expect(result.stderr.split(`nbdkit-ts: error: ${message}`).length - 1, result.stderr).toBe(1);
    }
  });

  it('accepts script= and an executable #! script given as the plugin', async () => {
    const named = await runNbdkitTs(['lua', `script=${fixture('string-disk.lua')}`, '--run', 'nbdinfo --size "$uri"']);
    expect(named.stdout.toString(), named.stderr).toBe('1048576\n');
    const direct = await runNbdkitTs([fixture('shebang.lua'), '--run', 'nbdinfo --size "$uri"']);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stdout.toString()).toBe('512\n');
  });

  it('--dump-plugin adds lua_version and what the script prints', async () => {
    const result = await runNbdkitTs(['lua', fixture('file-disk.lua'), '--dump-plugin']);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.toString().split('\n');
    expect(lines).toContain('name=lua');
    expect(lines.find((l) => l.startsWith('lua_version='))).toMatch(/^lua_version=5\.4/);
    expect(lines.slice(-3)).toEqual(['fixture_file_disk=1', 'second_line=yes', '']);
  });
});

describe('lua examples', () => {
  it('examples/lua/ramdisk.lua keeps what is written', async () => {
    const server = await serve(['lua', join(ROOT, 'examples', 'lua', 'ramdisk.lua'), 'size=8M']);
    const io = await run('qemu-io', [
      '-f', 'raw',
      '-c', 'write -P 0x5a 60000 200000',
      '-c', 'read -P 0x5a 60000 200000',
      '-c', 'read -P 0 0 60000',
      '-c', 'discard 0 1M',
      '-c', 'read -P 0 0 1M',
      server.uri,
    ]);
    expect(io.code, io.stderr).toBe(0);
    expect(io.stdout.toString()).not.toMatch(/Pattern verification failed/);
  });

  it('examples/lua/file.lua serves a file', async () => {
    const dir = mkdtempSync(join(scratch, 'example-'));
    const data = patternFile(join(dir, 'disk.img'), 1024 * 1024);
    const server = await serve(['lua', join(ROOT, 'examples', 'lua', 'file.lua'), `file=${join(dir, 'disk.img')}`]);
    const copy = join(dir, 'copy.img');
    const copied = await run('nbdcopy', [server.uri, copy]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(readFileSync(copy).equals(data)).toBe(true);
  });
});
