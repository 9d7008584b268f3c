/**
 * Interpreter faults in Python plugins, seen by a real client (libnbd's Python bindings):
 * an exception, a RecursionError or a MemoryError fails that request only; a pyodide fatal
 * error (the JavaScript stack overflowing under the interpreter) fails that request, is
 * reported on one line, and every later request and connection gets an error, at once, from a
 * server that keeps running. The faults are chosen by the read offset: see
 * fixtures/python/faults.py.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, run, startServer, type RunningServer } from './helpers/server.js';

const SCRIPT = join(ROOT, 'test', 'fixtures', 'python', 'faults.py');

const FAULT = {
  exception: 0x10000,
  recursionError: 0x20000,
  memoryError: 0x30000,
  runawayRecursion: 0x40000,
  builtinRecursion: 0x50000,
  exit: 0x60000,
} as const;

const FATAL_LINE = 'python: the interpreter suffered a fatal error in pread (Maximum call stack size exceeded); refusing further requests';

type Step = ['r', number] | ['w', number, number];
interface Outcome {
  ok: boolean;
  errno?: string;
  /** Hex of the 512 bytes read. */
  data?: string;
}

/** Run the steps over one connection: 512-byte reads, or 512-byte writes of one byte value. */
async function session(uri: string, steps: Step[]): Promise<Outcome[]> {
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
            h.pwrite(bytes([step[2]]) * 512, step[1])
            out.append({'ok': True})
    except nbd.Error as e:
        out.append({'ok': False, 'errno': e.errno})
print(json.dumps(out))
`;
  const result = await run('/usr/bin/python3', ['-c', program, uri, JSON.stringify(steps)], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`client failed (${result.code}):\n${result.stderr}`);
  return JSON.parse(result.stdout.toString()) as Outcome[];
}

/**
 * A fresh connection after the interpreter failed: it must be answered with an error, either at
 * the handshake (open is refused) or on its first read, and never hang.
 */
async function freshConnection(uri: string): Promise<string> {
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
function pattern(offset: number): string {
  return Buffer.from(Array.from({ length: 512 }, (_, i) => (offset + i) % 251)).toString('hex');
}

const filled = (value: number): string => Buffer.alloc(512, value).toString('hex');

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function serve(): Promise<RunningServer> {
  const server = await startServer(['python', SCRIPT]);
  servers.push(server);
  return server;
}

describe('python plugin faults', () => {
  it('an exception, RecursionError or MemoryError fails that request only', async () => {
    const server = await serve();
    const outcomes = await session(server.uri, [
      ['r', 0],
      ['w', 0x1000, 0xaa],
      ['r', FAULT.exception],
      ['r', 0x1000],
      ['r', FAULT.recursionError],
      ['r', 0],
      ['r', FAULT.memoryError],
      ['r', 0x1000],
      ['r', 0x8000],
    ]);
    expect(outcomes).toEqual([
      { ok: true, data: pattern(0) },
      { ok: true },
      { ok: false, errno: 'EIO' },
      { ok: true, data: filled(0xaa) },
      { ok: false, errno: 'EIO' },
      { ok: true, data: pattern(0) },
      { ok: false, errno: 'EIO' },
      { ok: true, data: filled(0xaa) },
      { ok: true, data: pattern(0x8000) },
    ]);
    const stderr = server.stderr();
    expect(stderr).toContain('RuntimeError: plain failure');
    expect(stderr).toContain('RecursionError');
    expect(stderr).toContain('MemoryError');
    expect(stderr).not.toContain('fatal error');
    // The server still serves new connections normally.
    expect(await freshConnection(server.uri)).toBe('read succeeded');
  }, 60_000);

  for (const [name, offset] of [
    ['runaway recursion with the recursion limit lifted', FAULT.runawayRecursion],
    ['recursion through a builtin at the default limit', FAULT.builtinRecursion],
  ] as const) {
    it(`a fatal error (${name}) fails that request, is reported once, then every request is refused`, async () => {
      const server = await serve();
      const outcomes = await session(server.uri, [
        ['r', 0],
        ['r', offset],
        ['r', 0],
        ['w', 0, 0x55],
        ['r', 0x8000],
      ]);
      expect(outcomes).toEqual([
        { ok: true, data: pattern(0) },
        { ok: false, errno: 'EIO' },
        { ok: false, errno: 'EIO' },
        { ok: false, errno: 'EIO' },
        { ok: false, errno: 'EIO' },
      ]);
      // New connections are answered (with errors), and the server is still running.
      expect(['handshake refused', 'read failed: EIO']).toContain(await freshConnection(server.uri));
      expect(['handshake refused', 'read failed: EIO']).toContain(await freshConnection(server.uri));
      expect(server.process.exitCode).toBeNull();

      const stderr = server.stderr();
      expect(stderr.split(FATAL_LINE).length - 1).toBe(1);
      for (const noise of ['Pyodide has suffered', 'lost sys.stderr', 'Internal error', 'Stack (most recent call first)']) {
        expect(stderr).not.toContain(noise);
      }
      expect(stderr.trim().split('\n').length).toBeLessThan(5);
      expect(await server.stop()).toBe(0);
    }, 60_000);
  }

  it('shows pyodide\'s own report of a fatal error only with -v', async () => {
    const server = await startServer(['-v', 'python', SCRIPT]);
    servers.push(server);
    await session(server.uri, [['r', FAULT.builtinRecursion]]);
    const stderr = server.stderr();
    expect(stderr).toContain(FATAL_LINE);
    expect(stderr).toMatch(/debug: python: pyodide: .*fatal error/);
  }, 60_000);

  it('os._exit ends the server with its status, as in native nbdkit', async () => {
    const server = await serve();
    const outcomes = await session(server.uri, [['r', FAULT.exit]]);
    expect(outcomes[0].ok).toBe(false);
    expect(await server.stop()).toBe(3);
  }, 60_000);
});
