/**
 * The in-process API: start an NBD server inside a Node program, serving a plugin object (the
 * interface `js` plugins have, languages/js/types.ts) or any plugin the command has (`memory`,
 * a Lua, Python, Tcl or shell script, ...), learn its URI, and close it.
 *
 *   const server = await startServer({ plugin: myPlugin, listen: { unix: '/tmp/disk.sock' } });
 *   console.log(server.uri);   // nbd+unix:///?socket=/tmp/disk.sock
 *   await server.close();
 *
 * Options are turned into the command line they stand for and parsed by the command's own
 * parser, so they mean exactly what the nbdkit-ts command's options mean (README, Command line).
 */
import { Backend } from './host/backend.js';
import { serverUri } from './host/captive.js';
import type { Listening } from './host/listeners.js';
import { setLogDestination, setVerbose } from './host/log.js';
import { parseCommandLine, type ServerOptions as CommandLine } from './host/options.js';
import type { Plugin as ServerPlugin } from './host/plugin.js';
import { configure, instantiate, resolvePlugin } from './host/plugin-loader.js';
import { Connections, listenAsOptions, makeHost, Shutdown } from './host/serving.js';
import { loadTlsConfig } from './host/tls.js';
import { pluginFromObject } from './languages/js/index.js';
import type { Plugin } from './languages/js/types.js';

/** Where the server listens. */
export type Listen =
  /** A Unix socket at this path (created, and removed at close); '-' for a private one in a temporary directory. */
  | { unix: string }
  /** TCP on this port (0: any free one; see NbdServer.port) and address (default: all). */
  | { port: number; host?: string }
  /** A socket that is already bound and listening, by file descriptor (the server owns it from then on: close() closes it). */
  | { fd: number };

export interface StartOptions {
  /**
   * The plugin: an object with nbdkit's callback names (the interface of `js` plugins), or the
   * name of a plugin or language (`memory`, `file`, `lua`, `python`, `tcl`, `sh`, `eval`, ...)
   * or the path of a script, as given to the nbdkit-ts command.
   */
  plugin: Plugin<any> | string;
  /**
   * The plugin's parameters, in order: an object of key=value pairs, or command-line words
   * (`['script.lua', 'size=1G']`; a bare word goes to the plugin's magic key).
   */
  params?: Record<string, string | number | bigint> | string[];
  /** Default: a private Unix socket ({ unix: '-' }). */
  listen?: Listen;
  readonly?: boolean;
  /** The export name in the URI (-e). */
  exportName?: string;
  /** At most this many requests of one connection in a parallel plugin at once (-t; default 16). */
  threads?: number;
  /** More of the command's options, as words: ['--no-sr'], ['--tls=require', '--tls-psk=keys.psk'], ['-v']. */
  args?: string[];
}

export interface NbdServer {
  /** The NBD URI clients connect to (nbd+unix:///?socket=PATH, nbd://localhost:PORT, ...). */
  readonly uri: string;
  /** The Unix socket's path, when listening on one. */
  readonly unixSocket: string | undefined;
  /** The TCP port, when listening on TCP (the one chosen, for port 0). */
  readonly port: number | undefined;
  /** Resolves once the server has stopped: after close(), or the plugin asked (nbdkit_shutdown). */
  readonly closed: Promise<void>;
  /**
   * Stop accepting, let every connection finish and answer what is in flight (cut off after
   * 5 s), then the plugin's close, cleanup and unload. Resolves when all is done.
   */
  close(): Promise<void>;
}

/** The options as the command line they stand for (the listen descriptor aside). */
function commandLine(options: StartOptions): string[] {
  const argv = [...(options.args ?? [])];
  const listen = options.listen ?? { unix: '-' };
  if ('unix' in listen) argv.push('-U', listen.unix);
  else if ('port' in listen) argv.push('-p', String(listen.port), ...(listen.host !== undefined ? ['-i', listen.host] : []));
  if (options.readonly) argv.push('-r');
  if (options.exportName !== undefined) argv.push('-e', options.exportName);
  if (options.threads !== undefined) argv.push('-t', String(options.threads));
  // An object plugin runs as `js` (its adapter); its parameters all go to its config.
  argv.push('--', typeof options.plugin === 'string' ? options.plugin : 'js');
  const params = options.params ?? [];
  if (Array.isArray(params)) argv.push(...params);
  else for (const [key, value] of Object.entries(params)) argv.push(`${key}=${String(value)}`);
  return argv;
}

/** Refuse what only makes sense for a command: an embedded server has no stdio and no process to run. */
function checkEmbeddable(options: CommandLine): void {
  const refused: Array<[boolean, string]> = [
    [options.single, '-s'],
    [options.run !== undefined, '--run'],
    [options.pidFile !== undefined, '-P'],
    [options.dumpPlugin || options.dumpConfig || options.help || options.version, 'information options'],
  ];
  for (const [given, what] of refused) if (given) throw new Error(`startServer: ${what} cannot be used in-process`);
}

/** Start serving; resolves once the server listens. Rejects (serving nothing) on a bad option or a plugin's start-up failure. */
export async function startServer(options: StartOptions): Promise<NbdServer> {
  const parsed = parseCommandLine(commandLine(options));
  checkEmbeddable(parsed);
  // Messages are the process's (as its stderr is): only options given change them.
  if (parsed.verbose) setVerbose(true);
  if (parsed.log !== undefined) setLogDestination(parsed.log);
  const shutdown = new Shutdown();
  const host = makeHost(parsed, shutdown);

  let plugin: ServerPlugin;
  let params = parsed.params;
  if (typeof options.plugin === 'string') {
    const resolved = resolvePlugin(parsed);
    plugin = await instantiate(resolved.name, host);
    params = resolved.params;
  } else {
    plugin = pluginFromObject(options.plugin);
  }
  const tls = loadTlsConfig(parsed);
  const backend = new Backend(plugin, { readonly: parsed.readonly, threads: parsed.threads });
  let listening: Listening;
  let connections: Connections;
  try {
    await configure(plugin, params, { complete: true });
    await backend.prepare();
    const listenFds = options.listen && 'fd' in options.listen ? [options.listen.fd] : [];
    connections = new Connections(backend, parsed, tls, shutdown);
    listening = await listenAsOptions(parsed, tls, connections.accept, listenFds);
  } catch (error) {
    await backend.cleanup();
    await backend.unload();
    throw error;
  }
  try {
    await backend.afterFork();
  } catch (error) {
    // A plugin that cannot reach what it serves (the nbd plugin's shared connection, say).
    await listening.close();
    await backend.cleanup();
    await backend.unload();
    throw error;
  }

  const closed = shutdown.done.then(async () => {
    const closing = listening.close();
    await connections.drain();
    await closing;
    await backend.cleanup();
    await backend.unload();
  });
  return {
    uri: serverUri(parsed, listening),
    unixSocket: listening.unixSocket,
    port: listening.port,
    closed,
    close: () => {
      shutdown.request();
      return closed;
    },
  };
}
