/**
 * systemd socket activation, as nbdkit supports it and libnbd's
 * nbd_connect_systemd_socket_activation uses: the process that started us made the listening
 * sockets and passed them from fd 3 on, with LISTEN_PID (our pid) and LISTEN_FDS (how many).
 */
import { fstatSync } from 'node:fs';
import { logRaw, PROGRAM } from './log.js';
import { type ServerOptions, UsageError } from './options.js';

const FIRST_FD = 3;
/** More than this many is taken for a mistake, as nbdkit does. */
const MOST_FDS = 16;

/**
 * The descriptors passed to this process, or none. Unsets LISTEN_PID and LISTEN_FDS so that
 * child processes (--run is refused, but shell plugins run commands) do not take them as theirs.
 */
export function takeSocketActivation(env: NodeJS.ProcessEnv = process.env): number[] {
  const pid = env.LISTEN_PID;
  if (pid === undefined || !/^\d+$/.test(pid)) return [];
  if (Number(pid) !== process.pid) {
    logRaw(`${PROGRAM}: LISTEN_PID was not for us (ignored)`);
    return [];
  }
  const count = env.LISTEN_FDS;
  if (count === undefined || !/^\d+$/.test(count)) return [];
  if (Number(count) === 0 || Number(count) > MOST_FDS) throw new UsageError(`socket activation: LISTEN_FDS=${count} out of range`);
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  const fds: number[] = [];
  for (let fd = FIRST_FD; fd < FIRST_FD + Number(count); fd++) {
    let isSocket: boolean;
    try {
      isSocket = fstatSync(fd).isSocket();
    } catch (error) {
      throw new UsageError(`socket activation: invalid file descriptor fd = ${fd}: ${(error as Error).message}`);
    }
    if (!isSocket) throw new UsageError(`socket activation: file descriptor fd = ${fd} is not a socket`);
    fds.push(fd);
  }
  return fds;
}

/** The options that choose where to listen cannot be combined with sockets already given. */
export function checkSocketActivation(options: ServerOptions): void {
  const conflicts: Array<[boolean, string]> = [
    [options.run !== undefined, '--run'],
    [options.ipAddress !== undefined, '-i'],
    [options.port !== undefined, '-p'],
    [options.single, '-s'],
    [options.unixSocket !== undefined, '-U'],
  ];
  for (const [given, flag] of conflicts) {
    if (given) throw new UsageError(`cannot use socket activation with ${flag} flag`);
  }
}
