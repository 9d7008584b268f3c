/**
 * Messages on stderr in nbdkit's form. stdout is never used for messages: under -s it is the
 * NBD socket, and a stray byte there corrupts the protocol.
 */
import { writeSync } from 'node:fs';

/** The name messages start with: `nbdkit` when run as the nbdkit command (see cli.ts). */
export let PROGRAM = 'nbdkit-ts';

export function setProgramName(name: string): void {
  PROGRAM = name;
}

let verbose = false;
/** --log=null: every message is dropped. */
let silent = false;

export function setVerbose(on: boolean): void {
  verbose = on;
}

export function isVerbose(): boolean {
  return verbose;
}

export function setLogNull(on: boolean): void {
  silent = on;
}

// Synchronous writes keep messages ordered with the exit of the process and never queue
// unboundedly behind a slow terminal.
function emit(line: string): void {
  if (silent) return;
  try {
    writeSync(2, line.endsWith('\n') ? line : line + '\n');
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
  emit(`${PROGRAM}: warning: ${message}`);
}

/** `nbdkit-ts: debug: message`, printed only with -v. */
export function logDebug(message: string): void {
  if (verbose) emit(`${PROGRAM}: debug: ${message}`);
}

/** A plain line on stderr (tracebacks, --help of a failed run). */
export function logRaw(text: string): void {
  emit(text);
}
