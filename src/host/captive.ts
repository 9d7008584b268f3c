/**
 * --run: captive nbdkit. The command runs under /bin/sh with $uri, $nbd, $exportname, $tls,
 * $port and $unixsocket describing this server; nbdkit-ts exits with the command's status.
 */
import { spawn } from 'node:child_process';
import type { Listening } from './listeners.js';
import { logRaw, PROGRAM } from './log.js';
import type { ServerOptions } from './options.js';
import { constants } from 'node:os';

/** Percent-encode for a URI path or query, leaving the characters nbdkit leaves alone. */
function uriQuote(text: string): string {
  return text.replace(/[^A-Za-z0-9/.\-_~]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

/** The NBD URI of the server (as $uri has it, and as --print-uri prints it): nbd://localhost:PORT/NAME or nbd+unix:///NAME?socket=PATH. */
export function serverUri(options: ServerOptions, listening: Listening): string {
  const scheme = options.tls === 'require' ? 'nbds' : 'nbd';
  const name = options.exportName;
  const path = name === '' ? '' : `/${uriQuote(name)}`;
  if (listening.port !== undefined) return `${scheme}://localhost:${listening.port}${path}`;
  return `${scheme}+unix://${path}?socket=${uriQuote(listening.unixSocket ?? '')}`;
}

export function captiveEnvironment(options: ServerOptions, listening: Listening): NodeJS.ProcessEnv {
  const name = options.exportName;
  const uri = serverUri(options, listening);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    uri,
    nbd: uri,
    exportname: name,
    port: listening.port !== undefined ? String(listening.port) : '',
    unixsocket: listening.unixSocket ?? '',
  };
  if (options.tls !== 'off') env.tls = options.tls === 'require' ? '2' : '1';
  return env;
}

/** Run the command; resolves to its exit status (128 + signal number if it was killed). */
export function runCaptive(command: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: 'inherit' });
    child.on('error', (error) => {
      logRaw(`${PROGRAM}: error: failure to execute external command: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => {
      if (code !== null) return resolve(code);
      const number = signal ? constants.signals[signal] : 0;
      logRaw(`${PROGRAM}: external command was killed by signal ${number}`);
      resolve(128 + number);
    });
  });
}
