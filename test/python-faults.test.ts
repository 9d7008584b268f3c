/**
 * Interpreter faults in Python plugins, seen by a real client (libnbd's Python bindings):
 * an exception, a RecursionError or a MemoryError fails that request only; a pyodide fatal
 * error (the JavaScript stack overflowing under the interpreter) fails that request, is
 * reported on one line, and every later request and connection gets an error, at once, from a
 * server that keeps running. The faults are chosen by the read offset: see
 * fixtures/python/faults.py.
 */
import { faultsThenGoodReads, freshConnection, pattern, session } from './helpers/fault-session.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, type RunningServer, serversStoppedAfterEach } from './helpers/server.js';

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

const startTracked = serversStoppedAfterEach();
const serve = (): Promise<RunningServer> => startTracked(['python', SCRIPT]);

describe('python plugin faults', () => {
  it('an exception, RecursionError or MemoryError fails that request only', async () => {
    const server = await serve();
    const { steps, expected } = faultsThenGoodReads([FAULT.exception, FAULT.recursionError, FAULT.memoryError]);
    expect(await session(server.uri, steps)).toEqual(expected);
    const stderr = await server.logged('MemoryError');
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
        ['w', 0, 0x55, 512],
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

      const stderr = await server.logged(FATAL_LINE);
      expect(stderr.split(FATAL_LINE).length - 1).toBe(1);
      for (const noise of ['Pyodide has suffered', 'lost sys.stderr', 'Internal error', 'Stack (most recent call first)']) {
        expect(stderr).not.toContain(noise);
      }
      expect(stderr.trim().split('\n').length).toBeLessThan(5);
      expect(await server.stop()).toBe(0);
    }, 60_000);
  }

  it('shows pyodide\'s own report of a fatal error only with -v', async () => {
    const server = await startTracked(['-v', 'python', SCRIPT]);
    await session(server.uri, [['r', FAULT.builtinRecursion]]);
    const stderr = await server.logged(FATAL_LINE);
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
