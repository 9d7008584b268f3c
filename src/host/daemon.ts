/**
 * Going into the background without -f. Node cannot fork, so the server starts itself again in
 * the foreground as a detached child and the parent exits only once the child is listening
 * (or exits with the child's failure status), which is what nbdkit's caller observes too.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import type { Readable } from 'node:stream';
import { writeSync, closeSync } from 'node:fs';
import { PROGRAM_VARIABLE } from './invocation.js';
import { PROGRAM } from './log.js';
import { withExtraCaCertsSaved } from './node-start.js';

const READY_FD_VARIABLE = 'NBDKIT_TS_READY_FD';

/**
 * In the child: tell the waiting parent that the server is listening, and give it the line to
 * print on its stdout (--print-uri), if any. True in a server that has gone to the background
 * this way (its stderr leads nowhere from now on).
 */
export function notifyReady(print?: string): boolean {
  const fd = Number(process.env[READY_FD_VARIABLE]);
  if (!Number.isInteger(fd) || fd < 3) return false;
  delete process.env[READY_FD_VARIABLE];
  try {
    writeSync(fd, print === undefined ? 'ready\n' : `ready ${print}\n`);
    closeSync(fd);
  } catch {
    // The parent is gone; nothing to tell.
  }
  return true;
}

/**
 * In the parent: start the detached foreground server and wait for it to be ready. `input`, when
 * given, is what the server reads on its stdin; `inheritFds` are passed on with their numbers.
 * Like nbdkit, the background server keeps no hold on the caller's stdin and stdout (a caller
 * reading our output to its end must not wait for the server's exit); its stderr is relayed
 * until it is ready, so start-up errors still reach the user, and kept afterwards only with -v.
 */
export function daemonize(
  argv: string[],
  verbose: boolean,
  input?: Buffer | 'inherit',
  inheritFds: number[] = [],
): Promise<number> {
  return new Promise((resolve) => {
    // Descriptors the plugin was given (the file plugin's fd=, dirfd=) keep their numbers in the
    // server; the ready pipe takes the first number after them all.
    // 'inherit': the server reads the caller's stdin itself (a password typed at the terminal).
    const stdio: StdioOptions = [input === 'inherit' ? 'inherit' : input ? 'pipe' : 'ignore', 'ignore', verbose ? 'inherit' : 'pipe'];
    for (const fd of inheritFds) {
      while (stdio.length < fd) stdio.push('ignore');
      stdio[fd] = fd;
    }
    const readyFd = stdio.length;
    stdio.push('pipe');
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '-f', ...argv], {
      detached: true,
      stdio,
      // The child skips Node's certificate loading as the command's #! line does, and goes by
      // the same name.
      env: { ...withExtraCaCertsSaved(process.env), [READY_FD_VARIABLE]: String(readyFd), [PROGRAM_VARIABLE]: PROGRAM },
    });
    // What the caller gave on stdin for the server (`sh -`'s script), read here as nbdkit reads
    // it before forking: the server reads it from a pipe that then ends.
    child.stdin?.on('error', () => undefined);
    if (input !== 'inherit') child.stdin?.end(input);
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    let settled = false;
    const finish = (status: number): void => {
      if (settled) return;
      settled = true;
      resolve(status);
    };
    const ready = child.stdio[readyFd] as Readable | null | undefined;
    ready?.on('data', (chunk: Buffer) => {
      const line = chunk.toString('utf8').replace(/\n$/, '');
      if (line.startsWith('ready ')) process.stdout.write(`${line.slice(6)}\n`);
      ready.destroy();
      child.stderr?.destroy();
      child.unref();
      finish(0);
    });
    child.on('exit', (code) => finish(code ?? 1));
    child.on('error', () => finish(1));
  });
}
