/**
 * nbdkit's utility functions for plugin scripts, once for every language adapter (Python's
 * `nbdkit` module, Lua's `nbdkit` table, Tcl's `nbdkit` command, JavaScript's `nbdkit` export):
 * nbdkit_is_tls, nbdkit_peer_*, nbdkit_disconnect, nbdkit_nanosleep, nbdkit_parse_delay,
 * nbdkit_parse_probability, nbdkit_read_password (nbdkit-plugin(3), nbdkit 1.34 to 1.44).
 *
 * Each throws a PluginError whose message is what to print (`nbdkit-ts: error: ...`) when the
 * call cannot be answered; the adapters turn that into the language's own error.
 */
import { closeSync, readFileSync, readSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { type ConnectionInfo, type PeerCredentials, type PluginHost, PluginError } from './plugin.js';

function needConnection(what: string, connection: ConnectionInfo | undefined): ConnectionInfo {
  if (connection === undefined) throw new PluginError(`${what}: no connection in this callback`, 'EINVAL');
  return connection;
}

/** nbdkit_is_tls: an error outside a connection's callbacks, as in nbdkit. */
export function isTls(connection: ConnectionInfo | undefined): boolean {
  return needConnection('is_tls', connection).tls;
}

/** A connection's answer, with the function's name put before the reason it gives for failing. */
function ask<T>(what: string, question: (() => T) | undefined): T {
  if (!question) throw new PluginError(`${what}: not known for this client`, 'ENOTSUP');
  try {
    return question();
  } catch (error) {
    if (error instanceof PluginError) throw new PluginError(`${what}: ${error.message}`, error.errno);
    throw error;
  }
}

function credentials(what: string, connection: ConnectionInfo | undefined): PeerCredentials {
  const c = needConnection(what, connection);
  return ask(what, c.peerCredentials && (() => c.peerCredentials!()));
}

export function peerPid(connection: ConnectionInfo | undefined): number {
  return credentials('peer_pid', connection).pid;
}

export function peerUid(connection: ConnectionInfo | undefined): number {
  return credentials('peer_uid', connection).uid;
}

export function peerGid(connection: ConnectionInfo | undefined): number {
  return credentials('peer_gid', connection).gid;
}

export function peerSecurityContext(connection: ConnectionInfo | undefined): string {
  const c = needConnection('peer_security_context', connection);
  return ask('peer_security_context', c.peerSecurityContext && (() => c.peerSecurityContext!()));
}

/** nbdkit_peer_tls_dn: "" (not an error) without TLS or a client certificate. */
export function peerTlsDn(connection: ConnectionInfo | undefined): string {
  return needConnection('peer_tls_dn', connection).peerTlsDn?.() ?? '';
}

export function peerTlsIssuerDn(connection: ConnectionInfo | undefined): string {
  return needConnection('peer_tls_issuer_dn', connection).peerTlsIssuerDn?.() ?? '';
}

/**
 * nbdkit_disconnect. Outside a connection's callbacks there is nothing to disconnect and the
 * request is ignored, as nbdkit does; returns whether it applied.
 */
export function disconnect(connection: ConnectionInfo | undefined, force: boolean): boolean {
  if (connection?.disconnect === undefined) return false;
  connection.disconnect(force);
  return true;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * nbdkit_nanosleep, for interpreters whose calls cannot wait for a promise: the whole process
 * sleeps, as a plugin thread of nbdkit's would under a serializing thread model.
 */
export function nanosleep(sec: number, nsec: number): void {
  if (!Number.isInteger(sec) || !Number.isInteger(nsec) || sec < 0 || nsec < 0) {
    throw new PluginError('nanosleep: seconds and nanoseconds must be non-negative integers', 'EINVAL');
  }
  const ms = sec * 1000 + nsec / 1e6;
  if (sec >= 0x7fffffff || ms > Number.MAX_SAFE_INTEGER) throw new PluginError('sleep request is too long', 'EINVAL');
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

export interface Delay {
  sec: number;
  nsec: number;
}

const DELAY_UNITS: Record<string, number> = { '': 9, s: 9, ms: 6, us: 3, 'μs': 3, ns: 0 };

/**
 * nbdkit_parse_delay: "1", "1.5", "1.5s", "200ms", "20us" (or "μs"), "100ns" into seconds and
 * nanoseconds. Decimal arithmetic on the digits, so "0.1" is exactly 100000000 ns.
 */
export function parseDelay(what: string, text: string): Delay {
  const match = /^\s*(\d*)(?:\.(\d*))?\s*(s|ms|us|μs|ns)?\s*$/.exec(text);
  if (!match || (match[1] === '' && !match[2])) throw new PluginError(`${what}: could not parse delay: ${text}`, 'EINVAL');
  const whole = match[1] === '' ? '0' : match[1];
  const fraction = match[2] ?? '';
  const exponent = DELAY_UNITS[match[3] ?? ''];
  // The delay in nanoseconds, as a decimal string: shift the point by the unit's exponent.
  const digits = (whole + fraction.padEnd(exponent, '0').slice(0, exponent)).replace(/^0+(?=\d)/, '');
  const ns = BigInt(digits === '' ? '0' : digits);
  const sec = ns / 1_000_000_000n;
  if (sec > 0x7fffffffn) throw new PluginError(`${what}: delay is too long: ${text}`, 'ERANGE');
  return { sec: Number(sec), nsec: Number(ns % 1_000_000_000n) };
}

/**
 * nbdkit_parse_probability: "0.1", "1e-3", "10%", "1:10" or "1/10" into a number between 0
 * and 1.
 */
export function parseProbability(what: string, text: string): number {
  const number = '\\s*([0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\\s*';
  let value: number | undefined;
  let match: RegExpExecArray | null;
  if ((match = new RegExp(`^${number}%$`).exec(text))) value = Number(match[1]) / 100;
  else if ((match = new RegExp(`^${number}[:/]${number}$`).exec(text))) {
    const denominator = Number(match[2]);
    value = denominator === 0 ? undefined : Number(match[1]) / denominator;
  } else if ((match = new RegExp(`^${number}$`).exec(text))) value = Number(match[1]);
  if (value === undefined || !Number.isFinite(value)) {
    throw new PluginError(`${what}: could not parse probability: ${text}`, 'EINVAL');
  }
  if (value < 0 || value > 1) throw new PluginError(`${what}: probability out of range, should be [0..1]: ${text}`, 'ERANGE');
  return value;
}

/** The whole of a descriptor's input, read synchronously until its end. */
function readAll(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const chunk = Buffer.alloc(4096);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, chunk, 0, chunk.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw error;
    }
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
}

function withoutNewline(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** Read a line from the terminal on stdin with echo off, as nbdkit does for password=-. */
function readFromStdin(): string {
  const terminal = process.stdin.isTTY === true;
  const stty = (mode: string): void => {
    if (terminal) spawnSync('stty', [mode], { stdio: ['inherit', 'ignore', 'ignore'] });
  };
  if (terminal) process.stderr.write('password: ');
  stty('-echo');
  try {
    // One line, a byte at a time, so that nothing after it is taken from stdin.
    const line: number[] = [];
    const byte = Buffer.alloc(1);
    for (;;) {
      let n: number;
      try {
        n = readSync(0, byte, 0, 1, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw error;
      }
      if (n === 0 || byte[0] === 0x0a) break;
      line.push(byte[0]);
    }
    return Buffer.from(line).toString('utf8').replace(/\r$/, '');
  } finally {
    stty('echo');
    if (terminal) process.stderr.write('\n');
  }
}

/**
 * nbdkit_read_password: a password given as itself, or "-" (a line from stdin; typed at the
 * terminal with echo off when stdin is one), "-FD"
 * (read from an inherited descriptor, which is then closed) or "+FILE" (read from a file); one
 * trailing newline is dropped from what was read.
 */
export function readPassword(value: string, what = 'read_password'): string {
  if (value === '-') return readFromStdin();
  const fdMatch = /^-(\d+)$/.exec(value);
  if (fdMatch) {
    const fd = Number(fdMatch[1]);
    if (fd <= 2) throw new PluginError(`${what}: cannot use password=-${fd}: it is stdin, stdout or stderr`, 'EINVAL');
    try {
      const text = readAll(fd).toString('utf8');
      return withoutNewline(text);
    } catch (error) {
      throw new PluginError(`${what}: reading password from file descriptor ${fd}: ${(error as Error).message}`, 'EIO');
    } finally {
      try {
        closeSync(fd);
      } catch {
        // not open: already reported by the read
      }
    }
  }
  if (value.startsWith('+')) {
    const path = value.slice(1);
    try {
      return withoutNewline(readFileSync(path, 'utf8'));
    } catch (error) {
      throw new PluginError(`${what}: ${path}: ${(error as Error).message}`, 'EIO');
    }
  }
  return value;
}

/** The functions above by their nbdkit names, as the interpreters' bindings call them. */
export type ScriptValue = string | number | boolean;

/**
 * Call one of nbdkit's newer utility functions by name for the current callback's connection
 * (undefined outside a connection's callbacks). parse_delay answers "SEC NSEC". Throws a
 * PluginError with the message to print when the call fails.
 */
export function callByName(name: string, connection: ConnectionInfo | undefined, host: PluginHost, args: readonly unknown[]): ScriptValue {
  switch (name) {
    case 'disconnect':
      if (!disconnect(connection, Boolean(args[0]))) host.debug('no connection in this callback, ignoring disconnect request');
      return true;
    case 'is_tls':
      return isTls(connection);
    case 'stdio_safe':
      return host.stdioSafe;
    case 'nanosleep':
      nanosleep(Number(args[0] ?? 0), Number(args[1] ?? 0));
      return true;
    case 'peer_pid':
      return peerPid(connection);
    case 'peer_uid':
      return peerUid(connection);
    case 'peer_gid':
      return peerGid(connection);
    case 'peer_security_context':
      return peerSecurityContext(connection);
    case 'peer_tls_dn':
      return peerTlsDn(connection);
    case 'peer_tls_issuer_dn':
      return peerTlsIssuerDn(connection);
    case 'read_password':
      return readPassword(String(args[0] ?? ''));
    case 'parse_delay': {
      const delay = parseDelay(String(args[0] ?? ''), String(args[1] ?? ''));
      return `${delay.sec} ${delay.nsec}`;
    }
    case 'parse_probability':
      return parseProbability(String(args[0] ?? ''), String(args[1] ?? ''));
    default:
      throw new PluginError(`${name}: no such nbdkit function`, 'EINVAL');
  }
}
