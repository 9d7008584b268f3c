/**
 * The same-replies check against native nbdkit: seeded random requests, well framed but
 * careless (every command, odd flags, zero, huge and out-of-range lengths), sent over a raw
 * client, and each reply described so that two servers' answers compare as lists of lines.
 */
import { createHash } from 'node:crypto';
import { NBD_CMD, NBD_OPT, NBD_REP, RawClient, SIMPLE_REPLY_MAGIC, STRUCTURED_REPLY_MAGIC } from './raw-client.js';

/** One random request a well-framed but careless client might send. */
export interface RandomRequest {
  command: number;
  flags: number;
  offset: bigint;
  count: number;
  payload?: Buffer;
}

export function randomRequests(below: (n: number) => number, diskSize: number, howMany: number): RandomRequest[] {
  const pick = <T>(choices: T[]): T => choices[below(choices.length)];
  const requests: RandomRequest[] = [];
  for (let i = 0; i < howMany; i++) {
    // Every command but DISC (which ends the session), and two unknown ones.
    const command = pick([NBD_CMD.READ, NBD_CMD.READ, NBD_CMD.WRITE, NBD_CMD.WRITE, NBD_CMD.FLUSH, NBD_CMD.TRIM,
      NBD_CMD.CACHE, NBD_CMD.WRITE_ZEROES, NBD_CMD.BLOCK_STATUS, 9, 300]);
    const flags = pick([0, 0, 0, 1, 2, 4, 8, 16, 1 | 2, 2 | 16, 32, 128]);
    const count = pick([0, 1, 512, 4096, 65536, 1 + below(100_000), 1 << 20, (64 << 20) + 1]);
    const offset = BigInt(pick([0, below(diskSize), diskSize - 512, diskSize, diskSize + 1, below(diskSize) & ~511]));
    const payload = command === NBD_CMD.WRITE && count <= 1 << 20 ? Buffer.alloc(count, below(256)) : undefined;
    if (command === NBD_CMD.WRITE && !payload) continue;
    requests.push({ command, flags, offset, count, payload });
  }
  return requests;
}

/** Structured replies and base:allocation, as a client asks for them before GO. */
export async function negotiateStructured(client: RawClient): Promise<void> {
  client.sendOption(NBD_OPT.STRUCTURED_REPLY);
  await client.readOptionReply();
  const query = Buffer.from('base:allocation');
  const data = Buffer.alloc(12 + query.length);
  data.writeUInt32BE(1, 4);
  data.writeUInt32BE(query.length, 8);
  query.copy(data, 12);
  client.sendOption(NBD_OPT.SET_META_CONTEXT, data);
  while ((await client.readOptionReply()).type !== NBD_REP.ACK);
}

/** The commands that change the disk's data. */
const CHANGES: ReadonlySet<number> = new Set([NBD_CMD.WRITE, NBD_CMD.TRIM, NBD_CMD.WRITE_ZEROES]);

const digest = (data: Buffer): string => createHash('sha256').update(data).digest('hex').slice(0, 16);

/**
 * Read one reply (all chunks of a structured one) and describe it: the simple reply's error
 * and data, or each chunk's flags, type and payload (for error chunks, only the error: the
 * message is free text). Returns the cookie it answered and its lines.
 */
async function readReply(client: RawClient, requests: readonly RandomRequest[]): Promise<{ cookie: number; lines: string[] }> {
  const magic = (await client.read(4)).readUInt32BE(0);
  if (magic === SIMPLE_REPLY_MAGIC) {
    const rest = await client.read(12);
    const error = rest.readUInt32BE(0);
    const cookie = Number(rest.readBigUInt64BE(4));
    const request = requests[cookie];
    const data = error === 0 && request.command === NBD_CMD.READ ? await client.read(request.count) : Buffer.alloc(0);
    return { cookie, lines: [`${cookie}: simple error=${error} data=${digest(data)}`] };
  }
  if (magic !== STRUCTURED_REPLY_MAGIC) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
  const lines: string[] = [];
  let cookie = -1;
  for (let first = true; ; first = false) {
    if (!first && (await client.read(4)).readUInt32BE(0) !== STRUCTURED_REPLY_MAGIC) throw new Error('bad chunk magic');
    const head = await client.read(16);
    const chunkFlags = head.readUInt16BE(0);
    const type = head.readUInt16BE(2);
    cookie = Number(head.readBigUInt64BE(4));
    const payload = await client.read(head.readUInt32BE(12));
    const what = type >= 0x8000 ? `error=${payload.readUInt32BE(0)}` : digest(payload);
    lines.push(`${cookie}: chunk flags=${chunkFlags} type=${type} ${what}`);
    // Chunks of different replies do not interleave here: each reply is one chunk or ends
    // with the chunk that has DONE (nbdkit and nbdkit-ts both send a reply's chunks together).
    if (chunkFlags & 1) return { cookie, lines };
  }
}

/** A connection past GO on which batches of requests are sent and their replies described. */
export class ConformanceSession {
  private nextCookie = 0;
  private readonly sent: RandomRequest[] = [];

  private constructor(private readonly raw: RawClient) {}

  /** `afterGreeting` runs between the client flags and the first option (for STARTTLS). */
  static async open(
    client: RawClient | string,
    structured: boolean,
    afterGreeting?: (raw: RawClient) => Promise<void>,
  ): Promise<ConformanceSession> {
    const raw = typeof client === 'string' ? await RawClient.connect(client) : client;
    await raw.greet();
    await afterGreeting?.(raw);
    if (structured) await negotiateStructured(raw);
    await raw.go('');
    return new ConformanceSession(raw);
  }

  /**
   * Send the requests with up to `depth` in flight (1: one at a time) and describe every
   * reply, in the order of the requests whatever order the replies came in. Requests that
   * change data go one at a time among the others, so that the end state does not depend on
   * the order in which the server ran requests in flight together (see forPipelining).
   */
  async run(requests: readonly RandomRequest[], depth = 1): Promise<string[]> {
    const first = this.nextCookie;
    const answered = new Map<number, string[]>();
    let sent = 0;
    let changing: number | undefined;
    while (answered.size < requests.length) {
      if (changing !== undefined && answered.has(changing)) changing = undefined;
      while (sent < requests.length && sent - answered.size < depth) {
        const request = requests[sent];
        const changes = CHANGES.has(request.command);
        if (changes && changing !== undefined) break;
        const cookie = this.nextCookie++;
        if (changes) changing = cookie;
        this.sent[cookie] = request;
        this.raw.sendRequest(request.command, request.offset, request.count, { flags: request.flags, cookie: BigInt(cookie), payload: request.payload });
        sent++;
      }
      const { cookie, lines } = await readReply(this.raw, this.sent);
      if (cookie < first || answered.has(cookie)) throw new Error(`an unexpected reply to request ${cookie}`);
      answered.set(cookie, lines);
    }
    return requests.flatMap((_, i) => answered.get(first + i)!);
  }

  end(): void {
    this.raw.end();
  }
}

/** Send the requests one at a time over a new session and describe every reply. */
export async function replies(client: RawClient | string, structured: boolean, requests: readonly RandomRequest[]): Promise<string[]> {
  const session = await ConformanceSession.open(client, structured);
  try {
    return await session.run(requests);
  } finally {
    session.end();
  }
}

/**
 * The requests made safe to pipeline: what changes data (writes, zeroes, trims) stays in the
 * first half of the disk and what reads it (reads, block status, cache) in the second, so that
 * no two requests in flight together depend on each other's order. Out-of-range requests stay
 * out of range.
 */
export function forPipelining(requests: readonly RandomRequest[], diskSize: number): RandomRequest[] {
  const half = diskSize / 2;
  return requests.map((request) => {
    const offset = Number(request.offset);
    if (offset >= diskSize || request.count > half) return request;
    if (CHANGES.has(request.command)) {
      const start = offset % half;
      return { ...request, offset: BigInt(Math.min(start, half - request.count)) };
    }
    return { ...request, offset: BigInt(half + (offset % half)) };
  });
}

/** Reads of the whole disk in 1 MiB pieces: the end state of a session, for comparing. */
export function readBack(diskSize: number): RandomRequest[] {
  const reads: RandomRequest[] = [];
  for (let offset = 0; offset < diskSize; offset += 1 << 20) {
    reads.push({ command: NBD_CMD.READ, flags: 0, offset: BigInt(offset), count: Math.min(1 << 20, diskSize - offset) });
  }
  return reads;
}
