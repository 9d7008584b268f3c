#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS NBDKIT_TS_NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} node
/**
 * The nbdkit-ts command. The `#!` line starts Node without NODE_EXTRA_CA_CERTS, which it would
 * otherwise load at start for nothing (see host/node-start.ts); the value is restored below.
 */
import { basename } from 'node:path';
import { PROGRAM, setProgramName } from './host/log.js';
import { restoreExtraCaCerts } from './host/node-start.js';
import { main } from './host/server.js';
import { invokedAs } from './host/invocation.js';

/**
 * Exit with `status`. A server leaves its signal handlers installed (exitsAfter); on the other
 * paths to here signals are ignored from now on too, so that one arriving while Node tears down
 * cannot kill the process and lose the exit status.
 */
function exitWith(status: number): never {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  process.exit(status);
}

restoreExtraCaCerts();
setProgramName(invokedAs(basename(process.argv[1] ?? '')));
main(process.argv.slice(2), { exitsAfter: true }).then(exitWith, (error: unknown) => {
  process.stderr.write(`${PROGRAM}: error: ${error instanceof Error ? error.stack : String(error)}\n`);
  exitWith(1);
});
