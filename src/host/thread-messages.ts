/**
 * What the main thread and a connection thread (connection-worker.ts) tell each other. Kept
 * apart from both so that neither pulls in the other's code.
 */
import type { ResolvedPlugin } from './plugin-loader.js';

/** Everything a connection thread needs to make its copy of the plugin and serve. */
export interface ThreadSetup {
  plugin: string;
  params: ResolvedPlugin['params'];
  readonly: boolean;
  threads: number;
  verbose: boolean;
  noStructuredReplies: boolean;
  noMetaContexts: boolean;
  handshakeTimeoutMs: number;
  /** The server's ConnectionCount, shared. */
  connectionCount: Int32Array;
}

export type ToThread =
  /** Serve the client on this descriptor (the thread owns it from now on). */
  | { kind: 'serve'; fd: number; id: number }
  /** The server shuts down: stop reading requests, finish those in flight, then exit. */
  | { kind: 'stop' }
  /** Close the connection now, whatever is still in flight. */
  | { kind: 'cut' };

export type FromThread =
  /** The plugin copy is configured: the thread can take a connection. */
  | { kind: 'ready' }
  /** The plugin copy could not be made (the message has been logged). */
  | { kind: 'failed' }
  /** The connection `id` has ended. */
  | { kind: 'done'; id: number }
  /** The plugin called nbdkit_shutdown. */
  | { kind: 'shutdown' };
