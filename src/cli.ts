#!/usr/bin/env node
/** The nbdkit-ts command. */
import { main } from './host/server.js';

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error: unknown) => {
    process.stderr.write(`nbdkit-ts: error: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
