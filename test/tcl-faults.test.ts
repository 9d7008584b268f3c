/**
 * Interpreter faults in Tcl plugins, seen by a real client (libnbd's Python bindings): a Tcl
 * error, runaway recursion (also through eval/uplevel/subst, and with the recursion limit
 * raised) and Tcl's own out-of-memory errors fail that request only; a fault that escapes the
 * interpreter (the JavaScript stack running out under C recursion, a Tcl_Panic's abort) fails
 * that request, is reported on one line, and every later request and connection gets an error,
 * at once, from a server that keeps running. The faults are chosen by the read offset: see
 * fixtures/tcl/faults.tcl.
 */
import { faultsThenGoodReads, filled, freshConnection, type Outcome, pattern, session, type Step } from './helpers/fault-session.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, type RunningServer, serversStoppedAfterEach } from './helpers/server.js';

const SCRIPT = join(ROOT, 'test', 'fixtures', 'tcl', 'faults.tcl');

const FAULT = {
  error: 0x10000,
  runaway: 0x20000,
  throughEval: 0x30000,
  raisedLimit: 0x40000,
  tooBig: 0x50000,
  exhaustMemory: 0x60000,
  hoardMemory: 0x70000,
  releaseMemory: 0x80000,
  cRecursion: 0x90000,
  panicMemory: 0xa0000,
} as const;

const FATAL = 'tcl: the interpreter suffered a fatal error in pread';

const startTracked = serversStoppedAfterEach();
const serve = (): Promise<RunningServer> => startTracked(['tcl', SCRIPT]);

/** A read, then the fatal fault, then requests that must all fail without entering Tcl. */
function faultThenMore(fault: number): Step[] {
  return [
    ['r', 0],
    ['r', fault],
    ['r', 0],
    ['w', 0, 0x55, 512],
    ['r', 0x8000],
  ];
}

const FAILED_THEN_REFUSED: Outcome[] = [
  { ok: true, data: pattern(0) },
  { ok: false, errno: 'EIO' },
  { ok: false, errno: 'EIO' },
  { ok: false, errno: 'EIO' },
  { ok: false, errno: 'EIO' },
];

/** After a fatal fault: new connections fail too, the report is one line, the server runs on. */
async function expectRefusing(server: RunningServer, reason: RegExp): Promise<void> {
  expect(['handshake refused', 'read failed: EIO']).toContain(await freshConnection(server.uri));
  expect(['handshake refused', 'read failed: EIO']).toContain(await freshConnection(server.uri));
  expect(server.running()).toBe(true);

  // One line, and nothing else: no "Aborted()", no panic text of its own.
  const lines = (await server.logged(FATAL)).trim().split('\n');
  expect(lines.filter((line) => line.includes(FATAL))).toHaveLength(1);
  expect(lines.find((line) => line.includes(FATAL))).toMatch(reason);
  expect(lines.length).toBeLessThan(3);
  expect(server.stderr()).not.toContain('Aborted');
  // close, cleanup and unload do not enter the failed interpreter: a clean exit.
  expect(await server.stop()).toBe(0);
}

describe('Tcl plugin faults', () => {
  it('an error, runaway recursion and an oversized string fail that request only', async () => {
    const server = await serve();
    const { steps, expected } = faultsThenGoodReads([
      FAULT.error,
      FAULT.runaway,
      FAULT.throughEval,
      FAULT.raisedLimit,
      FAULT.tooBig,
    ]);
    expect(await session(server.uri, steps)).toEqual(expected);
    const stderr = await server.logged('pread: result exceeds max size for a Tcl value');
    expect(stderr).toContain('pread: plain failure');
    expect(stderr.split('pread: too many nested evaluations (infinite loop?)')).toHaveLength(4);
    expect(stderr).toContain('"uplevel 1 [list through_eval [incr n]] "');
    expect(stderr).toContain('pread: result exceeds max size for a Tcl value');
    expect(stderr).not.toContain('fatal error');
    // Three lines per level of recursion (a million levels with the raised limit) are cut to a
    // few dozen per failure.
    expect(stderr).toMatch(/\.\.\. \(\d{6,} lines omitted\)/);
    expect(stderr.split('\n').length).toBeLessThan(200);
    expect(await freshConnection(server.uri)).toBe('read succeeded');
  }, 60_000);

  it('running out of memory fails that request (EIO, or ENOMEM for a write), and the server goes on', async () => {
    const server = await serve();
    const half = 512 * 1024;
    const outcomes = await session(server.uri, [
      ['w', 0, 0x11, half],
      // string repeat until the heap cannot grow: Tcl's own "out of memory" error.
      ['r', FAULT.exhaustMemory],
      ['r', 0],
      // The heap full to within 128 KiB, and kept so.
      ['r', FAULT.hoardMemory],
      // The write's data cannot become a Tcl byte array.
      ['w', 0, 0x22, half],
      ['r', 0],
      ['r', FAULT.releaseMemory],
      ['w', 0, 0x33, half],
      ['r', 0],
      ['r', half - 512],
    ]);
    expect(outcomes).toEqual([
      { ok: true },
      { ok: false, errno: 'EIO' },
      { ok: true, data: filled(0x11) },
      { ok: true, data: filled(0x11) },
      { ok: false, errno: 'ENOMEM' },
      { ok: true, data: filled(0x11) },
      { ok: true, data: pattern(FAULT.releaseMemory) },
      { ok: true },
      { ok: true, data: filled(0x33) },
      { ok: true, data: filled(0x33) },
    ]);
    const stderr = await server.logged('pwrite: not enough memory for 524288 bytes');
    expect(stderr).toContain('pread: string size overflow, out of memory allocating');
    expect(stderr).toContain('pwrite: not enough memory for 524288 bytes');
    expect(stderr).not.toContain('unable to');
    expect(stderr).not.toContain('fatal error');
    expect(server.running()).toBe(true);
  }, 60_000);

  it('C recursion running the JavaScript stack out fails that request, is reported once, then all is refused', async () => {
    const server = await serve();
    expect(await session(server.uri, faultThenMore(FAULT.cRecursion))).toEqual(FAILED_THEN_REFUSED);
    await expectRefusing(server, /in pread \(Maximum call stack size exceeded\); refusing further requests$/);
  }, 60_000);

  it('a Tcl_Panic when the heap cannot grow fails that request, is reported once with its message, then all is refused', async () => {
    const server = await serve();
    expect(await session(server.uri, faultThenMore(FAULT.panicMemory))).toEqual(FAILED_THEN_REFUSED);
    await expectRefusing(server, /in pread \(Tcl panic: unable to (re)?alloc \d+ bytes\); refusing further requests$/);
  }, 60_000);
});
