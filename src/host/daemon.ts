/**
 * Going into the background without -f. Node cannot fork, so the server starts itself again in
 * the foreground as a detached child and the parent exits only once the child is listening
 * (or exits with the child's failure status), which is what nbdkit's caller observes too.
 */
import { spawn } from 'node:child_process';
import { writeSync, closeSync } from 'node:fs';
import { PROGRAM_VARIABLE } from './invocation.js';
import { PROGRAM } from './log.js';
import { withExtraCaCertsSaved } from './node-start.js';

const READY_FD_VARIABLE = 'NBDKIT_TS_READY_FD';

/**
 * In the child: tell the waiting parent that the server is listening. True in a server that
 * has gone to the background this way (its stderr leads nowhere from now on).
 */
export function notifyReady(): boolean {
  const fd = Number(process.env[READY_FD_VARIABLE]);
  if (!Number.isInteger(fd) || fd < 3) return false;
  delete process.env[READY_FD_VARIABLE];
  try {
    writeSync(fd, 'ready\n');
    closeSync(fd);
  } catch {
    // The parent is gone; nothing to tell.
  }
  return true;
}

/**
 * In the parent: start the detached foreground server and wait for it to be ready.
 * Like nbdkit, the background server keeps no hold on the caller's stdin and stdout (a caller
 * reading our output to its end must not wait for the server's exit); its stderr is relayed
 * until it is ready, so start-up errors still reach the user, and kept afterwards only with -v.
 */
export function daemonize(argv: string[], verbose: boolean): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '-f', ...argv], {
      detached: true,
      stdio: ['ignore', 'ignore', verbose ? 'inherit' : 'pipe', 'pipe'],
      // The child skips Node's certificate loading as the command's #! line does, and goes by
      // the same name.
      env: { ...withExtraCaCertsSaved(process.env), [READY_FD_VARIABLE]: '3', [PROGRAM_VARIABLE]: PROGRAM },
    });
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    let settled = false;
    const finish = (status: number): void => {
      if (settled) return;
      settled = true;
      resolve(status);
    };
    const ready = child.stdio[3];
    ready?.on('data', () => {
      ready.destroy();
      child.stderr?.destroy();
      child.unref();
      finish(0);
    });
    child.on('exit', (code) => finish(code ?? 1));
    child.on('error', () => finish(1));
  });
}
