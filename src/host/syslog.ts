/**
 * Messages to the system log, as nbdkit logs in the background (--log=syslog, and the default
 * once a server has detached). Node has no syslog(3) and cannot send to /dev/log (a Unix
 * datagram socket), so one long-lived logger(1) process, started with the first message,
 * takes them on its stdin, one line each with its priority as a `<N>` prefix.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { PROGRAM } from './log.js';

/** syslog priorities (facility daemon) for each kind of message. */
const DAEMON = 3 << 3;
export const Priority = { ERR: DAEMON | 3, WARNING: DAEMON | 4, DEBUG: DAEMON | 7 } as const;

/** What may wait for logger to take it; beyond this messages are dropped, never queued without bound. */
const MAX_QUEUED_BYTES = 1024 * 1024;

/**
 * Where logger sends (its --socket); unset, logger chooses the system's log as usual. For
 * tests, and for systems whose log listens elsewhere.
 */
const SOCKET_VARIABLE = 'NBDKIT_TS_SYSLOG_SOCKET';

let logger: ChildProcess | undefined;
let broken = false;

function start(): ChildProcess | undefined {
  if (broken) return undefined;
  const args = ['--tag', PROGRAM, `--id=${process.pid}`, '--prio-prefix'];
  const socket = process.env[SOCKET_VARIABLE];
  if (socket) args.push('--socket', socket, '--socket-errors=on');
  try {
    const child = spawn('logger', args, { stdio: ['pipe', 'ignore', 'ignore'] });
    // Neither the process nor its pipe keeps the server alive; logger ends at our exit (EOF).
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    const fail = (): void => {
      broken = true;
      logger = undefined;
    };
    child.on('error', fail);
    child.on('exit', fail);
    child.stdin!.on('error', fail);
    return child;
  } catch {
    broken = true;
    return undefined;
  }
}

/** Send one message (its lines each) with this priority. Lost, silently, if there is no log. */
export function syslog(priority: number, message: string): void {
  logger ??= start();
  const input = logger?.stdin;
  if (!input || input.destroyed || input.writableLength > MAX_QUEUED_BYTES) return;
  const lines = message.replace(/\n$/, '').split('\n');
  input.write(lines.map((line) => `<${priority}>${line}\n`).join(''));
}
