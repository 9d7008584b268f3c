/**
 * The in-process API (src/embed.ts, exported by src/index.ts): servers started inside this test
 * process with a plugin object or a named plugin, on a Unix socket, TCP or a socket handed over
 * by descriptor, talked to by real clients, and closed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type NbdServer, type Plugin, PluginError, startServer, ThreadModel } from '../src/index.js';
import { CLIENT_ENV, nbdPython, ROOT, run } from './helpers/server.js';

const work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-api-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A RAM disk that records which callbacks ran, as a class (its methods use `this`). */
class RecordingDisk implements Plugin<{ exportName: string }> {
  readonly calls: string[] = [];
  disk = new Uint8Array(1 << 20);
  config(key: string, value: string) {
    this.calls.push(`config ${key}=${value}`);
  }
  thread_model() {
    return ThreadModel.PARALLEL;
  }
  open(_readonly: boolean, connection: { exportName: string }) {
    this.calls.push(`open ${connection.exportName}`);
    return { exportName: connection.exportName };
  }
  close() {
    this.calls.push('close');
  }
  cleanup() {
    this.calls.push('cleanup');
  }
  unload() {
    this.calls.push('unload');
  }
  get_size() {
    return BigInt(this.disk.length);
  }
  pread(_h: unknown, buf: Uint8Array, offset: number | bigint) {
    buf.set(this.disk.subarray(Number(offset), Number(offset) + buf.length));
  }
  pwrite(_h: unknown, buf: Uint8Array, offset: number | bigint) {
    if (Number(offset) === 0) throw new PluginError('sector 0 is read-only here', 'EPERM');
    this.disk.set(buf, Number(offset));
  }
}

describe('startServer', () => {
  it('serves a plugin object on a Unix socket, then close() runs close, cleanup and unload and removes the socket', async () => {
    const plugin = new RecordingDisk();
    const socket = join(work, 'object.sock');
    const server: NbdServer = await startServer({ plugin, params: { label: 'x' }, listen: { unix: socket }, exportName: 'disk1' });
    expect(server.unixSocket).toBe(socket);
    expect(server.uri).toBe(`nbd+unix:///disk1?socket=${socket}`);
    const out = await nbdPython(
      server.uri,
      `import errno
h.pwrite(b'hello' * 100, 4096)
print(h.pread(500, 4096) == b'hello' * 100, h.get_size())
try:
    h.pwrite(b'x', 0)
except nbd.Error as e:
    print(e.errnum == errno.EPERM)`,
    );
    expect(out.trim().split(/\s+/)).toEqual(['True', '1048576', 'True']);
    await server.close();
    expect(plugin.calls).toEqual(['config label=x', 'open disk1', 'close', 'cleanup', 'unload']);
    expect(existsSync(socket)).toBe(false);
  });

  it('serves on TCP port 0 of the loopback address and tells the port chosen', async () => {
    const server = await startServer({ plugin: 'memory', params: ['4M'], listen: { port: 0, host: '127.0.0.1' }, readonly: true });
    try {
      expect(server.port).toBeGreaterThan(0);
      expect(server.uri).toBe(`nbd://localhost:${server.port}`);
      const info = await run('nbdinfo', ['--size', `nbd://127.0.0.1:${server.port}`], { env: CLIENT_ENV });
      expect(info.stdout.toString().trim()).toBe('4194304');
      const writable = await run('nbdinfo', ['--can', 'write', `nbd://127.0.0.1:${server.port}`], { env: CLIENT_ENV });
      expect(writable.code).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('runs a script in another language by name, as the command does (Lua here)', async () => {
    const server = await startServer({ plugin: 'lua', params: [join(ROOT, 'examples/lua/ramdisk.lua'), 'size=2M'] });
    try {
      const out = await nbdPython(server.uri, `h.pwrite(b'lua' * 10, 100)
print(h.pread(30, 100).decode(), h.get_size())`);
      expect(out.trim()).toBe(`${'lua'.repeat(10)} 2097152`);
    } finally {
      await server.close();
    }
  });

  it('stops when the plugin asks (nbdkit.shutdown), resolving closed', async () => {
    const script = join(work, 'stop.lua');
    writeFileSync(
      script,
      `function open(readonly) return 1 end
function get_size(h) return 1048576 end
function pread(h, count, offset) nbdkit.shutdown() return string.rep("\\0", count) end
`,
    );
    const server = await startServer({ plugin: script });
    const out = await nbdPython(server.uri, 'print(len(h.pread(512, 0)))');
    expect(out.trim()).toBe('512');
    await server.closed;
    expect(existsSync(server.unixSocket!)).toBe(false);
  });

  it('rejects a plugin object without pread, and an option that makes no sense in-process', async () => {
    await expect(startServer({ plugin: { open: () => ({}), get_size: () => 1 } as unknown as Plugin })).rejects.toThrow(/pread/);
    await expect(startServer({ plugin: 'memory', params: ['1M'], args: ['--run', 'true'] })).rejects.toThrow(/--run/);
    await expect(startServer({ plugin: 'memory', params: ['1M'], args: ['--no-such-option'] })).rejects.toThrow(/unrecognized option/);
  });

  it('accepts on a listening socket handed over by file descriptor', async () => {
    // Python makes the listening socket and runs Node with it as fd 3, as a supervisor would.
    const socket = join(work, 'fd.sock');
    const program = `
import { startServer } from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
const server = await startServer({ plugin: 'memory', params: ['3M'], listen: { fd: 3 } });
console.log(server.uri);
process.once('SIGTERM', () => void server.close());`;
    const launcher = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(8)
if s.fileno() != 3: os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.execv(sys.argv[2], [sys.argv[2], '--input-type=module', '-e', sys.argv[3]])`;
    const child = spawn('/usr/bin/python3', ['-c', launcher, socket, process.execPath, program], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const uri = await new Promise<string>((resolve, reject) => {
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        void exited.then((code) => reject(new Error(`exited ${code}`)));
      });
      expect(uri).toBe(`nbd+unix://?socket=${socket}`);
      const info = await run('nbdinfo', ['--size', uri], { env: CLIENT_ENV });
      expect(info.stdout.toString().trim()).toBe('3145728');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
