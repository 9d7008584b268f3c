/**
 * Messages in nbdkit's form, on stderr or in the system log (--log). stdout is never used for
 * messages: under -s it is the NBD socket, and a stray byte there corrupts the protocol.
 */
import { openSync, writeSync } from 'node:fs';
import { Priority, syslog } from './syslog.js';

/** The name messages start with: `nbdkit` when run as the nbdkit command (see cli.ts). */
export let PROGRAM = 'nbdkit-ts';

export function setProgramName(name: string): void {
  PROGRAM = name;
}

/** Where messages go: --log=stderr (the default in the foreground), syslog, or null (nowhere). */
export type LogDestination = 'stderr' | 'syslog' | 'null';

let verbose = false;
let destination: LogDestination = 'stderr';
/** Where 'stderr' messages are written: stderr, or the file of --log=/path. */
let logFd = 2;

export function setVerbose(on: boolean): void {
  verbose = on;
}

export function isVerbose(): boolean {
  return verbose;
}

export function setLogDestination(to: LogDestination): void {
  destination = to;
}

/** --log=/path: append every message to this file from now on (throws if it cannot be opened). */
export function setLogFile(path: string): void {
  logFd = openSync(path, 'a', 0o644);
  destination = 'stderr';
}

// Synchronous writes keep messages ordered with the exit of the process and never queue
// unboundedly behind a slow terminal.
function emit(line: string, priority: number = Priority.ERR): void {
  if (destination === 'null') return;
  if (destination === 'syslog') {
    // The log names the program itself (its tag).
    syslog(priority, line.startsWith(`${PROGRAM}: `) ? line.slice(PROGRAM.length + 2) : line);
    return;
  }
  try {
    writeSync(logFd, line.endsWith('\n') ? line : line + '\n');
  } catch {
    // stderr closed: nowhere left to report to.
  }
}

/** `nbdkit-ts: error: message`, printed always. */
export function logError(message: string): void {
  emit(`${PROGRAM}: error: ${message}`);
}

/** `nbdkit-ts: warning: message`. */
export function logWarning(message: string): void {
  emit(`${PROGRAM}: warning: ${message}`, Priority.WARNING);
}

/** `nbdkit-ts: debug: message`, printed only with -v. */
export function logDebug(message: string): void {
  if (verbose) emit(`${PROGRAM}: debug: ${message}`, Priority.DEBUG);
}

/** A plain line on stderr (tracebacks, --help of a failed run). */
export function logRaw(text: string): void {
  emit(text);
}
