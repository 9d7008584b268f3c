#!/usr/bin/env node
/** The nbdkit-ts command. */
import { main } from './host/server.js';

/**
 * Exit with `status`. The server's signal handlers are gone by now; without a handler a SIGTERM
 * arriving while Node tears down (joining its compiler and I/O threads takes milliseconds)
 * would kill the process and lose the exit status, so from here on signals are ignored.
 */
function exitWith(status: number): never {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  process.exit(status);
}

main(process.argv.slice(2)).then(exitWith, (error: unknown) => {
  process.stderr.write(`nbdkit-ts: error: ${error instanceof Error ? error.stack : String(error)}\n`);
  exitWith(1);
});
