/**
 * The messages between a Python plugin's socket layer (socket-bridge.ts, on the main thread)
 * and the thread that owns the connections (socket-worker.ts). One request is in flight at a
 * time: the main thread waits for each answer.
 */

/** What TLS a connection is upgraded with (Python's SSLContext, as the ssl layer sends it). */
export interface TlsRequest {
  servername?: string;
  /** PEM certificates to trust besides (or instead of) the system's. */
  ca?: string[];
  /** Trust the system's CA store (load_default_certs / create_default_context). */
  systemCa: boolean;
  /** CERT_REQUIRED: the peer's chain must verify. */
  verify: boolean;
  checkHostname: boolean;
  cert?: string;
  key?: string;
  alpn?: string[];
  minVersion?: string;
  maxVersion?: string;
}

export interface SocketRequest {
  op: 'resolve' | 'connect' | 'recv' | 'send' | 'starttls' | 'poll' | 'shutdown' | 'close';
  id?: number;
  host?: string;
  port?: number;
  /** A Unix socket's path (AF_UNIX connect). */
  path?: string;
  /** 4 or 6 for resolve; 0 for either. */
  family?: number;
  /** Seconds; null blocks, 0 does not wait. */
  timeout?: number | null;
  size?: number;
  data?: Uint8Array;
  how?: number;
  tls?: TlsRequest;
  /** poll: [connection id, poll(2) events]. */
  items?: [number, number][];
}

/** The peer certificate, in the parts Python's getpeercert() reports. */
export interface CertificateInfo {
  subject: [string, string][];
  issuer: [string, string][];
  notBefore: string;
  notAfter: string;
  serialNumber: string;
  subjectAltName: string;
  /** DER, base64. */
  der: string;
}

export interface SocketReply {
  /** An errno name (ECONNREFUSED, ...), 'SSL' or 'CERT' for TLS failures, or a getaddrinfo code. */
  error?: string;
  message?: string;
  timeout?: boolean;
  id?: number;
  local?: [string, number];
  peer?: [string, number];
  data?: Uint8Array;
  sent?: number;
  addresses?: [string, number][];
  ready?: [number, number][];
  certificate?: CertificateInfo;
  version?: string;
  cipher?: [string, string, number];
  alpn?: string;
}
