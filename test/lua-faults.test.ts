/**
 * Interpreter faults in Lua plugins, seen by a real client (libnbd's Python bindings): a Lua
 * error, Lua's stack overflows and running out of memory fail that request only; a trap that
 * escapes the interpreter (here the JavaScript stack running out inside it) fails that request,
 * is reported on one line, and every later request and connection gets an error, at once, from
 * a server that keeps running. The faults are chosen by the read offset: see
 * fixtures/lua/faults.lua.
 */
import { faultsThenGoodReads, filled, freshConnection, pattern, session } from './helpers/fault-session.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, type RunningServer, serversStoppedAfterEach } from './helpers/server.js';

const SCRIPT = join(ROOT, 'test', 'fixtures', 'lua', 'faults.lua');

const FAULT = {
  error: 0x10000,
  stackOverflow: 0x20000,
  cRecursion: 0x30000,
  exhaustMemory: 0x40000,
  hoardMemory: 0x50000,
  releaseMemory: 0x60000,
} as const;

const FATAL_LINE = 'lua: the interpreter suffered a fatal error in pread (Maximum call stack size exceeded); refusing further requests';


const serve = serversStoppedAfterEach();

/**
 * nbdkit-ts under `node --stack-size=KB`: with a small JavaScript stack, a recursion that Lua's
 * own C-level limit stops under the default stack runs the stack out inside the interpreter,
 * which is the trap a deeper recursion (or a bigger frame) would cause at the default size.
 */
const serveWithStack = (kilobytes: number): Promise<RunningServer> =>
  serve(['lua', SCRIPT], { nodeArgs: [`--stack-size=${kilobytes}`] });

describe('Lua plugin faults', () => {
  it('an error, a Lua stack overflow and a C stack overflow fail that request only', async () => {
    const server = await serve(['lua', SCRIPT]);
    const { steps, expected } = faultsThenGoodReads([FAULT.error, FAULT.stackOverflow, FAULT.cRecursion]);
    expect(await session(server.uri, steps)).toEqual(expected);
    const stderr = await server.logged('C stack overflow');
    expect(stderr).toContain('pread: ');
    expect(stderr).toContain('plain failure');
    expect(stderr).toContain('stack overflow');
    expect(stderr).toContain('C stack overflow');
    expect(stderr).not.toContain('fatal error');
    expect(await freshConnection(server.uri)).toBe('read succeeded');
  }, 60_000);

  it('running out of memory fails that request (EIO, or ENOMEM for a write), and the server goes on', async () => {
    const server = await serve(['lua', SCRIPT]);
    const half = 512 * 1024;
    const outcomes = await session(server.uri, [
      // A large write first, whose data the reads below find again.
      ['w', 0, 0x11, half],
      ['r', FAULT.exhaustMemory],
      ['r', 0],
      ['r', FAULT.hoardMemory],
      // The heap is full: the write's data cannot become a Lua string.
      ['w', 0, 0x22, half],
      ['r', 0],
      ['r', FAULT.releaseMemory],
      ['w', 0, 0x33, half],
      ['r', 0],
      ['r', half],
    ]);
    expect(outcomes).toEqual([
      { ok: true },
      { ok: false, errno: 'EIO' },
      { ok: true, data: filled(0x11) },
      { ok: true, data: filled(0x11) },
      { ok: false, errno: 'ENOMEM' },
      { ok: true, data: filled(0x11) },
      { ok: true, data: filled(0x11) },
      { ok: true },
      { ok: true, data: filled(0x33) },
      { ok: true, data: pattern(half) },
    ]);
    const stderr = await server.logged('pwrite: not enough memory');
    expect(stderr).toContain('pread: not enough memory');
    expect(stderr).toContain('pwrite: not enough memory');
    // emscripten's complaints about the heap are shown only with -v; Lua never panics.
    expect(stderr).not.toContain('Cannot enlarge memory');
    expect(stderr).not.toContain('PANIC');
    expect(stderr).not.toContain('fatal error');
    expect(server.running()).toBe(true);
  }, 60_000);

  it('a trap inside the interpreter fails that request, is reported once, then every request is refused', async () => {
    const server = await serveWithStack(250);
    const outcomes = await session(server.uri, [
      ['r', 0],
      ['r', FAULT.cRecursion],
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
    expect(['handshake refused', 'read failed: EIO']).toContain(await freshConnection(server.uri));
    expect(['handshake refused', 'read failed: EIO']).toContain(await freshConnection(server.uri));
    expect(server.running()).toBe(true);

    const stderr = await server.logged(FATAL_LINE);
    expect(stderr.split(FATAL_LINE).length - 1).toBe(1);
    expect(stderr.trim().split('\n').length).toBeLessThan(3);
    expect(await server.stop()).toBe(0);
  }, 60_000);
});
