/**
 * Receiving on a thread: after a connection's first large write, a thread of the fs-native
 * addon receives its requests (for the file and memory plugins it also does the writes, and
 * sends the reads; for them a first large read moves the requests to the thread too). Checked
 * from the outside: the data that lands, the replies to what must be refused, failed writes,
 * clients that go away or misbehave mid-stream, and many writes pipelined at once.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NBD_CMD, NBD_ERR, RawClient } from './helpers/raw-client.js';
import { CLI, CLIENT_ENV, nbdPython, run, serversStoppedAfterEach } from './helpers/server.js';

const MiB = 1024 * 1024;
const ON_THREAD = 'receiving requests on a thread';
const WRITES_ITSELF = 'which writes to the file itself';
const SENDS_READS = 'and sends reads from it';
const READS_SENT = /the request thread sent (\d+) read replies itself/g;

const startServer = serversStoppedAfterEach();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-thread-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function diskFile(name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, '');
  truncateSync(path, size);
  return path;
}

/**
 * On one connection: a large write (which moves receiving to the thread), then every kind of
 * request the thread hands on or does, checked by reading back on the same connection.
 */
const MIXED_REQUESTS = `
import os
big = os.urandom(256 * 1024)
h.pwrite(big, 0)
small = os.urandom(512)
h.pwrite(small, 1024 * 1024 + 7)
assert h.pread(256 * 1024, 0) == big, "large write"
assert h.pread(512, 1024 * 1024 + 7) == small, "small write"
h.pwrite(big, 2 * 1024 * 1024, nbd.CMD_FLAG_FUA)
h.flush()
h.zero(4096, 4096)
assert h.pread(4096, 4096) == bytes(4096), "zero"
h.trim(65536, 2 * 1024 * 1024)
rest = h.pread(256 * 1024 - 65536, 2 * 1024 * 1024 + 65536)
assert rest == big[65536:], "after trim"
try:
    h.pwrite(big, h.get_size() - 4096)
    print("past the end: accepted")
except nbd.Error as e:
    print("past the end:", e.errno)
h.pwrite(b"still here", 3 * 1024 * 1024)
print(h.pread(10, 3 * 1024 * 1024).decode())
`;

describe('receiving requests on a thread', () => {
  it('file: writes done by the thread land on disk, the rest is served as before', async () => {
    const disk = diskFile('mixed.img', 8 * MiB);
    const server = await startServer(['-v', 'file', disk]);
    const out = await nbdPython(server.uri, MIXED_REQUESTS);
    expect(out).toBe('past the end: ENOSPC\nstill here\n');
    expect(await server.logged(`${ON_THREAD}, ${WRITES_ITSELF}`)).toContain(`${ON_THREAD}, ${WRITES_ITSELF}`);
    expect(readFileSync(disk).subarray(3 * MiB, 3 * MiB + 10).toString()).toBe('still here');
  });

  it('memory: writes done by the thread into the memory file read back, the rest is served as before', async () => {
    const server = await startServer(['-v', 'memory', '8M']);
    const out = await nbdPython(server.uri, MIXED_REQUESTS);
    expect(out).toBe('past the end: ENOSPC\nstill here\n');
    expect(await server.logged(`${ON_THREAD}, ${WRITES_ITSELF}`)).toContain(`${ON_THREAD}, ${WRITES_ITSELF}`);
  });

  it('memory: a disk too large to map keeps its pages in JavaScript, written through the thread', async () => {
    const server = await startServer(['-v', 'memory', '64T']);
    const out = await nbdPython(server.uri, MIXED_REQUESTS);
    expect(out).toBe('past the end: ENOSPC\nstill here\n');
    expect(await server.logged(ON_THREAD)).toContain(ON_THREAD);
    expect(server.stderr()).not.toContain(WRITES_ITSELF);
  });

  it('file: a copy by nbdcopy is exact', async () => {
    const source = join(dir, 'source.img');
    writeFileSync(source, randomBytes(16 * MiB));
    const disk = diskFile('copy.img', 16 * MiB);
    const server = await startServer(['-v', 'file', disk]);
    const copy = await run('nbdcopy', ['--request-size=262144', source, server.uri], { env: CLIENT_ENV });
    expect(copy.code, copy.stderr).toBe(0);
    expect(readFileSync(disk).equals(readFileSync(source))).toBe(true);
    // (nbdcopy hands each connection 128 MiB at a time: here one connection does the copy.)
    expect(await server.logged(`${ON_THREAD}, ${WRITES_ITSELF}`)).toContain(`${ON_THREAD}, ${WRITES_ITSELF}`);
  });

  it('memory: a copy in and out by nbdcopy over its 4 connections is exact, holes and all', async () => {
    // Over 128 MiB, so that nbdcopy's connections copy side by side: writes on their threads,
    // zeroes for the zero runs (whole MiBs, and 40 KiB pieces across page edges), then reads.
    const size = 200 * MiB;
    const source = Buffer.alloc(size);
    for (let mib = 0; mib < size / MiB; mib++) {
      if (mib % 3 === 2) continue;
      randomBytes(MiB).copy(source, mib * MiB);
      if (mib % 5 === 0) source.fill(0, mib * MiB + 20_000, mib * MiB + 60_960);
    }
    const sourcePath = join(dir, 'memory-source.img');
    const backPath = join(dir, 'memory-back.img');
    writeFileSync(sourcePath, source);
    const server = await startServer(['-v', 'memory', String(size)]);
    const copyIn = await run('nbdcopy', ['--request-size=262144', sourcePath, server.uri], { env: CLIENT_ENV });
    expect(copyIn.code, copyIn.stderr).toBe(0);
    const copyOut = await run('nbdcopy', ['--request-size=262144', server.uri, backPath], { env: CLIENT_ENV });
    expect(copyOut.code, copyOut.stderr).toBe(0);
    expect(readFileSync(backPath).equals(source)).toBe(true);
    expect(await server.logged(`${ON_THREAD}, ${WRITES_ITSELF}`)).toContain(`${ON_THREAD}, ${WRITES_ITSELF}`);
  });

  it('file: a write the file refuses fails that request only, as nbdkit reports it', async () => {
    // A file size limit (1 or 2 MiB: the shell's unit may be 512 or 1024 bytes) makes pwrite
    // past it fail with EFBIG, which NBD calls ENOSPC.
    const disk = diskFile('limited.img', 8 * MiB);
    const socket = join(dir, 'limited.sock');
    const pidFile = join(dir, 'limited.pid');
    const shell = `trap '' XFSZ; ulimit -f 2048; exec "$0" "$@"`;
    const server = run('sh', ['-c', shell, process.execPath, CLI, '-f', '-v', '-U', socket, '-P', pidFile, 'file', disk], {
      env: CLIENT_ENV,
    });
    try {
      const uri = `nbd+unix:///?socket=${socket}`;
      // (The pid file, written once the server listens: see startServer.)
      await waitFor(() => existsSync(pidFile));
      const out = await nbdPython(
        uri,
        `big = bytes(range(256)) * 1024
h.pwrite(big, 0)
try:
    h.pwrite(big, 4 * 1024 * 1024)
    print("accepted")
except nbd.Error as e:
    print(e.errno)
h.pwrite(big, 256 * 1024)
print(h.pread(256 * 1024, 256 * 1024) == big)`,
      );
      expect(out).toBe('ENOSPC\nTrue\n');
    } finally {
      await run('pkill', ['-TERM', '-f', socket]);
    }
    const result = await server;
    expect(result.stderr).toContain(`${ON_THREAD}, ${WRITES_ITSELF}`);
    expect(result.stderr).toContain('error: pwrite: File too large');
  });

  it('SIGTERM with a connection on its thread: the server exits cleanly and removes its socket', async () => {
    const server = await startServer(['-v', 'file', diskFile('sigterm.img', 8 * MiB)]);
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.WRITE, 0n, 262144, { payload: randomBytes(262144), cookie: 1n });
    expect((await client.readSimpleReply()).error).toBe(0);
    expect(await server.logged(ON_THREAD)).toContain(ON_THREAD);
    expect(await server.stop()).toBe(0);
    expect(existsSync(server.socket)).toBe(false);
    expect(await client.closedByServer()).toBe(true);
  });

  /** A file of random data, and a server on a copy of it. */
  async function randomDiskServer(name: string): Promise<{ data: Buffer; disk: string; server: Awaited<ReturnType<typeof startServer>> }> {
    const data = randomBytes(8 * MiB);
    const disk = join(dir, name);
    writeFileSync(disk, data);
    return { data, disk, server: await startServer(['-v', 'file', disk]) };
  }

  it('file: replies from the thread and from the event loop never mix, however far behind the client reads', async () => {
    // Writes the thread replies to itself, interleaved with reads (large replies, queued by
    // the event loop) and refused writes (replied by the event loop), while the client reads
    // nothing: both the thread and the event loop are left with replies the socket cannot take.
    const { data, disk, server } = await randomDiskServer('interleaved.img');
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.WRITE, 0n, 262144, { payload: data.subarray(0, 262144), cookie: 1n });
    expect((await client.readSimpleReply()).error).toBe(0);
    client.socket.pause();
    const written = new Map<bigint, { offset: number; payload: Buffer }>();
    const reads = new Map<bigint, number>();
    const refused = new Set<bigint>();
    for (let i = 0; i < 48; i++) {
      const write = { offset: (i % 16) * 262144, payload: randomBytes(262144) };
      written.set(BigInt(100 + i), write);
      client.sendRequest(NBD_CMD.WRITE, BigInt(write.offset), 262144, { payload: write.payload, cookie: BigInt(100 + i) });
      const readOffset = 4 * MiB + (i % 16) * 262144;
      reads.set(BigInt(200 + i), readOffset);
      client.sendRequest(NBD_CMD.READ, BigInt(readOffset), 262144, { cookie: BigInt(200 + i) });
      if (i % 8 === 0) {
        refused.add(BigInt(300 + i));
        client.sendRequest(NBD_CMD.WRITE, 0n, 65536, { payload: randomBytes(65536), cookie: BigInt(300 + i), flags: 0x80 });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    client.socket.resume();
    const answered = new Set<bigint>();
    for (let i = 0; i < written.size + reads.size + refused.size; i++) {
      const header = await client.read(16);
      expect(header.readUInt32BE(0), `reply ${i}`).toBe(0x67446698);
      const cookie = header.readBigUInt64BE(8);
      expect(answered.has(cookie), `cookie ${cookie} answered twice`).toBe(false);
      answered.add(cookie);
      expect(header.readUInt32BE(4), `cookie ${cookie}`).toBe(refused.has(cookie) ? NBD_ERR.EINVAL : 0);
      const readOffset = reads.get(cookie);
      if (readOffset !== undefined) {
        const payload = await client.read(262144);
        expect(payload.equals(data.subarray(readOffset, readOffset + 262144)), `read ${cookie}`).toBe(true);
      }
    }
    client.end();
    // Each 256 KiB place was written three times, pipelined: it holds one of the three.
    const onDisk = readFileSync(disk);
    for (let place = 0; place < 16; place++) {
      const now = onDisk.subarray(place * 262144, (place + 1) * 262144);
      const candidates = [...written.values()].filter((w) => w.offset === place * 262144).map((w) => w.payload);
      expect(candidates.some((payload) => payload.equals(now)), `place ${place}`).toBe(true);
    }
    expect(await server.logged(`${ON_THREAD}, ${WRITES_ITSELF}`)).toContain(`${ON_THREAD}, ${WRITES_ITSELF}`);
  });

  it('file: writes followed at once by NBD_CMD_DISC are all answered before the server closes', async () => {
    const { server } = await randomDiskServer('disc.img');
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.WRITE, 0n, 262144, { payload: randomBytes(262144), cookie: 1n });
    expect((await client.readSimpleReply()).error).toBe(0);
    // More replies than the socket takes while the client reads nothing (on a Unix socket each
    // small send takes about a kilobyte of its 2 MiB buffer): the thread keeps the rest, to
    // send once the client reads again.
    client.socket.pause();
    const count = 4000;
    const payload = randomBytes(4096);
    for (let i = 0; i < count; i++) {
      client.sendRequest(NBD_CMD.WRITE, BigInt((i % 2048) * 4096), 4096, { payload, cookie: BigInt(10 + i) });
    }
    client.sendRequest(NBD_CMD.DISC, 0n, 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    client.socket.resume();
    const cookies: bigint[] = [];
    for (let i = 0; i < count; i++) {
      const reply = await client.readSimpleReply();
      expect(reply.error).toBe(0);
      cookies.push(reply.cookie);
    }
    expect(cookies.sort((a, b) => Number(a - b))).toEqual(Array.from({ length: count }, (_, i) => BigInt(10 + i)));
    expect(await client.closedByServer()).toBe(true);
  });

  const setups: Record<string, () => string[]> = {
    file: () => ['file', diskFile(`file-${randomBytes(4).toString('hex')}.img`, 8 * MiB)],
    memory: () => ['memory', '8M'],
  };
  for (const [name, args] of Object.entries(setups)) {
    it(`${name}: a client gone mid-payload, or sending garbage, ends its own connection only`, async () => {
      const server = await startServer(['-v', ...args()]);
      const quitter = await RawClient.connect(server.socket);
      await quitter.handshake();
      quitter.sendRequest(NBD_CMD.WRITE, 0n, 262144, { payload: randomBytes(262144), cookie: 1n });
      expect((await quitter.readSimpleReply()).error).toBe(0);
      quitter.sendRequest(NBD_CMD.WRITE, 0n, 262144, { payload: randomBytes(100_000), cookie: 2n });
      quitter.end();

      const garbler = await RawClient.connect(server.socket);
      await garbler.handshake();
      garbler.sendRequest(NBD_CMD.WRITE, 0n, 262144, { payload: randomBytes(262144), cookie: 3n });
      expect((await garbler.readSimpleReply()).error).toBe(0);
      garbler.write(Buffer.alloc(28, 0x5a));
      expect(await garbler.closedByServer()).toBe(true);

      const out = await nbdPython(server.uri, 'h.pwrite(b"alive", 1000)\nprint(h.pread(5, 1000).decode())');
      expect(out.trim()).toBe('alive');
      expect((await server.logged(ON_THREAD, 2)).split(ON_THREAD).length - 1).toBe(2);
      expect(server.running()).toBe(true);
    });

    it(`${name}: reads alone move a connection to the thread, which sends them itself, in simple and structured replies`, async () => {
      const server = await startServer(['-v', ...args()]);
      // Random data written on a connection of its own, then read on two that only read.
      const program = `
import nbd, os, random
rng = random.Random(7)
data = os.urandom(8 * 1024 * 1024)
w = nbd.NBD()
w.connect_uri(${JSON.stringify(server.uri)})
for at in range(0, len(data), 262144):
    w.pwrite(data[at:at + 262144], at)
w.shutdown()
for structured in (True, False):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    h.connect_uri(${JSON.stringify(server.uri)})
    assert h.get_structured_replies_negotiated() == structured
    # A large read first: it moves the connection's requests to the thread.
    assert h.pread(262144, 0) == data[:262144], "first read"
    for i in range(300):
        count = rng.choice([1, 512, 4096, 65536, 262144, 262145, 1048576, rng.randrange(1, 300000)])
        offset = rng.randrange(0, len(data) - count + 1)
        assert h.pread(count, offset) == data[offset:offset + count], (structured, offset, count)
    assert h.pread(4096, len(data) - 4096) == data[-4096:], "last bytes"
    try:
        h.pread(8192, len(data) - 4096)
        print("past the end: accepted")
    except nbd.Error as e:
        print("past the end:", e.errno)
    h.shutdown()
print("done")
`;
      const result = await run('/usr/bin/python3', ['-c', program], { env: CLIENT_ENV });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.toString()).toBe('past the end: EINVAL\npast the end: EINVAL\ndone\n');
      const sendsReads = `${ON_THREAD}, ${WRITES_ITSELF} and replies, ${SENDS_READS}`;
      // The writing connection, and both reading ones.
      expect((await server.logged(sendsReads, 3)).split(sendsReads).length - 1).toBe(3);
      // Each reading connection's thread sent its reads itself: all 301 after the first, but
      // for any that came while the event loop still held the output for the reply before.
      const sent = [...(await server.logged(READS_SENT, 2)).matchAll(READS_SENT)].map((match) => Number(match[1]));
      expect(sent).toHaveLength(2);
      for (const count of sent) {
        expect(count).toBeGreaterThanOrEqual(280);
        expect(count).toBeLessThanOrEqual(301);
      }
    });

    it(`${name}: SIGTERM while the thread waits to send reads a client does not take: a clean exit`, async () => {
      const server = await startServer(args());
      const client = await RawClient.connect(server.socket);
      await client.handshake();
      client.sendRequest(NBD_CMD.READ, 0n, 262144, { cookie: 1n });
      expect((await client.readSimpleReply(262144)).error).toBe(0);
      client.socket.pause();
      for (let i = 0; i < 64; i++) client.sendRequest(NBD_CMD.READ, BigInt(i * 65536), 262144, { cookie: BigInt(10 + i) });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await server.stop()).toBe(0);
      client.socket.resume();
      expect(await client.closedByServer()).toBe(true);
    });

    it(`${name}: many large writes pipelined without reading replies, then refused ones, all answered`, async () => {
      const server = await startServer(args());
      const client = await RawClient.connect(server.socket);
      await client.handshake();
      const count = 96;
      const payloads = Array.from({ length: count }, () => randomBytes(65536 * 4));
      for (let i = 0; i < count; i++) {
        client.sendRequest(NBD_CMD.WRITE, BigInt((i % 32) * 262144), 262144, { payload: payloads[i], cookie: BigInt(i + 1) });
      }
      // Past the end (refused, its payload skipped) and with an unknown flag (refused).
      client.sendRequest(NBD_CMD.WRITE, BigInt(8 * MiB), 262144, { payload: randomBytes(262144), cookie: 1000n });
      client.sendRequest(NBD_CMD.WRITE, 0n, 262144, { payload: randomBytes(262144), cookie: 1001n, flags: 0x80 });
      const errors = new Map<bigint, number>();
      for (let i = 0; i < count + 2; i++) {
        const reply = await client.readSimpleReply();
        errors.set(reply.cookie, reply.error);
      }
      expect([...errors.entries()].filter(([, error]) => error !== 0)).toEqual([
        [1000n, NBD_ERR.ENOSPC],
        [1001n, NBD_ERR.EINVAL],
      ]);
      // Writes in flight together to one place may be done in any order: each 256 KiB place
      // must hold exactly one of the three payloads sent to it.
      client.sendRequest(NBD_CMD.READ, 0n, 8 * MiB, { cookie: 2000n });
      const read = await client.readSimpleReply(8 * MiB);
      for (let slot = 0; slot < 32; slot++) {
        const data = read.data.subarray(slot * 262144, (slot + 1) * 262144);
        const candidates = [slot, slot + 32, slot + 64].map((i) => payloads[i]);
        expect(candidates.some((payload) => payload.equals(data))).toBe(true);
      }
      client.end();
    });
  }
});

async function waitFor(ready: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
