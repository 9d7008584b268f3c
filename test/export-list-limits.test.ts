// NBD_OPT_LIST costs the server a bounded amount per client: replies to a client that does not
// read wait for it instead of piling up in memory, and a plugin listing more exports than
// nbdkit's limit (10,000) gets the client the error native nbdkit sends.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NBD_OPT, NBD_REP, RawClient } from './helpers/raw-client.js';
import { CLIENT_ENV, rssMiB, serversStoppedAfterEach } from './helpers/server.js';

const work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-exports-'));
const env: NodeJS.ProcessEnv = { ...CLIENT_ENV, XDG_CACHE_HOME: join(work, 'cache') };
const serve = serversStoppedAfterEach();
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A Python plugin listing `count` exports, each with a description of `descriptionBytes`. */
function listingPlugin(count: number, descriptionBytes: number): string {
  const path = join(work, `list-${count}.py`);
  writeFileSync(
    path,
    `API_VERSION = 2
def list_exports(readonly, is_tls):
    return [("export%d" % i, "d" * ${descriptionBytes}) for i in range(${count})]
def open(readonly): return 1
def get_size(h): return 1024
def pread(h, buf, offset, flags): buf[:] = bytes(len(buf))
`,
  );
  return path;
}


/** NBD_OPT_LIST, read to the end: the number of NBD_REP_SERVER replies and the final reply type. */
async function list(socket: string): Promise<{ servers: number; final: number }> {
  const client = await RawClient.connect(socket);
  try {
    await client.greet();
    client.sendOption(NBD_OPT.LIST);
    let servers = 0;
    for (;;) {
      const reply = await client.readOptionReply();
      if (reply.type !== NBD_REP.SERVER) return { servers, final: reply.type };
      servers++;
    }
  } finally {
    client.end();
  }
}

/** Clients that ask for the list and never read a reply; returns them for closing. */
async function idleListers(socket: string, count: number): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = await RawClient.connect(socket);
    await client.greet();
    client.sendOption(NBD_OPT.LIST);
    clients.push(client);
  }
  return clients;
}

describe('NBD_OPT_LIST', () => {
  it('a list longer than nbdkit allows costs nothing per client that never reads', async () => {
    // 100,000 names: about 22 MiB per such client when the whole list was queued for it.
    const server = await serve(['python', listingPlugin(100000, 0)], { env, timeoutMs: 60_000 });
    const pid = server.process.pid!;
    expect(await list(server.socket)).toEqual({ servers: 0, final: 0x80000004 });
    const before = rssMiB(pid);
    const idle = await idleListers(server.socket, 12);
    expect(await server.logged('too many exports', 13, 30_000)).toBeTruthy();
    const after = rssMiB(pid);
    for (const client of idle) client.end();
    // Queued whole, that was about 260 MiB; what remains is garbage from making the lists.
    expect(after - before, `RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MiB`).toBeLessThan(120);
  }, 90_000);

  it('replies wait for a client that does not read them, and arrive whole once it does', async () => {
    // 10,000 exports with 1 KiB descriptions: 10 MiB of replies, far beyond what is queued.
    const server = await serve(['python', listingPlugin(10000, 1024)], { env, timeoutMs: 60_000 });
    const [client] = await idleListers(server.socket, 1);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let servers = 0;
    let reply = await client.readOptionReply(30_000);
    for (; reply.type === NBD_REP.SERVER; reply = await client.readOptionReply(30_000)) {
      const nameLength = reply.data.readUInt32BE(0);
      expect(reply.data.toString('latin1', 4, 4 + nameLength)).toBe(`export${servers}`);
      expect(reply.data.length).toBe(4 + nameLength + 1024);
      servers++;
    }
    client.end();
    expect({ servers, final: reply.type }).toEqual({ servers: 10000, final: NBD_REP.ACK });
  }, 60_000);

  it('more exports than nbdkit allows: the same error reply as native nbdkit, nothing listed', async () => {
    const plugin = listingPlugin(10001, 0);
    const results = [];
    for (const native of [false, true]) {
      const server = await serve(['python', plugin], { env, native, timeoutMs: 60_000 });
      results.push(await list(server.socket));
      expect(await server.logged('too many exports')).toMatch(/too many exports/);
    }
    expect(results[0]).toEqual({ servers: 0, final: 0x80000004 }); // NBD_REP_ERR_PLATFORM
    expect(results[1]).toEqual(results[0]);
  }, 60_000);
});
