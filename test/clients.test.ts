/**
 * nbdkit-ts driven by real NBD clients: qemu-io, qemu-img, nbdcopy, nbdinfo and libnbd's Python
 * bindings, over Unix sockets, TCP on 127.0.0.1, and stdin/stdout (-s).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, nbdPython, run, runNbdkitTs, startServer } from './helpers/server.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-clients-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('memory plugin with real clients', () => {
  it('qemu-io pattern writes read back, and unwritten areas read as zero', async () => {
    const server = await startServer(['memory', '16M']);
    try {
      const image = `nbd+unix:///?socket=${server.socket}`;
      const write = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xa5 1M 64k', '-c', 'write -P 0x5a 15M 1M', image]);
      expect(write.code, write.stderr).toBe(0);
      const read = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0xa5 1M 64k', '-c', 'read -P 0x5a 15M 1M', '-c', 'read -P 0 0 1M', image]);
      expect(read.code, read.stderr).toBe(0);
      expect(read.stdout.toString()).not.toMatch(/Pattern verification failed/);
      // A wrong pattern must be detected, or the test above proves nothing.
      const wrong = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x11 1M 64k', image]);
      expect(wrong.stdout.toString() + wrong.stderr).toMatch(/Pattern verification failed/);
    } finally {
      await server.stop();
    }
  });

  it('nbdcopy round trips 8 MiB of random data', async () => {
    const input = join(work, 'in.raw');
    const output = join(work, 'out.raw');
    const data = randomBytes(8 * 1024 * 1024);
    writeFileSync(input, data);
    const server = await startServer(['memory', '8M']);
    try {
      const up = await run('nbdcopy', [input, server.uri]);
      expect(up.code, up.stderr).toBe(0);
      const down = await run('nbdcopy', [server.uri, output]);
      expect(down.code, down.stderr).toBe(0);
      expect(readFileSync(output).equals(data)).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it('libnbd sees pipelined requests answered correctly', async () => {
    const server = await startServer(['memory', '4M']);
    try {
      const out = await nbdPython(
        server.uri,
        `
import os
blocks = [os.urandom(4096) for i in range(64)]
cookies = [h.aio_pwrite(blocks[i], i * 65536) for i in range(64)]
while h.aio_in_flight() > 0: h.poll(-1)
for c in cookies: assert h.aio_command_completed(c)
bufs = [nbd.Buffer(4096) for i in range(64)]
for i in range(64): h.aio_pread(bufs[i], i * 65536)
while h.aio_in_flight() > 0: h.poll(-1)
print(all(bufs[i].to_bytearray() == blocks[i] for i in range(64)))
`,
      );
      expect(out.trim()).toBe('True');
    } finally {
      await server.stop();
    }
  });
});

describe('file plugin', () => {
  it('qemu-img convert -n writes a disk through the file plugin', async () => {
    const source = join(work, 'source.raw');
    const target = join(work, 'target.raw');
    const data = randomBytes(4 * 1024 * 1024);
    writeFileSync(source, data);
    writeFileSync(target, Buffer.alloc(data.length));
    const server = await startServer(['file', target]);
    try {
      const convert = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', source, server.uri]);
      expect(convert.code, convert.stderr).toBe(0);
    } finally {
      await server.stop();
    }
    expect(readFileSync(target).equals(data)).toBe(true);
  });

  it('file=PATH serves the file read-only with -r and refuses writes with EPERM', async () => {
    const path = join(work, 'ro.raw');
    writeFileSync(path, Buffer.alloc(65536, 0x42));
    const server = await startServer(['-r', 'file', `file=${path}`]);
    try {
      const out = await nbdPython(
        server.uri,
        `
print(h.is_read_only(), h.pread(4, 100) == b"BBBB")
try:
    h.pwrite(b"x", 0)
except nbd.Error as e:
    print("errno", e.errno)
`,
      );
      expect(out.split('\n')[0]).toBe('True True');
      expect(out).toContain('errno EPERM');
    } finally {
      await server.stop();
    }
  });
});

describe('transports', () => {
  it('serves TCP on 127.0.0.1 with -p', async () => {
    // Port 0 is not allowed by nbdkit either; pick one from a throwaway listener.
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const result = await runNbdkitTs(['-i', '127.0.0.1', '-p', String(port), 'memory', '1M', '--run', 'nbdinfo --size "$uri"']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('1048576');
  });

  it('-s serves one client on stdin/stdout under libnbd connect_command', async () => {
    const script = `
import nbd
h = nbd.NBD()
h.connect_command([${JSON.stringify(process.execPath)}, ${JSON.stringify(CLI)}, "-s", "--exit-with-parent", "memory", "1M"])
h.pwrite(b"stdio!", 4096)
print(h.get_size(), h.pread(6, 4096).decode())
h.shutdown()
`;
    const result = await run('/usr/bin/python3', ['-c', script]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('1048576 stdio!');
  });
});

describe('JavaScript plugins', () => {
  it('an async pread/pwrite plugin round trips data and honours its thread model', async () => {
    const server = await startServer(['js', 'test/fixtures/js/async-ramdisk.mjs'], { cwd: process.cwd() });
    try {
      const out = await nbdPython(
        server.uri,
        `
import os
data = os.urandom(65536)
cookies = [h.aio_pwrite(data[i*4096:(i+1)*4096], i*4096) for i in range(16)]
while h.aio_in_flight() > 0: h.poll(-1)
for c in cookies: h.aio_command_completed(c)
print(h.pread(65536, 0) == data)
`,
      );
      expect(out.trim()).toBe('True');
      const map = await run('nbdinfo', ['--map', server.uri]);
      expect(map.stdout.toString()).toMatch(/^\s+0\s+524288\s+0\s+data\n\s+524288\s+524288\s+3\s+hole,zero\n$/);
    } finally {
      await server.stop();
    }
  });

  it('plugin errors become NBD errors with the chosen errno, and the server goes on', async () => {
    const server = await startServer(['js', 'script=test/fixtures/js/failing.mjs']);
    try {
      const out = await nbdPython(
        server.uri,
        `
for off in (0, 4096):
    try:
        h.pread(512, off)
    except nbd.Error as e:
        print("errno", e.errno)
print(h.pread(4, 8192) == b"\\x07" * 4)
`,
      );
      expect(out.split('\n').slice(0, 3)).toEqual(['errno ENOSPC', 'errno EIO', 'True']);
      expect(await server.logged('nbdkit-ts: error: pread: plain failure')).toContain('nbdkit-ts: error: pread: plain failure');
    } finally {
      await server.stop();
    }
  });
});
