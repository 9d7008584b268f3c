/**
 * What a connection can tell a plugin about its client (nbdkit_peer_pid, _uid, _gid,
 * _security_context, _tls_dn, _tls_issuer_dn): read from the real socket and the real client
 * certificate when a plugin asks, never invented. Where the transport cannot tell (a TCP socket
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

  /**
   * `fd` is the client's socket (stdin under -s, which is a socket when a client such as
   * libnbd's connect_command started the server), or undefined when Node did not expose it.
   */
  constructor(private readonly fd: number | undefined) {}

  /** Errors say why without naming the caller's function: script-api.ts adds that. */
  private native<T>(read: (native: NonNullable<typeof fsNative>, fd: number) => T): T {
    if (fsNative === null) throw new PluginError('not available: the fs-native addon was not built', 'ENOTSUP');
    if (this.fd === undefined) throw new PluginError("the client's socket is not known", 'ENOTSUP');
    try {
      return read(fsNative, this.fd);
    } catch (error) {
      const { code, message } = error as NativeError;
      if (code === 'EAFNOSUPPORT' || code === 'ENOTSOCK') {
        throw new PluginError('the client is not connected over a Unix domain socket', 'ENOTSUP');
      }
      throw new PluginError(message, code && /^E[A-Z]+$/.test(code) ? code : 'EIO');
    }
  }

  credentials(): PeerCredentials {
    const [pid, uid, gid] = this.native((native, fd) => native.peerCredentials(fd));
    return { pid, uid, gid };
  }

  securityContext(): string {
    return this.native((native, fd) => native.peerSecurityContext(fd));
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
