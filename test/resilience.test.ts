/**
 * Hostile and careless clients, integrity under load, and clean shutdown. After each case the
 * server still serves a well-behaved client correctly, and its memory stays bounded.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IHAVEOPT, NBD_CMD, NBD_OPT, REQUEST_MAGIC, RawClient } from './helpers/raw-client.js';
import { seededUniform } from './helpers/random.js';
import { type RunningServer, nbdPython, rssMiB, run, startServer } from './helpers/server.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-resilience-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));


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

/**
 * Traffic no polite client sends, from a seeded generator so that a failure replays: client
 * flags, options (unknown ones, lengths that lie, truncated data), then requests with random
 * magic, commands, flags, offsets and lengths (within, across and far past the end; up to
 * 4 GiB), writes whose payload is whole, cut short or missing, and connections dropped at any
 * point. `sessions` connections, up to three at a time.
 */
async function storm(socket: string, seed: number, sessions: number): Promise<void> {
  const below = seededUniform(seed);
  const pick = <T>(choices: T[]): T => choices[below(choices.length)];
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
  };
  const option = (code: number, data: Buffer, declared = data.length): Buffer => {
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(IHAVEOPT, 0);
    head.writeUInt32BE(code >>> 0, 8);
    head.writeUInt32BE(declared >>> 0, 12);
    return Buffer.concat([head, data]);
  };
  const size = 64 * 1024 * 1024;
  const request = (): Buffer => {
    const command = pick([0, 0, 1, 1, 2, 3, 4, 5, 6, 7, below(16), below(65536)]);
    const length = pick([0, 1, 512, 4096, 65536, 262144, 1 << 20, (32 << 20) + 1, 0xffffffff, below(70000)]);
    const head = Buffer.alloc(28);
    head.writeUInt32BE(below(30) === 0 ? below(2 ** 31) : REQUEST_MAGIC, 0);
    head.writeUInt16BE(pick([0, 0, 1, 2, 4, 8, 16, below(65536)]), 4);
    head.writeUInt16BE(command, 6);
    head.writeBigUInt64BE(BigInt(below(2 ** 31)), 8);
    head.writeBigUInt64BE(pick([0n, BigInt(below(size)), BigInt(size), BigInt(size - 1), 2n ** 53n, 2n ** 64n - 1n]), 16);
    head.writeUInt32BE(length >>> 0, 24);
    if (command !== NBD_CMD.WRITE) return head;
    const payload = Math.min(pick([length, below(length + 1), 0]), 2 << 20);
    return Buffer.concat([head, Buffer.alloc(payload, below(256))]);
  };
  /** One connection's bytes, with pauses (milliseconds) between them, drawn before any is sent. */
  const plan = (): (Buffer | number)[] => {
    const steps: (Buffer | number)[] = [u32(below(4) === 0 ? below(2 ** 31) : 1)];
    for (let i = below(4); i > 0; i--) {
      const data = Buffer.alloc(below(48), below(256));
      steps.push(option(pick([1, 2, 3, 5, 6, 7, 8, 9, 10, below(100)]), data, below(20) === 0 ? below(2 ** 31) : data.length));
    }
    if (below(10) > 0) {
      if (below(2)) steps.push(option(NBD_OPT.STRUCTURED_REPLY, Buffer.alloc(0)));
      steps.push(option(NBD_OPT.GO, Buffer.alloc(6)));
      for (let i = below(30); i > 0; i--) {
        steps.push(request());
        if (below(8) === 0) steps.push(below(3));
      }
    } else {
      steps.push(Buffer.alloc(below(200), below(256)));
    }
    steps.push(below(20));
    return steps;
  };
  const play = async (steps: (Buffer | number)[]): Promise<void> => {
    const client = await RawClient.connect(socket);
    for (const step of steps) {
      if (typeof step === 'number') await new Promise((resolve) => setTimeout(resolve, step));
      else client.write(step);
    }
    client.end();
  };
  for (let done = 0; done < sessions; ) {
    const together = Math.min(1 + below(3), sessions - done);
    await Promise.all(Array.from({ length: together }, plan).map(play));
    done += together;
  }
}

describe('random hostile traffic', () => {
  const disk = (): string => {
    const path = join(work, `storm-${Math.random().toString(36).slice(2)}.img`);
    writeFileSync(path, '');
    truncateSync(path, 64 * 1024 * 1024);
    return path;
  };
  const cases: [string, () => string[]][] = [
    ['memory', () => ['memory', '64M']],
    ['file (request threads write and reply themselves)', () => ['file', disk()]],
    ['a Lua script', () => ['lua', 'examples/lua/file.lua', `file=${disk()}`]],
  ];
  for (const [name, args] of cases) {
    it(`${name}: a seeded storm of malformed options and requests leaves the server serving`, async () => {
      const server = await startServer(args());
      try {
        await storm(server.socket, 20261122, 60);
        expect(server.running()).toBe(true);
        // Every complaint is one of nbdkit's one-line reports about the client, none an internal failure.
        const lines = server.stderr().split('\n').filter(Boolean);
        expect(lines.length).toBeGreaterThan(0);
        expect(lines.filter((line) => !/^nbdkit-ts: error: (invalid request: |unknown option version|client option data too long|client sent unknown flags)/.test(line))).toEqual([]);
        await healthy(server);
      } finally {
        await server.stop();
      }
    });
  }
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
  it('SIGTERMs arriving all through the shutdown still end with exit status 0', async () => {
    // Eight times: a gap in the handling is narrow, though each round fires thousands of signals.
    for (let round = 0; round < 8; round++) {
      const server = await startServer(['memory', '1M']);
      const client = await RawClient.connect(server.socket);
      await client.handshake();
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      server.process.once('exit', (code, signal) => (exit = { code, signal }));
      const deadline = Date.now() + 20_000;
      while (exit === undefined && Date.now() < deadline) {
        server.process.kill('SIGTERM');
        await new Promise((resolve) => setImmediate(resolve));
      }
      client.end();
      await server.stop();
      expect(exit).toEqual({ code: 0, signal: null });
    }
  });

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
