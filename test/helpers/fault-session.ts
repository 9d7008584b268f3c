/**
 * Client sessions for the interpreter-fault tests of every language: a list of reads and
 * writes run by libnbd's Python bindings on one connection, with each step's outcome.
 */
import { run } from './server.js';

/** 512-byte reads, or writes of `length` bytes of one byte value. */
export type Step = ['r', number] | ['w', number, number, number];
export interface Outcome {
  ok: boolean;
  errno?: string;
  /** Hex of the 512 bytes read. */
  data?: string;
}

export async function session(uri: string, steps: Step[]): Promise<Outcome[]> {
  const program = `
import json, nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
out = []
for step in json.loads(sys.argv[2]):
    try:
        if step[0] == 'r':
            out.append({'ok': True, 'data': h.pread(512, step[1]).hex()})
        else:
            h.pwrite(bytes([step[2]]) * step[3], step[1])
            out.append({'ok': True})
    except nbd.Error as e:
        out.append({'ok': False, 'errno': e.errno})
print(json.dumps(out))
`;
  const result = await run('/usr/bin/python3', ['-c', program, uri, JSON.stringify(steps)], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`client failed (${result.code}):\n${result.stderr}`);
  return JSON.parse(result.stdout.toString()) as Outcome[];
}

/** A fresh connection after a trap: answered with an error (at the handshake or on a read). */
export async function freshConnection(uri: string): Promise<string> {
  const program = `
import nbd, sys
h = nbd.NBD()
try:
    h.connect_uri(sys.argv[1])
except nbd.Error as e:
    print('handshake refused')
    sys.exit(0)
try:
    h.pread(512, 0)
    print('read succeeded')
except nbd.Error as e:
    print('read failed: %s' % e.errno)
`;
  const result = await run('/usr/bin/python3', ['-c', program, uri], { timeoutMs: 30_000 });
  if (result.code !== 0) throw new Error(`client failed (${result.code}):\n${result.stderr}`);
  return result.stdout.toString().trim();
}

/** The fixture's initial contents: byte i of the disk is i % 251. */
export function pattern(offset: number): string {
  return Buffer.from(Array.from({ length: 512 }, (_, i) => (offset + i) % 251)).toString('hex');
}

export const filled = (value: number): string => Buffer.alloc(512, value).toString('hex');

/**
 * The steps of a "fails that request only" check, and the outcomes they must have: a read and a
 * write of 0xaa at 0x1000, then each fault followed by a good read (alternately of the written
 * block and of block 0), then a read far away. Every fault gets EIO; every read, its data.
 */
export function faultsThenGoodReads(faults: number[]): { steps: Step[]; expected: Outcome[] } {
  const steps: Step[] = [
    ['r', 0],
    ['w', 0x1000, 0xaa, 512],
  ];
  const expected: Outcome[] = [{ ok: true, data: pattern(0) }, { ok: true }];
  faults.forEach((fault, i) => {
    const written = i % 2 === 0;
    steps.push(['r', fault], ['r', written ? 0x1000 : 0]);
    expected.push({ ok: false, errno: 'EIO' }, { ok: true, data: written ? filled(0xaa) : pattern(0) });
  });
  steps.push(['r', 0x8000]);
  expected.push({ ok: true, data: pattern(0x8000) });
  return { steps, expected };
}
