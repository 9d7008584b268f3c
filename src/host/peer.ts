/**
 * What a connection can tell a plugin about its client (nbdkit_peer_pid, _uid, _gid,
 * _security_context, _tls_dn, _tls_issuer_dn): read from the real socket as the client
 * connects and from the real client certificate, never invented. Where the transport cannot tell (a TCP socket
 * has no peer credentials), the call fails, as nbdkit's does.
 */
import type { TLSSocket } from 'node:tls';
import { fsNative } from './fs-native.js';
import { type PeerCredentials, PluginError } from './plugin.js';

interface NativeError {
  code?: string;
  message: string;
}

export class ConnectionPeer {
  /** The TLS session once STARTTLS has succeeded. */
  tls: TLSSocket | undefined;
  private readonly creds: PeerCredentials | PluginError;
  private readonly label: string | PluginError;

  /**
   * `fd` is the client's socket (stdin under -s, which is a socket when a client such as
   * libnbd's connect_command started the server), or undefined when Node did not expose it.
   * Both facts are read at once, while the descriptor is surely this client's: they are fixed
   * when the client connects, and a descriptor number read later could already belong to the
   * next client. It costs three getsockopt-like calls per connection.
   */
  constructor(fd: number | undefined) {
    this.creds = ConnectionPeer.read(fd, (native, socket) => {
      const [pid, uid, gid] = native.peerCredentials(socket);
      return { pid, uid, gid };
    });
    this.label = ConnectionPeer.read(fd, (native, socket) => native.peerSecurityContext(socket));
  }

  /** Errors say why without naming the caller's function: script-api.ts adds that. */
  private static read<T>(fd: number | undefined, read: (native: NonNullable<typeof fsNative>, fd: number) => T): T | PluginError {
    if (fsNative === null) return new PluginError('not available: the fs-native addon was not built', 'ENOTSUP');
    if (fd === undefined) return new PluginError("the client's socket is not known", 'ENOTSUP');
    try {
      return read(fsNative, fd);
    } catch (error) {
      const { code, message } = error as NativeError;
      if (code === 'EAFNOSUPPORT' || code === 'ENOTSOCK') {
        return new PluginError('the client is not connected over a Unix domain socket', 'ENOTSUP');
      }
      return new PluginError(message, code && /^E[A-Z]+$/.test(code) ? code : 'EIO');
    }
  }

  credentials(): PeerCredentials {
    if (this.creds instanceof PluginError) throw this.creds;
    return this.creds;
  }

  securityContext(): string {
    if (this.label instanceof PluginError) throw this.label;
    return this.label;
  }

  /** The subject DN of the client's certificate (only sent, and verified, with --tls-verify-peer). */
  tlsDn(): string {
    return rfc4514(this.tls?.getPeerX509Certificate()?.subject);
  }

  tlsIssuerDn(): string {
    return rfc4514(this.tls?.getPeerX509Certificate()?.issuer);
  }
}

/**
 * Node prints a name one attribute a line, in the certificate's order, with RFC 2253 escaping
 * already applied; RFC 4514 (what GnuTLS, and so nbdkit, gives) lists them most specific first,
 * comma-separated: "CN=client.example.com,O=BigCo,...,C=US".
 */
export function rfc4514(multiline: string | undefined): string {
  if (!multiline) return '';
  return multiline
    .split('\n')
    .filter((line) => line !== '')
    .reverse()
    .join(',');
}
