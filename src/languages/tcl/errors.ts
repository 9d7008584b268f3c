/**
 * Turning a failed Tcl call into nbdkit's error report: the message with Tcl's errorInfo (where
 * it happened) on stderr, and a PluginError carrying the errno the client sees.
 */
import { TclError } from '#wasm-tcl';
import { PluginError, ReportedPluginError } from '../../host/plugin.js';

/**
 * errorInfo without its last frame when that frame is the adapter's own call of the proc
 * (`invoked from within "pread file3 512 0"`): it says nothing the callback name does not, and
 * for pwrite it would quote the data written.
 */
export function trimErrorInfo(errorInfo: string, proc: string): string {
  for (const marker of ['\n    invoked from within\n"', '\n    while executing\n"']) {
    const at = errorInfo.lastIndexOf(marker);
    if (at >= 0 && errorInfo.startsWith(proc, at + marker.length)) return errorInfo.slice(0, at);
  }
  return errorInfo;
}

/** Lines of a long errorInfo printed from its start and from its end. */
const HEAD_LINES = 20;
const TAIL_LINES = 8;
const OMITTED = /^ {4}\.\.\. \((\d+) lines omitted\)$/;

/**
 * errorInfo cut to its first and last lines: a runaway recursion leaves three lines per level,
 * and one failed request should not fill the log. (The runtime may have cut it already, with
 * a line of the same form, whose count is added in.)
 */
export function abbreviateErrorInfo(errorInfo: string): string {
  const lines = errorInfo.split('\n');
  if (lines.length <= HEAD_LINES + TAIL_LINES + 1) return errorInfo;
  const hidden = lines.slice(HEAD_LINES, lines.length - TAIL_LINES);
  let omitted = hidden.length;
  for (const line of hidden) {
    const already = OMITTED.exec(line);
    if (already) omitted += Number(already[1]) - 1;
  }
  return [...lines.slice(0, HEAD_LINES), `    ... (${omitted} lines omitted)`, ...lines.slice(-TAIL_LINES)].join('\n');
}

/** The text to print for a failure: errorInfo for a Tcl error, the message otherwise. */
export function describeFailure(error: unknown, proc: string): { message: string; detail: string } {
  if (error instanceof TclError) {
    const detail = abbreviateErrorInfo(trimErrorInfo(error.errorInfo || error.message, proc));
    return { message: error.message, detail };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { message, detail: message };
}

/**
 * A failure in a callback the backend calls: printed here (with errorInfo) in nbdkit's form
 * `callback: message`, then thrown as already reported so the backend only maps the errno.
 */
export function reportedFailure(
  printError: (message: string) => void,
  callback: string,
  proc: string,
  error: unknown,
  errno: string | undefined,
): ReportedPluginError {
  const { message, detail } = describeFailure(error, proc);
  printError(`${callback}: ${detail}`);
  return new ReportedPluginError(`${callback}: ${message}`, errno ?? errnoOf(error));
}

/** A failure during start-up (config, config_complete): the command line reports it. */
export function startupFailure(callback: string, proc: string, error: unknown, errno?: string): PluginError {
  const { detail } = describeFailure(error, proc);
  return new PluginError(`${callback}: ${detail}`, errno ?? errnoOf(error));
}

function errnoOf(error: unknown): string {
  return error instanceof PluginError ? error.errno : 'EIO';
}
