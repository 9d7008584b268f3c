/**
 * Hostile and careless clients, integrity under load, and clean shutdown. After each case the
 * server still serves a well-behaved client correctly, and its memory stays bounded.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NBD_CMD, RawClient } from './helpers/raw-client.js';
import { type RunningServer, nbdPython, run, startServer } from './helpers/server.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-resilience-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function healthy(server: RunningServer): Promise<void> {
  const out = await nbdPython(server.uri, 'h.pwrite(b"still here", 512)\nprint(h.pread(10, 512).decode())');
  expect(out.trim()).toBe('still here');
}

describe('hostile clients', () => {
  it('survives hundreds of parallel connections, all served', async () => {
    const server = await startServer(['memory', '16M']);
    try {
      const clients = await Promise.all(Array.from({ length: 300 }, () => RawClient.connect(server.socket)));
      await Promise.all(clients.map((c) => c.handshake()));
      clients.forEach((c, i) => c.sendRequest(NBD_CMD.READ, BigInt(i * 512), 512, { cookie: BigInt(i) }));
      const replies = await Promise.all(clients.map((c) => c.readSimpleReply(512)));
      expect(replies.every((r, i) => r.error === 0 && r.cookie === BigInt(i))).toBe(true);
      clients.forEach((c) => c.end());
      await healthy(server);
    } finally {
      await server.stop();
    }
  });

  it('handshakes that never finish do not stall other clients of a serialised plugin', async () => {
    const server = await startServer(['js', 'test/fixtures/js/async-ramdisk.mjs']);
    try {
      const stalled = await Promise.all(Array.from({ length: 50 }, () => RawClient.connect(server.socket)));
      await Promise.all(stalled.slice(0, 25).map((c) => c.greet())); // half stop after the greeting
      await healthy(server);
      stalled.forEach((c) => c.end());
    } finally {
      await server.stop();
    }
  });

  it('serialize_connections: clients take turns, and a stalled handshake does not hold the turn', async () => {
    const server = await startServer(['js', 'test/fixtures/js/one-connection.mjs']);
    try {
      const stalled = await RawClient.connect(server.socket);
      await stalled.greet(); // and nothing more
      await healthy(server);
      const first = await RawClient.connect(server.socket);
      await first.handshake();
      const second = await RawClient.connect(server.socket);
      await second.greet();
      let secondOpened = false;
      const opening = second.go().then(() => (secondOpened = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(secondOpened).toBe(false); // waits for the first connection to end
      first.end();
      await opening;
      expect(secondOpened).toBe(true);
      second.end();
      stalled.end();
    } finally {
      await server.stop();
    }
  });

  it('a client that pipelines big reads and never reads the replies cannot grow memory without bound', async () => {
    const server = await startServer(['memory', '4G']);
    try {
      const before = rssMiB(server.process.pid!);
      const greedy = await RawClient.connect(server.socket);
      await greedy.handshake();
      greedy.socket.pause(); // never read
      // 256 requests of 32 MiB: 8 GiB of replies if the server buffered them all.
      for (let i = 0; i < 256; i++) greedy.sendRequest(NBD_CMD.READ, BigInt(i) * 32n * 1024n * 1024n, 32 * 1024 * 1024, { cookie: BigInt(i) });
      let peak = 0;
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        peak = Math.max(peak, rssMiB(server.process.pid!));
      }
      expect(peak - before).toBeLessThan(600);
      await healthy(server);
      greedy.end();
      await healthy(server);
    } finally {
      await server.stop();
    }
  });

  it('64 pipelined reads then a vanishing client (the case that aborts native nbdkit memory)', async () => {
    const server = await startServer(['memory', '64M']);
    try {
      for (let round = 0; round < 5; round++) {
        const client = await RawClient.connect(server.socket);
        await client.handshake();
        for (let i = 0; i < 64; i++) client.sendRequest(NBD_CMD.READ, BigInt(i) * 1048576n, 1048576, { cookie: BigInt(i) });
        client.end();
      }
      await healthy(server);
      expect(server.process.exitCode).toBe(null);
    } finally {
      await server.stop();
    }
  });

  it('garbage client flags, and a 4 GiB write that is cut off mid-payload, end only those connections', async () => {
    const server = await startServer(['memory', '8G']);
    try {
      const flags = await RawClient.connect(server.socket);
      await flags.greet(0xdeadbeef);
      expect(await flags.closedByServer()).toBe(true);
      const writer = await RawClient.connect(server.socket);
      await writer.handshake();
      writer.sendRequest(NBD_CMD.WRITE, 0n, 0xffffffff, { payload: Buffer.alloc(1024 * 1024, 0x77) });
      writer.end();
      await healthy(server);
      const rss = rssMiB(server.process.pid!);
      expect(rss).toBeLessThan(400);
    } finally {
      await server.stop();
    }
  });

  it('a bad request magic after the handshake ends only that connection', async () => {
    const server = await startServer(['memory', '1M']);
    try {
      const client = await RawClient.connect(server.socket);
      await client.handshake();
      client.write(Buffer.alloc(28, 0x41));
      expect(await client.closedByServer()).toBe(true);
      await healthy(server);
    } finally {
      await server.stop();
    }
  });
});

describe('integrity under load', () => {
  it('fio random writes with crc32c verification over 4 jobs: zero errors', async () => {
    const server = await startServer(['memory', '64M']);
    try {
      const fio = await run('fio', [
        '--name=verify', '--ioengine=nbd', `--uri=${server.uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16',
        '--numjobs=4', '--size=16M', '--offset_increment=16M', '--verify=crc32c', '--do_verify=1',
        '--verify_fatal=1', '--verify_state_save=0', '--group_reporting',
      ], { timeoutMs: 120_000, cwd: work });
      expect(fio.code, fio.stdout.toString() + fio.stderr).toBe(0);
      expect(fio.stdout.toString()).toMatch(/err= 0/);
      expect(fio.stdout.toString()).not.toMatch(/verify: bad/);
    } finally {
      await server.stop();
    }
  });
});

describe('integrity under load on a language plugin', () => {
  it('fio crc32c verification on the Lua RAM disk example: zero errors', async () => {
    const server = await startServer(['lua', 'examples/lua/ramdisk.lua', 'size=32M']);
    try {
      const fio = await run('fio', [
        '--name=verify', '--ioengine=nbd', `--uri=${server.uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=8',
        '--numjobs=2', '--size=8M', '--offset_increment=16M', '--verify=crc32c', '--do_verify=1',
        '--verify_fatal=1', '--verify_state_save=0', '--group_reporting',
      ], { timeoutMs: 120_000, cwd: work });
      expect(fio.code, fio.stdout.toString() + fio.stderr).toBe(0);
      expect(fio.stdout.toString()).toMatch(/err= 0/);
    } finally {
      await server.stop();
    }
  });

  it('FLUSH and FUA reach the plugin', async () => {
    const log = join(work, 'flush.log');
    const server = await startServer(['js', 'test/fixtures/js/flush-recorder.mjs', `log=${log}`]);
    try {
      await nbdPython(server.uri, 'h.pwrite(b"a" * 512, 0)\nh.pwrite(b"b" * 512, 512, nbd.CMD_FLAG_FUA)\nh.flush()');
      expect(readFileSync(log, 'utf8')).toBe('pwrite 0 fua=false\npwrite 512 fua=true\nflush\n');
    } finally {
      await server.stop();
    }
  });
});

describe('signals', () => {
  it('SIGTERM finishes in-flight requests, then runs close, cleanup and unload, and removes the socket', async () => {
    const log = join(work, 'lifecycle.log');
    const server = await startServer(['js', 'test/fixtures/js/lifecycle.mjs', `log=${log}`]);
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.READ, 0n, 4096, { cookie: 42n });
    await new Promise((r) => setTimeout(r, 50));
    server.process.kill('SIGTERM');
    const reply = await client.readSimpleReply(4096);
    expect([reply.cookie, reply.error, reply.data[0]]).toEqual([42n, 0, 0x61]);
    const code = await server.stop();
    expect(code).toBe(0);
    expect(existsSync(server.socket)).toBe(false);
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toEqual([
      'config_complete', 'get_ready', 'open', 'close', 'cleanup', 'unload',
    ]);
  });
});
