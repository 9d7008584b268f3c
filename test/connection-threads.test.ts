/**
 * Connections served on threads of their own (connection-worker.ts): the file plugin is
 * replicable, so after the first clients its connections go to worker threads, each with its
 * own copy of the plugin. Clients must not be able to tell: every connection sees every other
 * connection's writes, and shutdown is as clean as on the main thread.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NBD_CMD, RawClient } from './helpers/raw-client.js';
import { type RunningServer, nbdPython, run, serversStoppedAfterEach } from './helpers/server.js';

const ON_A_THREAD = 'served on a thread of its own';
const MiB = 1024 * 1024;

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-threads-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const startServer = serversStoppedAfterEach();

function threadedConnections(server: RunningServer): number {
  return server.stderr().split('\n').filter((line) => line.includes(ON_A_THREAD)).length;
}

/** Connect until a connection is served on a thread (threads start with the server, not at once). */
async function untilThreadsServe(server: RunningServer): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (threadedConnections(server) === 0) {
    if (Date.now() > deadline) throw new Error(`no connection went to a thread:\n${server.stderr()}`);
    const info = await run('nbdinfo', ['--size', server.uri]);
    expect(info.code).toBe(0);
  }
}

function disk(name: string, bytes: number): string {
  const path = join(work, name);
  writeFileSync(path, '');
  truncateSync(path, bytes);
  return path;
}

describe('connection threads', () => {
  it('file: what nbdcopy writes over several threaded connections, every connection reads back', async () => {
    const target = disk('target.img', 32 * MiB);
    const source = join(work, 'source.img');
    writeFileSync(source, randomBytes(32 * MiB));
    const server = await startServer(['-v', 'file', target]);
    await untilThreadsServe(server);

    const copy = await run('nbdcopy', ['--connections=4', '--request-size=262144', source, server.uri]);
    expect(copy.code, copy.stderr).toBe(0);
    expect(readFileSync(target).equals(readFileSync(source))).toBe(true);

    const back = join(work, 'back.img');
    const read = await run('nbdcopy', ['--connections=4', server.uri, back]);
    expect(read.code, read.stderr).toBe(0);
    expect(readFileSync(back).equals(readFileSync(source))).toBe(true);
    // The copies opened several connections at once: more than the one probe went to threads.
    expect(threadedConnections(server)).toBeGreaterThan(1);
  });

  it('file: a write on one connection is seen at once by another, each on a thread of its own', async () => {
    const server = await startServer(['-v', 'file', disk('shared.img', MiB)]);
    await untilThreadsServe(server);
    const script = [
      'import nbd',
      'other = nbd.NBD()',
      `other.connect_uri(${JSON.stringify(server.uri)})`,
      'h.pwrite(b"from the first connection", 4096)',
      'print(other.pread(25, 4096).decode())',
      'other.pwrite(b"and from the second", 8192)',
      'h.flush()',
      'print(h.pread(19, 8192).decode())',
    ].join('\n');
    const out = await nbdPython(server.uri, script);
    expect(out.split('\n').slice(0, 2)).toEqual(['from the first connection', 'and from the second']);
  });

  it('SIGTERM with a client on a thread: its request is answered, the thread ends, the server exits 0', async () => {
    const server = await startServer(['-v', 'file', disk('stop.img', MiB)]);
    await untilThreadsServe(server);
    const before = threadedConnections(server);
    const client = await RawClient.connect(server.socket);
    await client.handshake();
    client.sendRequest(NBD_CMD.READ, 0n, 4096, { cookie: 7n });
    const reply = await client.readSimpleReply(4096);
    expect([reply.cookie, reply.error]).toEqual([7n, 0]);
    expect(threadedConnections(server)).toBe(before + 1);

    // The thread sleeps in recv for its idle client meanwhile; stop() would SIGKILL a server
    // still running after 10 s, and that exit would not be 0.
    expect(await server.stop()).toBe(0);
    expect(existsSync(server.socket)).toBe(false);
  });

  it('memory keeps its pages in the main thread: none of its connections goes to a thread', async () => {
    const server = await startServer(['-v', 'memory', '1M']);
    for (let i = 0; i < 3; i++) {
      const info = await run('nbdinfo', ['--size', server.uri]);
      expect(info.stdout.toString().trim()).toBe(String(MiB));
    }
    expect(server.stderr()).toContain('handshake complete');
    expect(threadedConnections(server)).toBe(0);
  });
});
