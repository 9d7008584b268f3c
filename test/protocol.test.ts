/**
 * What no polite client sends: the raw test client checks the server's replies to bad options,
 * bad commands, bad ranges and oversized requests, and that the server keeps serving after each.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NBD_CMD, NBD_ERR, NBD_OPT, NBD_REP, REQUEST_MAGIC, RawClient, SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC } from './helpers/raw-client.js';
import { seededRandom } from './helpers/random.js';
import { CLIENT_ENV, type RunningServer, nbdPython, startServer } from './helpers/server.js';

let server: RunningServer;
let readonlyServer: RunningServer;
/** Larger than the maximum request, so that size checks are reached before range checks. */
let bigServer: RunningServer;

beforeAll(async () => {
  [server, readonlyServer, bigServer] = await Promise.all([
    startServer(['memory', '1M']),
    startServer(['-r', 'memory', '1M']),
    startServer(['memory', '8G']),
  ]);
});
afterAll(async () => {
  await Promise.all([server.stop(), readonlyServer.stop(), bigServer.stop()]);
});

/** An NBD request header as bytes. */
function requestBytes(command: number, offset: bigint, length: number, cookie: bigint): Buffer {
  const header = Buffer.alloc(28);
  header.writeUInt32BE(REQUEST_MAGIC, 0);
  header.writeUInt16BE(command, 6);
  header.writeBigUInt64BE(cookie, 8);
  header.writeBigUInt64BE(offset, 16);
  header.writeUInt32BE(length, 24);
  return header;
}

/**
 * Exercises how the server reads requests: headers and payloads split anywhere, payloads small
 * enough to be views of a read and large enough to be read straight into their buffer, a
 * refused payload skipped in between, and the next request in the same read. The writes do
 * not overlap (in-flight writes may complete in any order); then the `size` bytes of the disk
 * at `base` (shared with other tests) must hold exactly what was written.
 */
async function writeInFragmentsAndCheck(socket: string, base: number, size: number, diskSize: number): Promise<void> {
  const client = await RawClient.connect(socket);
  await client.handshake();
  client.sendRequest(NBD_CMD.READ, BigInt(base), size, { cookie: 1n });
  const disk = Buffer.from((await client.readSimpleReply(size)).data);
  const sizes = [1, 27, 524288, 511, 4096, 16383, 16384, 65543, 300_000, 262144, 100_000, 3, 524288, 5000, 77];
  const random = seededRandom(12345);
  const stream: Buffer[] = [];
  const expected = new Map<bigint, number>();
  let cookie = 100n;
  let free = 0;
  for (const length of sizes) {
    const offset = free + random(4096);
    free = offset + length;
    const payload = Buffer.alloc(length);
    for (let i = 0; i < length; i++) payload[i] = random(256);
    payload.copy(disk, offset);
    stream.push(requestBytes(NBD_CMD.WRITE, BigInt(base + offset), length, ++cookie), payload);
    expected.set(cookie, 0);
    if (length === 16384) {
      // Past the end: refused, and its 70000-byte payload must be skipped, not applied.
      stream.push(requestBytes(NBD_CMD.WRITE, BigInt(diskSize), 70000, ++cookie), Buffer.alloc(70000, 0xff));
      expected.set(cookie, NBD_ERR.ENOSPC);
    }
  }
  expect(free).toBeLessThanOrEqual(size);
  const bytes = Buffer.concat(stream);
  for (let sent = 0; sent < bytes.length; ) {
    const piece = Math.min(bytes.length - sent, 1 + random(random(2) ? 100 : 90_000));
    client.write(bytes.subarray(sent, sent + piece));
    sent += piece;
    if (random(3) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const replies = new Map<bigint, number>();
  for (let i = 0; i < expected.size; i++) {
    const reply = await client.readSimpleReply();
    replies.set(reply.cookie, reply.error);
  }
  expect(replies).toEqual(expected);
  client.sendRequest(NBD_CMD.READ, BigInt(base), size, { cookie: 1n });
  const read = await client.readSimpleReply(size);
  expect(read.error).toBe(0);
  expect(read.data.equals(disk)).toBe(true);
  client.end();
}

/** A well-behaved client still gets correct service. */
async function stillServes(): Promise<void> {
  const out = await nbdPython(server.uri, 'h.pwrite(b"alive", 1000)\nprint(h.pread(5, 1000).decode())');
  expect(out.trim()).toBe('alive');
}

describe('handshake', () => {
  it('greets with fixed newstyle and no zeroes', async () => {
    const client = await RawClient.connect(server.socket);
    await client.greet();
    expect(client.handshakeFlags).toBe(3);
    client.end();
  });

  it('answers an unknown option with ERR_UNSUP and goes on haggling', async () => {
    const client = await RawClient.connect(server.socket);
    await client.greet();
    client.sendOption(0x1234, Buffer.from('some payload'));
    const reply = await client.readOptionReply();
    expect(reply.option).toBe(0x1234);
    expect(reply.type).toBe(NBD_REP.ERR_UNSUP);
    const { size } = await client.go();
    expect(size).toBe(1048576n);
    client.end();
  });

  it('lists the default export and the base:allocation meta context', async () => {
    const client = await RawClient.connect(server.socket);
    await client.greet();
    client.sendOption(NBD_OPT.LIST);
    const server1 = await client.readOptionReply();
    expect(server1.type).toBe(NBD_REP.SERVER);
    expect(server1.data.readUInt32BE(0)).toBe(0);
    expect((await client.readOptionReply()).type).toBe(NBD_REP.ACK);

    client.sendOption(NBD_OPT.STRUCTURED_REPLY);
    expect((await client.readOptionReply()).type).toBe(NBD_REP.ACK);
    const query = Buffer.from('base:allocation');
    const payload = Buffer.alloc(4 + 4 + 4 + query.length);
    payload.writeUInt32BE(0, 0);
    payload.writeUInt32BE(1, 4);
    payload.writeUInt32BE(query.length, 8);
    query.copy(payload, 12);
    client.sendOption(NBD_OPT.SET_META_CONTEXT, payload);
    const context = await client.readOptionReply();
    expect(context.type).toBe(NBD_REP.META_CONTEXT);
    expect(context.data.subarray(4).toString()).toBe('base:allocation');
    expect((await client.readOptionReply()).type).toBe(NBD_REP.ACK);
    client.end();
  });

  it('a second NBD_OPT_LIST on a connection gets ERR_INVALID, as from native nbdkit', async () => {
    const replies = async (socket: string): Promise<number[]> => {
      const client = await RawClient.connect(socket);
      await client.greet();
      const types: number[] = [];
      for (let i = 0; i < 2; i++) {
        client.sendOption(NBD_OPT.LIST);
        let reply;
        do types.push((reply = await client.readOptionReply()).type);
        while (reply.type === NBD_REP.SERVER);
      }
      client.sendOption(NBD_OPT.GO, Buffer.alloc(6));
      expect((await client.readOptionReply()).type).not.toBeGreaterThanOrEqual(0x80000000);
      client.end();
      return types;
    };
    const native = await startServer(['memory', '1M'], { native: true });
    try {
      const expected = await replies(native.socket);
      expect(expected).toEqual([NBD_REP.SERVER, NBD_REP.ACK, NBD_REP.ERR_INVALID]);
      expect(await replies(server.socket)).toEqual(expected);
    } finally {
      await native.stop();
    }
  });

  it('rejects a malformed NBD_OPT_GO with ERR_INVALID and stays in negotiation', async () => {
    const client = await RawClient.connect(server.socket);
    await client.greet();
    client.sendOption(NBD_OPT.GO, Buffer.from([0, 0, 0, 200, 0, 0]));
    expect((await client.readOptionReply()).type).toBe(NBD_REP.ERR_INVALID);
    expect((await client.go()).size).toBe(1048576n);
    client.end();
  });

  it('drops a client with a bad option magic, and an option longer than the limit', async () => {
    const bad = await RawClient.connect(server.socket);
    await bad.greet();
    bad.write(Buffer.alloc(16, 0xff));
    expect(await bad.closedByServer()).toBe(true);

    const huge = await RawClient.connect(server.socket);
    await huge.greet();
    huge.sendOption(NBD_OPT.GO, Buffer.alloc(0), 0xffffffff);
    expect(await huge.closedByServer()).toBe(true);
    await stillServes();
  });

  it('garbage instead of a handshake leaves the next client unaffected', async () => {
    const garbage = await RawClient.connect(server.socket);
    garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n'.repeat(50)));
    expect(await garbage.closedByServer()).toBe(true);
    await stillServes();
  });
});

describe('transmission', () => {
  it('answers an unknown command with EINVAL and keeps the connection', async () => {
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(99, 0n, 0, { cookie: 7n });
    const reply = await client.readSimpleReply();
    expect(reply.cookie).toBe(7n);
    expect(reply.error).toBe(NBD_ERR.EINVAL);
    client.sendRequest(NBD_CMD.READ, 0n, 4, { cookie: 8n });
    expect((await client.readSimpleReply(4)).error).toBe(0);
    client.end();
  });

  it('out of range: EINVAL for reads, ENOSPC for writes, also for offsets that overflow', async () => {
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.READ, 1048576n - 100n, 512);
    expect((await client.readSimpleReply()).error).toBe(NBD_ERR.EINVAL);
    client.sendRequest(NBD_CMD.WRITE, 1048576n, 512, { payload: Buffer.alloc(512, 1) });
    expect((await client.readSimpleReply()).error).toBe(NBD_ERR.ENOSPC);
    client.sendRequest(NBD_CMD.READ, 0xffffffffffffff00n, 512);
    expect((await client.readSimpleReply()).error).toBe(NBD_ERR.EINVAL);
    client.sendRequest(NBD_CMD.WRITE_ZEROES, 0xfffffffffffffe00n, 1024);
    expect((await client.readSimpleReply()).error).toBe(NBD_ERR.ENOSPC);
    // The refused write's payload was consumed: the next request parses correctly.
    client.sendRequest(NBD_CMD.FLUSH, 0n, 0, { cookie: 99n });
    const flush = await client.readSimpleReply();
    expect([flush.cookie, flush.error]).toEqual([99n, 0]);
    client.end();
  });

  it('zero-length requests are refused as native nbdkit refuses them, and the connection goes on', async () => {
    /** The error of each zero-length command at the start and at the end of a 1 MiB disk. */
    const errors = async (socket: string): Promise<number[]> => {
      const client = await RawClient.connect(socket);
      await client.handshake();
      // A large write first: nbdkit-ts's request thread then does the writes it may itself.
      client.sendRequest(NBD_CMD.WRITE, 0n, 262144, { cookie: 1n, payload: Buffer.alloc(262144, 3) });
      expect((await client.readSimpleReply()).error).toBe(0);
      const found: number[] = [];
      for (const offset of [0n, 1048576n]) {
        for (const command of [NBD_CMD.READ, NBD_CMD.WRITE, NBD_CMD.TRIM, NBD_CMD.WRITE_ZEROES, NBD_CMD.CACHE]) {
          client.sendRequest(command, offset, 0, { cookie: BigInt(command) });
          const reply = await client.readSimpleReply();
          expect(reply.cookie).toBe(BigInt(command));
          found.push(reply.error);
        }
      }
      client.sendRequest(NBD_CMD.READ, 0n, 4, { cookie: 9n });
      expect((await client.readSimpleReply(4)).error).toBe(0);
      client.end();
      return found;
    };
    const [ours, native] = await Promise.all([startServer(['memory', '1M']), startServer(['memory', '1M'], { native: true })]);
    try {
      const expected = await errors(native.socket);
      expect(expected).not.toContain(0);
      expect(await errors(ours.socket)).toEqual(expected);
      // The same complaints, in nbdkit's words, after each server's own prefix.
      const complaints = (stderr: string): string[] => stderr.split('\n').filter((line) => line.includes('invalid request')).map((line) => line.replace(/^.*?error: /, ''));
      expect(complaints(native.stderr())).toHaveLength(10);
      expect(complaints(ours.stderr())).toEqual(complaints(native.stderr()));
    } finally {
      await Promise.all([ours.stop(), native.stop()]);
    }
  });

  it('FAST_ZERO where fast zeroes were not advertised: EINVAL, and nothing is zeroed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-fast-zero-'));
    const path = join(dir, 'disk.img');
    writeFileSync(path, Buffer.alloc(65536, 0x5a));
    const fileServer = await startServer(['file', path]);
    const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;
    const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;
    try {
      const client = await RawClient.connect(fileServer.socket);
      const { flags } = await client.handshake();
      expect(flags & NBD_FLAG_SEND_FAST_ZERO).toBe(0);
      client.sendRequest(NBD_CMD.WRITE_ZEROES, 0n, 4096, { cookie: 5n, flags: NBD_CMD_FLAG_FAST_ZERO });
      expect(await client.readSimpleReply()).toMatchObject({ cookie: 5n, error: NBD_ERR.EINVAL });
      client.sendRequest(NBD_CMD.READ, 0n, 4096, { cookie: 6n });
      expect((await client.readSimpleReply(4096)).data.equals(Buffer.alloc(4096, 0x5a))).toBe(true);
      client.end();
    } finally {
      await fileServer.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an oversized write gets an error and its payload is discarded as it streams', async () => {
    const client = await RawClient.connect(bigServer.socket);
    await client.handshake();
    const length = 65 * 1024 * 1024;
    client.sendRequest(NBD_CMD.WRITE, 0n, length, { cookie: 5n });
    // Stream the payload in pieces, as a real client would.
    const piece = Buffer.alloc(1024 * 1024, 0xee);
    for (let sent = 0; sent < length; sent += piece.length) client.write(piece);
    const reply = await client.readSimpleReply();
    expect([reply.cookie, reply.error]).toEqual([5n, NBD_ERR.ENOMEM]);
    client.sendRequest(NBD_CMD.READ, 0n, 16, { cookie: 6n });
    const read = await client.readSimpleReply(16);
    expect(read.cookie).toBe(6n);
    expect(read.data.includes(0xee)).toBe(false);
    client.end();
  });

  it('write payloads of every size, cut into odd fragments and pipelined, land intact', async () => {
    await writeInFragmentsAndCheck(bigServer.socket, 1024 * 1024, 4 * 1024 * 1024, 8 * 1024 ** 3);
  });

  it('an oversized read gets ENOMEM without the server allocating it', async () => {
    const client = await RawClient.connect(bigServer.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.READ, 0n, 0xffffffff, { cookie: 3n });
    const reply = await client.readSimpleReply();
    expect([reply.cookie, reply.error]).toEqual([3n, NBD_ERR.ENOMEM]);
    client.sendRequest(NBD_CMD.READ, 0n, 8, { cookie: 4n });
    expect((await client.readSimpleReply(8)).error).toBe(0);
    client.end();
  });

  it('writes to a read-only export fail with EPERM', async () => {
    const client = await RawClient.connect(readonlyServer.socket);
    const { flags } = await client.handshake();
    expect(flags & 2).toBe(2); // NBD_FLAG_READ_ONLY
    client.sendRequest(NBD_CMD.WRITE, 0n, 4, { payload: Buffer.from('nope') });
    expect((await client.readSimpleReply()).error).toBe(NBD_ERR.EPERM);
    client.sendRequest(NBD_CMD.TRIM, 0n, 4);
    expect((await client.readSimpleReply()).error).toBe(NBD_ERR.EPERM);
    client.end();
  });

  it('a client vanishing with many requests in flight does not disturb others', async () => {
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    for (let i = 0; i < 64; i++) client.sendRequest(NBD_CMD.READ, 0n, 65536, { cookie: BigInt(i) });
    client.sendRequest(NBD_CMD.WRITE, 0n, 65536, { payload: Buffer.alloc(1000) }); // cut mid-payload
    client.end();
    await stillServes();
  });

  it('a 256 KiB write cut off mid-payload leaves the disk as it was', async () => {
    // As with nbdkit, a write reaches the plugin only once its whole payload has arrived.
    // (Bytes 256 KiB to 512 KiB of the shared disk are this test's alone.)
    const offset = 256n * 1024n;
    const length = 256 * 1024;
    const before = randomBytes(length);
    const writer = await RawClient.connect(server.socket);
    await writer.handshake();
    writer.sendRequest(NBD_CMD.WRITE, offset, length, { payload: before, cookie: 1n });
    expect((await writer.readSimpleReply()).error).toBe(0);
    writer.sendRequest(NBD_CMD.WRITE, offset, length, { payload: Buffer.alloc(length / 2, 0xee) });
    writer.end();
    const reader = await RawClient.connect(server.socket);
    await reader.handshake();
    reader.sendRequest(NBD_CMD.READ, offset, length, { cookie: 2n });
    const read = await reader.readSimpleReply(length);
    expect(read.error).toBe(0);
    expect(read.data.equals(before)).toBe(true);
    reader.end();
  });

  it('NBD_CMD_DISC closes the connection after in-flight requests', async () => {
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.READ, 0n, 512, { cookie: 1n });
    client.sendRequest(NBD_CMD.DISC, 0n, 0);
    expect((await client.readSimpleReply(512)).cookie).toBe(1n);
    expect(await client.closedByServer()).toBe(true);
  });
});

/**
 * Read replies the server sends itself, straight from a file (file plugin, sendfile) or from a
 * view of an interpreter's heap (Lua, Python): 64 pipelined reads of mixed sizes, read only
 * after 16 MiB of replies have met a 2 MiB socket buffer, so that most cannot leave at once and
 * the rest of each is queued from memory. Every reply must come whole and correct.
 */
describe.each([
  ['file plugin', (path: string) => ['file', path], false],
  ['memory plugin', () => ['memory', '8M'], true],
  ['Lua plugin', (path: string) => ['lua', 'examples/lua/file.lua', `file=${path}`], false],
  ['Python plugin', (path: string) => ['python', 'examples/python/file.py', `file=${path}`], false],
])('read replies sent by the server itself: %s', (_name, args, prefill) => {
  let dir: string;
  let data: Buffer;
  let readServer: RunningServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-replies-'));
    const path = join(dir, 'disk.raw');
    data = randomBytes(8 * 1024 * 1024);
    // The memory disk keeps a hole (never written: read from the shared zero page) at 6-7 MiB.
    data.fill(0, 6 * 1024 * 1024, 7 * 1024 * 1024);
    writeFileSync(path, data);
    readServer = await startServer(args(path), { timeoutMs: 60_000 });
    if (prefill) {
      const client = await RawClient.connect(readServer.socket);
      await client.handshake();
      client.sendRequest(NBD_CMD.WRITE, 0n, 6 * 1024 * 1024, { payload: data.subarray(0, 6 * 1024 * 1024) });
      client.sendRequest(NBD_CMD.WRITE, 7n * 1024n * 1024n, 1024 * 1024, { payload: data.subarray(7 * 1024 * 1024) });
      expect((await client.readSimpleReply()).error).toBe(0);
      expect((await client.readSimpleReply()).error).toBe(0);
      client.end();
    }
  }, 90_000);
  afterAll(async () => {
    await readServer.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  interface PlannedRead {
    cookie: bigint;
    offset: number;
    length: number;
  }

  /** Reads of mixed sizes (one above the straight-from-file limit) at scattered offsets. */
  function plannedReads(): PlannedRead[] {
    const lengths = [262144, 4096, 262144, 300_000, 1, 65536, 262144, 262144];
    return Array.from({ length: 64 }, (_, i) => {
      const length = lengths[i % lengths.length];
      const offset = (i * 1_000_003) % (data.length - length);
      return { cookie: BigInt(1000 + i), offset, length };
    });
  }

  /**
   * Send the planned reads and leave the replies unread a while: 16 MiB of replies against a
   * 2 MiB socket buffer, so most cannot leave at once. Resolves to a taker that gives the read
   * a reply's cookie is for, once each (replies may come in any order: on the file plugin the
   * 300 000-byte read goes through the thread pool).
   */
  async function sendPlannedReads(client: RawClient): Promise<{ count: number; take: (cookie: bigint) => PlannedRead }> {
    const reads = plannedReads();
    for (const r of reads) client.sendRequest(NBD_CMD.READ, BigInt(r.offset), r.length, { cookie: r.cookie });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const byCookie = new Map(reads.map((r) => [r.cookie, r]));
    const take = (cookie: bigint): PlannedRead => {
      const r = byCookie.get(cookie)!;
      expect(r).toBeDefined();
      byCookie.delete(r.cookie);
      return r;
    };
    return { count: reads.length, take };
  }

  it('64 pipelined reads, replies read only after the socket is full: each whole and correct', async () => {
    const client = await RawClient.connect(readServer.socket);
    await client.handshake();
    const planned = await sendPlannedReads(client);
    for (let i = 0; i < planned.count; i++) {
      const header = await client.read(16);
      expect([header.readUInt32BE(0), header.readUInt32BE(4)]).toEqual([SIMPLE_REPLY_MAGIC, 0]);
      const r = planned.take(header.readBigUInt64BE(8));
      const payload = await client.read(r.length);
      expect(payload.equals(data.subarray(r.offset, r.offset + r.length)), `cookie ${r.cookie}`).toBe(true);
    }
    client.end();
  });

  it('the same with structured replies: one OFFSET_DATA chunk per read', async () => {
    const client = await RawClient.connect(readServer.socket);
    await client.greet();
    client.sendOption(NBD_OPT.STRUCTURED_REPLY);
    expect((await client.readOptionReply()).type).toBe(NBD_REP.ACK);
    await client.go('');
    const planned = await sendPlannedReads(client);
    for (let i = 0; i < planned.count; i++) {
      const header = await client.read(20);
      expect(header.readUInt32BE(0)).toBe(STRUCTURED_REPLY_MAGIC);
      expect([header.readUInt16BE(4), header.readUInt16BE(6)]).toEqual([1, 1]); // DONE, OFFSET_DATA
      const r = planned.take(header.readBigUInt64BE(8));
      expect(header.readUInt32BE(16)).toBe(8 + r.length);
      const payload = await client.read(8 + r.length);
      expect(payload.readBigUInt64BE(0)).toBe(BigInt(r.offset));
      expect(payload.subarray(8).equals(data.subarray(r.offset, r.offset + r.length)), `cookie ${r.cookie}`).toBe(true);
    }
    client.end();
  });
});

describe('file plugin writes and a shrinking file', () => {
  let dir: string;
  let path: string;
  let data: Buffer;
  let fileServer: RunningServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-replies-'));
    path = join(dir, 'disk.raw');
    data = randomBytes(8 * 1024 * 1024);
    writeFileSync(path, data);
    fileServer = await startServer(['file', path]);
  });
  afterAll(async () => {
    await fileServer.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fragmented pipelined writes land intact, also while large ones wait for the thread pool', async () => {
    // Writes above 256 KiB go through the thread pool, so request headers stay in use while the
    // server goes on reading: the memory they were read into must not be reused meanwhile.
    await writeInFragmentsAndCheck(fileServer.socket, 0, data.length, data.length);
    writeFileSync(path, data);
  });

  it('a file that shrinks under the server reads as zeroes past its new end', async () => {
    const client = await RawClient.connect(fileServer.socket);
    await client.handshake();
    const end = 4 * 1024 * 1024;
    truncateSync(path, end);
    try {
      client.sendRequest(NBD_CMD.READ, BigInt(end - 4096), 262144, { cookie: 7n });
      const reply = await client.readSimpleReply(262144);
      expect(reply.error).toBe(0);
      expect(reply.data.subarray(0, 4096).equals(data.subarray(end - 4096, end))).toBe(true);
      expect(reply.data.subarray(4096).equals(Buffer.alloc(262144 - 4096))).toBe(true);
    } finally {
      writeFileSync(path, data);
    }
    client.end();
  });
});

describe('a client sending one request at a time', () => {
  /** A pause of `ms`; 0: only until the test's event loop comes round again. */
  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));

  // With one client and nothing in flight, the server waits for the next request on the socket
  // itself (spinning, then sleeping in recv). A request whose first piece comes within that wait
  // and whose rest comes at once, or only after the wait has given up, must be read as usual.
  it('is answered correctly when its requests arrive in pieces, at once or after a pause', async () => {
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    const base = 600 * 1024;
    const expected = Buffer.alloc(256 * 1024);
    let cookie = 0n;
    for (const gapMs of [0, 3]) {
      for (const [at, length] of [[0, 4096], [8192, 40000], [100_000, 700]] as const) {
        const payload = randomBytes(length);
        payload.copy(expected, at);
        const header = requestBytes(NBD_CMD.WRITE, BigInt(base + at), length, ++cookie);
        // Sent right after the last reply: the header and half the payload, then the rest.
        client.write(Buffer.concat([header, payload.subarray(0, length >> 1)]));
        await pause(gapMs);
        client.write(payload.subarray(length >> 1));
        expect(await client.readSimpleReply()).toEqual({ error: 0, cookie, data: Buffer.alloc(0) });
      }
      const header = requestBytes(NBD_CMD.READ, BigInt(base), expected.length, ++cookie);
      client.write(header.subarray(0, 5));
      await pause(gapMs);
      client.write(header.subarray(5));
      const reply = await client.readSimpleReply(expected.length);
      expect(reply.cookie).toBe(cookie);
      expect(reply.data.equals(expected)).toBe(true);
    }
    // Going away while the server waits for the next request ends only this connection.
    client.end();
    await stillServes();
  });

  it('still serves a second client, and still obeys SIGTERM, while a client sends requests back to back', async () => {
    const own = await startServer(['memory', '1G']);
    // Every block of the disk copied in 4 KiB reads one at a time (holes too: --no-extents) by
    // a client that sends each next request within microseconds: seconds of inline waits.
    const copy = spawn('nbdcopy', ['--no-extents', '--request-size=4096', '--requests=1', '--connections=1', own.uri, 'null:'], {
      env: CLIENT_ENV,
      stdio: 'ignore',
    });
    const copyExit = new Promise<number | null>((resolve) => copy.on('exit', resolve));
    let copyDone = false;
    void copyExit.then(() => (copyDone = true));
    await pause(300);
    const out = await nbdPython(own.uri, 'h.pwrite(b"second", 4096)\nprint(h.pread(6, 4096).decode())');
    expect(out.trim()).toBe('second');
    expect(copyDone).toBe(false);
    // SIGTERM while the copy is still going: a clean exit, and the copy is cut off.
    expect(await own.stop()).toBe(0);
    expect(await copyExit).not.toBe(0);
  });
});
