/**
 * What a listening server is made of, shared by the nbdkit-ts command (server.ts) and the
 * in-process API (../embed.ts): the shutdown request, the services a plugin gets, the set of
 * client connections with their drain at shutdown, and choosing where to listen.
 */
import type { Backend } from './backend.js';
import { type ClientStreams, type ConnectionOptions, serveConnection } from './connection.js';
import { listenOnDescriptors, listenTcp, listenUnix, type Listening, type SocketReads } from './listeners.js';
import { logDebug, logError } from './log.js';
import type { ServerOptions } from './options.js';
import type { PluginHost } from './plugin.js';
import { parseSize } from './size.js';
import type { TlsConfig } from './tls.js';

export const DEFAULT_PORT = 10809;

/** How long connections may take to finish what is in flight at shutdown before being cut off. */
const DRAIN_MS = 5000;

/** A request to stop serving, from a signal, the plugin (nbdkit_shutdown), --run or close(). */
export class Shutdown {
  private requested = false;
  private resolve: (() => void) | undefined;
  readonly done = new Promise<void>((resolve) => (this.resolve = resolve));
  private readonly listeners = new Set<() => void>();

  request(): void {
    if (this.requested) return;
    this.requested = true;
    this.resolve?.();
    for (const listener of this.listeners) listener();
  }

  /**
   * Call `listener` at shutdown, until the returned function is called. (A `.then` on `done`
   * per connection would keep every connection's closure alive until the server exits.)
   */
  onRequest(listener: () => void): () => void {
    if (this.requested) {
      listener();
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The services the server offers its plugin (nbdkit_debug, nbdkit_shutdown, ...). */
export function makeHost(options: ServerOptions, shutdown: Shutdown): PluginHost {
  return {
    debug: (message) => logDebug(message),
    error: (message) => logError(message),
    parseSize: (text) => parseSize(text),
    shutdown: () => shutdown.request(),
    readonly: options.readonly,
    verbose: options.verbose,
    stdioSafe: !options.single,
    debugFlag: (name) => options.debugValues[name],
  };
}

/** The server's client connections: each served until it ends or the server shuts down. */
export class Connections {
  private readonly open = new Map<ClientStreams, Promise<void>>();
  private readonly options: ConnectionOptions;

  constructor(
    private readonly backend: Backend,
    options: ServerOptions,
    tls: TlsConfig | undefined,
    shutdown: Shutdown,
  ) {
    this.options = {
      noStructuredReplies: options.noStructuredReplies,
      noMetaContexts: options.noMetaContexts,
      handshakeMask: options.handshakeMask,
      tls,
      // How long a client may take to choose an export (one that never does holds a socket).
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      onStop: (listener) => shutdown.onRequest(listener),
      soleClient: () => this.open.size === 1,
    };
  }

  /** Serve a new client; resolves when that connection has ended. */
  readonly accept = (streams: ClientStreams): Promise<void> => {
    const connection = serveConnection(streams, this.backend, this.options).finally(() => this.open.delete(streams));
    this.open.set(streams, connection);
    return connection;
  };

  /**
   * After shutdown: every connection has stopped reading (onStop), finishes and answers what is in
   * flight and closes its handle; those still there after a while are cut off.
   */
  async drain(): Promise<void> {
    await Promise.race([Promise.allSettled([...this.open.values()]), delay(DRAIN_MS)]);
    for (const streams of this.open.keys()) streams.close(true);
  }
}

/**
 * Listen where the options say: the sockets handed over (socket activation), -U, -p/-i, a
 * private Unix socket for --run, else TCP on the default port.
 */
export function listenAsOptions(
  options: ServerOptions,
  tls: TlsConfig | undefined,
  accept: (streams: ClientStreams) => void,
  listenFds: number[] = [],
): Promise<Listening> {
  // A socket that may be wrapped in TLS must keep Node's own reading (see direct-socket.ts).
  const reads: SocketReads = tls ? 'streams' : 'direct';
  if (listenFds.length > 0) return listenOnDescriptors(listenFds, reads, accept);
  if (options.unixSocket !== undefined) return listenUnix(options.unixSocket, reads, accept);
  if (options.port !== undefined || options.ipAddress !== undefined || options.run === undefined) {
    return listenTcp(Number(options.port ?? DEFAULT_PORT), options.ipAddress, reads, accept, options.ipFamily, options.keepAlive);
  }
  return listenUnix('-', reads, accept);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
