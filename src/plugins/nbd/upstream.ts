/**
 * Where the nbd plugin's upstream server is and how to reach it: a Unix socket, TCP, an NBD
 * URI, an inherited socket, or a command run with systemd socket activation; plus the TLS
 * settings the client side of STARTTLS uses.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { type Server, Socket, createConnection, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { PluginError } from '../../host/plugin.js';
import { parsePskFile } from '../../host/tls.js';
import type { TlsMode } from './client-handshake.js';

export type Target =
  | { kind: 'unix'; path: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'fd'; fd: number }
  | { kind: 'command'; argv: string[] };

export interface TlsSettings {
  mode: TlsMode;
  certificates?: string;
  verify?: boolean;
  username?: string;
  psk?: string;
}

/** An NBD URI as libnbd reads it: nbd[s][+unix]://[user@]host[:port]/export[?socket=...]. */
export interface ParsedUri {
  target: Target;
  exportName: string;
  tlsRequired: boolean;
  tlsAllowed: boolean;
  username?: string;
  psk?: string;
  certificates?: string;
}

export function parseNbdUri(text: string): ParsedUri {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PluginError(`uri: ${text}: not a valid URI`, 'EINVAL');
  }
  const scheme = url.protocol.replace(/:$/, '');
  const match = /^(nbds?)(\+(unix|tcp|vsock))?$/.exec(scheme);
  if (!match) throw new PluginError(`uri: ${text}: unknown URI scheme '${scheme}'`, 'EINVAL');
  const secure = match[1] === 'nbds';
  const transport = match[3] ?? 'tcp';
  if (transport === 'vsock') throw new PluginError('uri: nbd+vsock URIs are not supported by nbdkit-ts', 'ENOTSUP');
  // The export name is the path without its first slash, percent-decoded.
  const exportName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  const query = url.searchParams;
  let target: Target;
  if (transport === 'unix') {
    const path = query.get('socket');
    if (!path) throw new PluginError(`uri: ${text}: nbd+unix URIs need ?socket=PATH`, 'EINVAL');
    target = { kind: 'unix', path };
  } else {
    target = { kind: 'tcp', host: url.hostname.replace(/^\[|\]$/g, '') || 'localhost', port: url.port ? Number(url.port) : 10809 };
  }
  return {
    target,
    exportName,
    tlsRequired: secure,
    // A plain nbd:// URI leaves TLS off unless other parameters ask for it.
    tlsAllowed: secure,
    username: url.username ? decodeURIComponent(url.username) : undefined,
    psk: query.get('tls-psk-file') ?? undefined,
    certificates: query.get('tls-certificates') ?? undefined,
  };
}

/** A TCP port: a number, or a service name from /etc/services. */
export function parsePort(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n > 0 && n < 65536) return n;
  } else {
    try {
      for (const line of readFileSync('/etc/services', 'utf8').split('\n')) {
        const fields = line.replace(/#.*/, '').trim().split(/\s+/);
        const [name, portProto, ...aliases] = fields;
        if ((name === text || aliases.includes(text)) && portProto?.endsWith('/tcp')) return Number(portProto.split('/')[0]);
      }
    } catch {
      // No services database: fall through to the error.
    }
  }
  throw new PluginError(`port: ${text}: not a port number or known service`, 'EINVAL');
}

function connected(socket: Socket): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * A command run as libnbd's nbd_connect_systemd_socket_activation does: a listening Unix
 * socket passed as fd 3 with LISTEN_FDS=1 and LISTEN_PID set to the command's own pid.
 */
export class ActivatedCommand {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-nbd-'));
  readonly socketPath = join(this.dir, 'sock');

  constructor(
    private readonly argv: string[],
    private readonly stdioSafe: boolean,
  ) {}

  async start(): Promise<void> {
    const listening = join(this.dir, 'listen');
    const server: Server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listening, resolve);
    });
    // Node accepts on a listening socket by itself, and unlinks its path when it closes it;
    // so the socket is handed over at once, our copy closed, and the path kept under a new name.
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    // The shell sets LISTEN_PID to its own pid, which exec hands to the command.
    this.child = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$; LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec "$@"', 'sh', ...this.argv], {
      // Under -s our stdout is the client's connection: the command must not write there.
      stdio: ['ignore', this.stdioSafe ? 'inherit' : 2, 'inherit', fd],
    });
    renameSync(listening, this.socketPath);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.child.on('error', () => undefined);
  }

  stop(): void {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Open a byte stream to the target (no NBD yet). */
export function openTransport(target: Target, command?: ActivatedCommand): Promise<Duplex> {
  switch (target.kind) {
    case 'unix':
      return connected(createConnection({ path: target.path }));
    case 'tcp':
      return connected(createConnection({ host: target.host, port: target.port }));
    case 'command':
      return connected(createConnection({ path: command!.socketPath }));
    case 'fd':
      return Promise.resolve(new Socket({ fd: target.fd, readable: true, writable: true }));
  }
}

/** The client side of the TLS handshake over the raw stream, per the plugin's tls-* settings. */
export function tlsUpgrader(settings: TlsSettings, serverName: string | undefined): (raw: Duplex) => Promise<Duplex> {
  return (raw) =>
    new Promise((resolve, reject) => {
      const options: ConnectionOptions = { socket: raw };
      if (settings.psk !== undefined) {
        const keys = parsePskFile(settings.psk);
        const identity = settings.username ?? userInfo().username;
        const key = keys.get(identity);
        if (!key) {
          reject(new PluginError(`tls-psk: ${settings.psk}: no key for username '${identity}'`, 'EINVAL'));
          return;
        }
        // OpenSSL offers PSK to Node only with TLS 1.2 cipher suites.
        Object.assign(options, {
          ciphers: 'PSK:ECDHE-PSK:DHE-PSK',
          maxVersion: 'TLSv1.2',
          pskCallback: () => ({ identity, psk: key }),
          checkServerIdentity: () => undefined,
        });
      } else {
        if (settings.certificates !== undefined) {
          const file = (name: string): Buffer | undefined => {
            const path = join(settings.certificates!, name);
            return existsSync(path) ? readFileSync(path) : undefined;
          };
          options.ca = file('ca-cert.pem');
          options.cert = file('client-cert.pem');
          options.key = file('client-key.pem');
        }
        options.rejectUnauthorized = settings.verify !== false;
        // libnbd checks the host name only when it has one (TCP); over a Unix socket, the
        // certificate's chain alone.
        if (serverName !== undefined && settings.verify !== false) options.servername = serverName;
        else options.checkServerIdentity = () => undefined;
      }
      const secure = tlsConnect(options);
      const fail = (error: Error): void => {
        secure.destroy();
        reject(new PluginError(`TLS handshake with the NBD server failed: ${error.message}`, 'EIO'));
      };
      secure.once('error', fail);
      secure.once('secureConnect', () => {
        secure.off('error', fail);
        resolve(secure);
      });
    });
}
