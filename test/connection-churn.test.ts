// A server that clients connect to and leave, over and over, must give back what each
// connection held: its memory, its socket. (A live timer per closed connection once kept every
// socket and its 64 KiB of buffers for 5 s, and a listener per connection on the shutdown
// promise kept each connection's reader until exit: 200,000 connections grew a server to
// 1.4 GiB.) Bounded: a fixed number of connections, eight at a time.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NBD_CMD, RawClient } from './helpers/raw-client.js';
import { rssMiB, serversStoppedAfterEach } from './helpers/server.js';

const serve = serversStoppedAfterEach();


function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

type Visit = (socket: string) => Promise<void>;

/** Greeting, client flags, then hang up. */
const greetAndLeave: Visit = async (socket) => {
  const client = await RawClient.connect(socket);
  await client.greet();
  client.end();
};

/** A whole session: GO, one 64 KiB read, NBD_CMD_DISC, and wait for the server to close. */
const readAndDisconnect: Visit = async (socket) => {
  const client = await RawClient.connect(socket);
  await client.handshake();
  client.sendRequest(NBD_CMD.READ, 0n, 65536);
  await client.readSimpleReply(65536);
  client.sendRequest(NBD_CMD.DISC, 0n, 0);
  // Generous: on a loaded machine a close can take seconds to be seen.
  expect(await client.closedByServer(30_000)).toBe(true);
  client.end();
};

async function visits(socket: string, visit: Visit, count: number): Promise<void> {
  for (let done = 0; done < count; done += 8) await Promise.all(Array.from({ length: 8 }, () => visit(socket)));
}

describe('connections that come and go leave nothing behind', () => {
  for (const [name, visit] of [
    ['greeting only', greetAndLeave],
    ['GO, a read, NBD_CMD_DISC', readAndDisconnect],
  ] as const) {
    it(name, async () => {
      const server = await serve(['memory', '1M']);
      const pid = server.process.pid!;
      // Warm up: V8's heap and the buffer pool reach their working size first.
      await visits(server.socket, visit, 4000);
      const before = rssMiB(pid);
      await visits(server.socket, visit, 6000);
      const after = rssMiB(pid);
      // About 7-20 KiB per connection was held before: 40-120 MiB over these 6000.
      expect(after - before, `RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MiB`).toBeLessThan(24);
      // Every client has gone, and so have their sockets (within moments, not seconds).
      let descriptors = openDescriptors(pid);
      for (let i = 0; i < 50 && descriptors > 64; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        descriptors = openDescriptors(pid);
      }
      expect(descriptors).toBeLessThan(64);
    }, 120_000);
  }
});
