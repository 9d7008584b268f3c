// The python plugin end to end: nbdkit-ts serving Python scripts to real clients (libnbd's
// Python bindings, nbdinfo, nbdcopy) over Unix sockets. The memory snapshot cache lives in a
// private directory that starts empty, so the first start here is a cold one.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ENV, ROOT, type RunningServer, nbdPython, run, runNbdkitTs, startServer } from './helpers/server.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'python');
const EXAMPLES = join(ROOT, 'examples', 'python');

let work: string;
let env: NodeJS.ProcessEnv;
const servers: RunningServer[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-python-'));
  env = { ...CLIENT_ENV, XDG_CACHE_HOME: join(work, 'cache') };
});

afterAll(async () => {
  for (const server of servers.splice(0)) await server.stop();
  rmSync(work, { recursive: true, force: true });
});

async function serve(args: string[], cwd = work): Promise<RunningServer> {
  const server = await startServer(['python', ...args], { env, cwd, timeoutMs: 60_000 });
  servers.push(server);
  return server;
}

async function stop(server: RunningServer): Promise<number | null> {
  servers.splice(servers.indexOf(server), 1);
  return server.stop();
}

/** Like nbdPython, but asks for base:allocation before connecting (block status needs it). */
async function nbdPythonWithExtents(uri: string, script: string): Promise<string> {
  const program = `import nbd, sys\nh = nbd.NBD()\nh.add_meta_context("base:allocation")\nh.connect_uri(${JSON.stringify(uri)})\n${script}\n`;
  const result = await run('/usr/bin/python3', ['-c', program]);
  if (result.code !== 0) throw new Error(`python failed (${result.code}):\n${result.stderr}`);
  return result.stdout.toString();
}

function snapshots(): string[] {
  const dir = join(work, 'cache', 'nbdkit-ts');
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.snapshot')) : [];
}

describe('python plugin start-up', () => {
  it('makes the memory snapshot on the first start, says so, and reuses it afterwards', async () => {
    const first = await runNbdkitTs(['--dump-plugin', 'python', join(FIXTURES, 'callbacks.py')], { env });
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/first start/);
    expect(snapshots()).toHaveLength(1);
    // Stored sparse (snapshot-format.ts): well under the interpreter's 30 MB of memory.
    const stored = readFileSync(join(work, 'cache', 'nbdkit-ts', snapshots()[0]));
    expect(stored.subarray(0, 16).toString('latin1')).toBe('nbdkit-ts pysnp1');
    expect(stored.length).toBeLessThan(new DataView(stored.buffer, stored.byteOffset).getFloat64(24, true));
    const out = first.stdout.toString();
    expect(out).toMatch(/^python_version=3\.\d+\.\d+$/m);
    expect(out).toMatch(/^nbdkit_python_maximum_api_version=2$/m);
    // The script's dump_plugin prints; its lines are appended to the dump.
    expect(out).toMatch(/^callbacks_dump=yes\ncallbacks_stdout_is_captured=1$/m);

    const second = await runNbdkitTs(['--dump-plugin', 'python'], { env });
    expect(second.code).toBe(0);
    expect(second.stderr).not.toMatch(/first start/);
    expect(second.stdout.toString()).toMatch(/^python_version=/m);
  });

  it('rebuilds a damaged snapshot instead of failing', async () => {
    const [name] = snapshots();
    const path = join(work, 'cache', 'nbdkit-ts', name);
    writeFileSync(path, Buffer.alloc(4096, 0x5a));
    const result = await runNbdkitTs(['--dump-plugin', 'python'], { env });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/^python_version=/m);
    expect(readFileSync(path).length).toBeGreaterThan(1024 * 1024);
  });

  it('reports scripts it cannot run with nbdkit\'s messages, without hanging', async () => {
    const badImport = await runNbdkitTs(['python', join(FIXTURES, 'bad-import.py')], { env, timeoutMs: 30_000 });
    expect(badImport.code).not.toBe(0);
    expect(badImport.stderr).toMatch(/ModuleNotFoundError: No module named 'no_such_module_for_nbdkit_ts'/);
    expect(badImport.stderr).toMatch(/bad-import\.py: error running this script/);
    expect(badImport.stderr).toMatch(/scripts run in pyodide .* modules are looked for in PYTHONPATH, the host's site-packages/);

    const noPread = await runNbdkitTs(['python', join(FIXTURES, 'no-pread.py')], { env });
    expect(noPread.code).not.toBe(0);
    expect(noPread.stderr).toMatch(/one of the required callbacks 'open', 'get_size' or 'pread' is not defined/);

    const badApi = await runNbdkitTs(['python', join(FIXTURES, 'bad-api.py')], { env });
    expect(badApi.code).not.toBe(0);
    expect(badApi.stderr).toMatch(/API_VERSION requested unknown version: 7/);

    const notFirst = await runNbdkitTs(['python', 'size=1', `script=${join(FIXTURES, 'callbacks.py')}`], { env });
    expect(notFirst.code).not.toBe(0);
    expect(notFirst.stderr).toMatch(/the first parameter must be script=/);

    const missing = await runNbdkitTs(['python', join(work, 'missing.py')], { env });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/missing\.py: cannot open file/);
  });
});

describe('python plugin, API version 2', () => {
  it('serves every callback of current nbdkit to a real client', async () => {
    const server = await serve([join(FIXTURES, 'callbacks.py'), 'size=1M', 'rotational=yes']);
    const out = await nbdPythonWithExtents(
      server.uri,
      `
import errno
print("size", h.get_size())
print("flags", h.is_rotational(), h.can_multi_conn(), h.can_flush(), h.can_trim(), h.can_zero(),
      h.can_fast_zero(), h.can_fua(), h.can_cache(), h.is_read_only())
print("block", h.get_block_size(nbd.SIZE_MINIMUM), h.get_block_size(nbd.SIZE_PREFERRED), h.get_block_size(nbd.SIZE_MAXIMUM))
h.pwrite(b"x" * 4096, 8192, nbd.CMD_FLAG_FUA)
h.flush()
h.cache(512, 0)
h.trim(4096, 16384)
h.zero(4096, 8192)
head = h.pread(16, 0)
print("head", head)
print("zeroed", h.pread(4096, 8192) == bytes(4096), "trimmed", h.pread(4, 16384))
try:
    h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO)
except nbd.Error as e:
    print("fastzero", e.errno)
entries = []
def f(meta, off, e, err):
    if meta == "base:allocation":
        entries.extend(e)
h.block_status(131072, 0, f)
print("extents", entries[:4])
`,
    ).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\n${server.stderr()}`);
    });
    expect(out).toMatch(/^size 1048576$/m);
    expect(out).toMatch(/^flags True True True True True True True True False$/m);
    expect(out).toMatch(/^block 1 4096 1048576$/m);
    // FUA on the write, then flush, then cache, each leaving its mark.
    expect(out).toMatch(/^head bytearray\(b'FUA!FLSHCACHE\\x00\\x00\\x00'\)$/m);
    expect(out).toMatch(/^zeroed True trimmed bytearray\(b'TTTT'\)$/m);
    expect(out).toMatch(/^fastzero ENOTSUP$/m);
    expect(out).toMatch(/^extents \[65536, 3, 983040, 0\]$/m);
    await stop(server);
  });

  it('lists exports with descriptions and passes the export name to the script', async () => {
    const server = await serve([join(FIXTURES, 'callbacks.py')]);
    const list = await run('nbdinfo', ['--list', '--json', server.uri]);
    expect(list.code).toBe(0);
    const exports = (JSON.parse(list.stdout.toString()) as { exports: { 'export-name': string; description?: string }[] }).exports;
    expect(exports.map((e) => e['export-name'])).toEqual(['plain', 'described', 'bytes-name']);
    expect(exports[1].description).toBe('an export with a description');

    const named = await run('nbdinfo', ['--json', `nbd+unix:///plain?socket=${server.socket}`]);
    expect(named.code).toBe(0);
    expect(JSON.parse(named.stdout.toString()).exports[0].description).toBe('export plain');

    const refused = await run('nbdinfo', [`nbd+unix:///refuse?socket=${server.socket}`]);
    expect(refused.code).not.toBe(0);
    const log = await server.logged(/PermissionError: export refused/);
    expect(log).toMatch(/callbacks\.py: open: error: Traceback \(most recent call last\):/);
    expect(log).toMatch(/PermissionError: export refused/);
    await stop(server);
  });

  it('prints a traceback in nbdkit\'s form, sends EIO or the set_error errno, and keeps serving', async () => {
    const server = await serve([join(FIXTURES, 'callbacks.py')]);
    const out = await nbdPython(
      server.uri,
      `
import errno
for offset in (4096 * 13, 4096 * 14):
    try:
        h.pwrite(b"y" * 4096, offset)
        print("no error")
    except nbd.Error as e:
        print("errno", e.errno)
h.pwrite(b"z" * 4096, 0)
print("still serving", h.pread(4, 0))
`,
    );
    expect(out).toMatch(/^errno ENOSPC\nerrno EIO\nstill serving bytearray\(b'zzzz'\)$/m);
    const stderr = await server.logged(/\n ValueError: unlucky offset\n/);
    expect(stderr).toMatch(
      /callbacks\.py: pwrite: error: Traceback \(most recent call last\):\n {3}File "[^"]*callbacks\.py", line \d+, in pwrite\n/,
    );
    expect(stderr).toMatch(/\n ValueError: unlucky offset\n/);
    expect(stderr).toMatch(/\n OSError: \[Errno \d+\] pretend the disk is full\n/);
    // The glue's own frames are not part of the traceback.
    expect(stderr).not.toMatch(/nbdkit-ts glue/);
    await stop(server);
  });

  it('under -s keeps print() off the socket', async () => {
    const program = `
import nbd
h = nbd.NBD()
h.connect_command(["node", ${JSON.stringify(join(ROOT, 'dist', 'cli.js'))}, "-s", "python",
                   ${JSON.stringify(join(FIXTURES, 'callbacks.py'))}, "print=yes", "size=64K"])
h.pwrite(b"abcd" * 1024, 4096)
print(h.pread(8, 4096), h.get_size())
`;
    const result = await run('/usr/bin/python3', ['-c', program], { env });
    expect(result.stderr).toMatch(/pread 8 bytes at 4096/);
    expect(result.stdout.toString()).toBe("bytearray(b'abcdabcd') 65536\n");
    expect(result.code).toBe(0);
  });

  it('runs the RAM disk example and moves 32 MiB requests intact', async () => {
    const server = await serve([join(EXAMPLES, 'ramdisk.py'), 'size=64M']);
    const out = await nbdPython(
      server.uri,
      `
import hashlib, os
data = os.urandom(32 * 1024 * 1024)
h.pwrite(data, 16 * 1024 * 1024)
back = h.pread(32 * 1024 * 1024, 16 * 1024 * 1024)
print("same", back == data, h.pread(16, 0) == bytes(16))
`,
    );
    expect(out).toMatch(/^same True True$/m);
    await stop(server);
  });
});

describe('python plugin, API version 1', () => {
  it('calls the seed\'s argument lists: pread returns data, zero gets may_trim, no flags', async () => {
    const server = await serve([join(FIXTURES, 'api1.py')]);
    const out = await nbdPython(
      server.uri,
      `
h.pwrite(b"v1data", 100)
print("read", h.pread(6, 100))
h.trim(4, 200)
h.zero(4, 300)
h.zero(4, 400, nbd.CMD_FLAG_NO_HOLE)
h.flush()
print("after", h.pread(5, 0), h.pread(4, 200), h.pread(4, 300), h.pread(4, 400))
try:
    h.pread(4096, 61440)
except nbd.Error as e:
    print("short", e.errno)
`,
    );
    expect(out).toMatch(/^read bytearray\(b'v1data'\)$/m);
    expect(out).toMatch(/^after bytearray\(b'flush'\) bytearray\(b'tttt'\) bytearray\(b'MMMM'\) bytearray\(b'ZZZZ'\)$/m);
    expect(out).toMatch(/^short EIO$/m);
    expect(await server.logged(/api1\.py: buffer returned from pread is too small/)).toMatch(
      /api1\.py: buffer returned from pread is too small/,
    );
    await stop(server);
  });

  it('runs the API 1 file example: reads, writes and flushes a real file', async () => {
    const image = join(work, 'v1.img');
    const content = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;
    writeFileSync(image, content);
    const server = await serve([join(EXAMPLES, 'file-v1.py'), 'file=v1.img']);
    const copy = join(work, 'v1-copy.img');
    const copied = await run('nbdcopy', [server.uri, copy]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(readFileSync(copy).equals(content)).toBe(true);
    await nbdPython(server.uri, 'h.pwrite(b"written by python" * 256, 4096)\nh.flush()');
    await stop(server);
    expect(readFileSync(image).subarray(4096, 4096 + 17).toString()).toBe('written by python');
  });
});

describe('python plugin and host files', () => {
  it('opens host files relative to the working directory and syncs them for real', async () => {
    const dir = mkdtempSync(join(work, 'cwd-'));
    const content = Buffer.alloc(256 * 1024, 0x33);
    writeFileSync(join(dir, 'disk.img'), content);
    const server = await serve([join(FIXTURES, 'hostfiles.py')], dir);
    const out = await nbdPython(
      server.uri,
      `
print(h.get_size(), h.pread(4, 1000))
h.pwrite(b"HOST", 2000)
h.flush()
`,
    );
    expect(out).toBe("262144 bytearray(b'3333')\n");
    const disk = readFileSync(join(dir, 'disk.img'));
    expect(disk.subarray(2000, 2004).toString()).toBe('HOST');
    await stop(server);
    expect(readFileSync(join(dir, 'opened.log'), 'utf8')).toBe('opened disk.img\nclosed\n');
  });

  // The host's /dev/shm replaces pyodide's own, empty one.
  it('serves a disk image kept in /dev/shm', async () => {
    const dir = mkdtempSync(join('/dev/shm', 'nbdkit-ts-test-'));
    try {
      const image = join(dir, 'disk.img');
      writeFileSync(image, Buffer.alloc(65536, 0x5e));
      const server = await serve([join(EXAMPLES, 'file.py'), `file=${image}`]);
      const out = await nbdPython(server.uri, 'print(h.get_size(), h.pread(2, 100))\nh.pwrite(b"shm", 200)\nh.flush()');
      expect(out).toBe("65536 bytearray(b'^^')\n");
      await stop(server);
      expect(readFileSync(image).subarray(200, 203).toString()).toBe('shm');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves the API 2 file example to nbdcopy both ways', async () => {
    const image = join(work, 'v2.img');
    const source = join(work, 'v2-source.img');
    const content = Buffer.alloc(3 * 1024 * 1024 + 512);
    for (let i = 0; i < content.length; i++) content[i] = (i * 13 + (i >> 12)) & 0xff;
    writeFileSync(source, content);
    writeFileSync(image, Buffer.alloc(content.length));
    const server = await serve([join(EXAMPLES, 'file.py'), `file=${image}`]);
    const up = await run('nbdcopy', [source, server.uri]);
    expect(up.code, up.stderr).toBe(0);
    const back = join(work, 'v2-back.img');
    const down = await run('nbdcopy', [server.uri, back]);
    expect(down.code, down.stderr).toBe(0);
    await stop(server);
    expect(readFileSync(image).equals(content)).toBe(true);
    expect(readFileSync(back).equals(content)).toBe(true);
  });
});
