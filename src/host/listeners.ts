/**
 * Where clients come from: a Unix socket (-U, including a private one for -U -), TCP (-p/-i),
 * sockets already listening that were handed over (systemd socket activation, an embedder's),
 * or stdin/stdout for exactly one client (-s).
 */
import { fstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, type ListenOptions, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import type { ClientStreams } from './connection.js';
import type { PeerAddress } from './plugin.js';
import { takeOverWithDirectReads } from './direct-socket.js';

export type Accept = (streams: ClientStreams) => void;

/**
 * How accepted sockets are read: `direct` (no TLS to wrap them in later) reads into the
 * InputReader's own buffers, `streams` through 'data' events.
 */
export type SocketReads = 'direct' | 'streams';

/** The client's address as nbdkit_peer_name reports it (read at accept, before any take-over). */
export function peerOf(socket: Socket): PeerAddress {
  const { remoteAddress, remotePort, remoteFamily } = socket;
  if (remoteAddress === undefined || remotePort === undefined) return { family: 'unix' };
  // Node listens on one dual-stack socket where nbdkit has one per family: an IPv4 client
  // shows up as ::ffff:a.b.c.d here, and as a.b.c.d under nbdkit.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remoteAddress);
  if (mapped) return { family: 'ipv4', address: mapped[1], port: remotePort };
  return { family: remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4', address: remoteAddress, port: remotePort };
}

/** A socket's descriptor, for reading its peer's credentials (peer.ts). */
function descriptorOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function acceptor(reads: SocketReads, accept: Accept, keepAlive: boolean): (socket: Socket) => void {
  return (accepted) => {
    // --keepalive: SO_KEEPALIVE stays on the descriptor whoever reads it afterwards.
    if (keepAlive) accepted.setKeepAlive(true);
    const peerFd = descriptorOf(accepted);
    const peer = peerOf(accepted);
    const taken = reads === 'direct' ? takeOverWithDirectReads(accepted) : undefined;
    const streams = taken ? { ...socketStreams(taken.socket), reader: taken.reader, socketFd: taken.fd } : socketStreams(accepted);
    accept({ ...streams, peerFd, peer });
  };
}

function createListener(reads: SocketReads, accept: Accept, keepAlive = false): Server {
  // Paused, so that a socket taken over has read nothing yet.
  return createServer({ pauseOnConnect: reads === 'direct' }, acceptor(reads, accept, keepAlive));
}

/** Close a socket gracefully, and for good even if the client never reads what is queued. */
export function socketStreams(socket: Socket): ClientStreams {
  socket.setNoDelay(true);
  return {
    input: socket,
    output: socket,
    transport: () => socket,
    close: (now = false) => {
      if (socket.destroyed) return;
      if (now) return void socket.destroy();
      socket.end();
      // The connection reads nothing more, so it would not see the client close its end: once
      // every queued byte is with the kernel (which still delivers it), the socket is done.
      // A client that never reads keeps 'finish' from coming; the timer ends it then.
      socket.once('finish', () => socket.destroy());
      const timer = setTimeout(() => socket.destroy(), 5000).unref();
      // Else the timer would hold the socket and its connection's buffers for 5 s after the
      // end: a client reconnecting in a loop made that thousands of dead connections.
      socket.once('close', () => clearTimeout(timer));
    },
  };
}

export interface Listening {
  /** For $uri and friends. */
  unixSocket?: string;
  port?: number;
  close(): Promise<void>;
}

function listen(server: Server, where: ListenOptions | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(where, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export async function listenUnix(path: string, reads: SocketReads, accept: Accept): Promise<Listening> {
  let privateDir: string | undefined;
  let socketPath = path;
  if (path === '-') {
    privateDir = mkdtempSync(join(tmpdir(), 'nbdkit-ts'));
    socketPath = join(privateDir, 'socket');
  }
  const server = createListener(reads, accept);
  try {
    await listen(server, { path: socketPath });
  } catch (error) {
    if (privateDir) rmSync(privateDir, { recursive: true, force: true });
    throw new Error(`bind: ${socketPath}: ${(error as Error).message}`);
  }
  return {
    unixSocket: socketPath,
    close: async () => {
      await closeServer(server);
      try {
        unlinkSync(socketPath);
      } catch {
        // Already gone (Node removes it on close on some platforms).
      }
      if (privateDir) rmSync(privateDir, { recursive: true, force: true });
    },
  };
}

export async function listenTcp(
  port: number,
  host: string | undefined,
  reads: SocketReads,
  accept: Accept,
  family?: 4 | 6,
  keepAlive = false,
): Promise<Listening> {
  const server = createListener(reads, accept, keepAlive);
  // -4 / -6 without -i: every address of that family only.
  if (host === undefined && family !== undefined) host = family === 4 ? '0.0.0.0' : '::';
  try {
    await listen(server, { port, host, ipv6Only: family === 6 });
  } catch (error) {
    throw new Error(`bind: ${host ?? '*'}:${port}: ${(error as Error).message}`);
  }
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  return { port: boundPort, close: () => closeServer(server) };
}

/**
 * Accept on sockets that are already bound and listening, given by descriptor (socket
 * activation passes them from fd 3 on). Closing closes the descriptors but leaves a Unix
 * socket's file in place: it belongs to whoever made the socket.
 */
export async function listenOnDescriptors(fds: number[], reads: SocketReads, accept: Accept): Promise<Listening> {
  const servers: Server[] = [];
  const listening: Listening = { close: async () => void (await Promise.all(servers.map(closeServer))) };
  for (const fd of fds) {
    const server = createListener(reads, accept);
    try {
      await listen(server, { fd });
    } catch (error) {
      await listening.close();
      throw new Error(`listening on file descriptor ${fd}: ${(error as Error).message}`);
    }
    servers.push(server);
    // The first socket is the one $uri and friends describe.
    const address = server.address();
    if (servers.length > 1) continue;
    if (typeof address === 'string' || address === null) listening.unixSocket = address || unixSocketPath(fd);
    else listening.port = address.port;
  }
  return listening;
}

/**
 * The path a Unix socket given by descriptor is bound to (Node knows it only for sockets it
 * bound itself): the socket's inode from /proc/self/fd, looked up in /proc/net/unix.
 */
function unixSocketPath(fd: number): string | undefined {
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (inode === undefined) return undefined;
    // Num RefCount Protocol Flags Type St Inode Path
    for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[6] === inode && fields[7] !== undefined) return fields[7];
    }
  } catch {
    // No /proc: the URI goes without the path.
  }
  return undefined;
}

/** -s: the single client is on stdin and stdout. */
export function stdioStreams(): ClientStreams {
  let peer: PeerAddress | undefined;
  try {
    // libnbd's connect_command and qemu hand the server one end of a socketpair.
    if (fstatSync(0).isSocket()) peer = { family: 'unix' };
  } catch {
    peer = undefined;
  }
  return {
    peer,
    input: process.stdin,
    output: process.stdout,
    // nbdkit reads the peer's credentials from stdin, a socket when libnbd's connect_command ran it.
    peerFd: 0,
    transport: () => Duplex.from({ readable: process.stdin, writable: process.stdout }),
    close: () => {
      process.stdin.destroy();
      process.stdout.end();
    },
  };
}
