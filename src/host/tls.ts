/**
 * TLS for NBD_OPT_STARTTLS, with Node's tls module: X.509 certificates from a directory laid out
 * as nbdkit's --tls-certificates expects (ca-cert.pem, server-cert.pem, server-key.pem), or
 * pre-shared keys from a --tls-psk file of `username:hexkey` lines.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type TLSSocket, type TlsOptions, createSecureContext, createServer } from 'node:tls';
import { logDebug } from './log.js';
import { type ServerOptions, UsageError } from './options.js';

export interface TlsConfig {
  /** --tls=require: nothing but STARTTLS and ABORT before the upgrade. */
  required: boolean;
  socketOptions: TlsOptions;
}

function readPem(dir: string, name: string, required: boolean): Buffer | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) {
    if (required) throw new UsageError(`--tls-certificates: ${path}: No such file or directory`);
    return undefined;
  }
  return readFileSync(path);
}

/** Parse a PSK file: one `identity:hexkey` per line, as psktool writes it. */
export function parsePskFile(path: string): Map<string, Buffer> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--tls-psk: ${path}: ${(error as Error).message}`);
  }
  const keys = new Map<string, Buffer>();
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    if (line === '') continue;
    const colon = line.lastIndexOf(':');
    const hex = line.slice(colon + 1);
    if (colon <= 0 || !/^([0-9a-fA-F]{2})+$/.test(hex)) {
      throw new UsageError(`--tls-psk: ${path}:${index + 1}: expected username:hexkey`);
    }
    keys.set(line.slice(0, colon), Buffer.from(hex, 'hex'));
  }
  if (keys.size === 0) throw new UsageError(`--tls-psk: ${path}: no keys`);
  return keys;
}

/** The TLS settings for --tls=on|require, or undefined when TLS is off. */
export function loadTlsConfig(options: ServerOptions): TlsConfig | undefined {
  if (options.tls === 'off') return undefined;
  if (options.tlsPsk !== undefined) {
    const keys = parsePskFile(options.tlsPsk);
    return {
      required: options.tls === 'require',
      socketOptions: {
        // OpenSSL offers PSK only with TLS 1.2 cipher suites through Node's pskCallback.
        ciphers: 'PSK:ECDHE-PSK:DHE-PSK',
        maxVersion: 'TLSv1.2',
        pskCallback: (_socket: TLSSocket, identity: string) => {
          const key = keys.get(identity);
          logDebug(`tls: psk identity "${identity}" ${key ? 'known' : 'unknown'}`);
          return key ?? null;
        },
      },
    };
  }
  if (options.tlsCertificates === undefined) {
    throw new UsageError('--tls requires --tls-certificates=DIR or --tls-psk=FILE');
  }
  const dir = options.tlsCertificates;
  const ca = readPem(dir, 'ca-cert.pem', options.tlsVerifyPeer);
  const cert = readPem(dir, 'server-cert.pem', true);
  const key = readPem(dir, 'server-key.pem', true);
  try {
    createSecureContext({ ca, cert, key });
  } catch (error) {
    throw new UsageError(`--tls-certificates: ${dir}: ${(error as Error).message}`);
  }
  return {
    required: options.tls === 'require',
    socketOptions: {
      ca,
      cert,
      key,
      requestCert: options.tlsVerifyPeer,
      rejectUnauthorized: options.tlsVerifyPeer,
    },
  };
}

/**
 * Run the server side of the TLS handshake over an existing connection.
 *
 * The connection goes through a tls.Server (never listening) rather than a TLSSocket made by
 * hand: a hand-made server TLSSocket checks nothing itself, as requestCert and
 * rejectUnauthorized only ask OpenSSL for the client's certificate, and it is tls.Server that
 * refuses a certificate that does not verify (or no certificate) under --tls-verify-peer.
 */
export function upgradeToTls(transport: Duplex, config: TlsConfig): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const server = createServer({ ...config.socketOptions, secureContext: createSecureContext(config.socketOptions) });
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      transport.destroy();
      reject(new Error(`TLS handshake failed: ${why}`));
    };
    server.once('tlsClientError', (error) => fail(error.message));
    server.once('secureConnection', (secure: TLSSocket) => {
      settled = true;
      resolve(secure);
    });
    // tls.Server destroys a socket whose certificate it refuses without telling the server.
    transport.once('close', () => fail(config.socketOptions.requestCert ? 'client certificate not verified' : 'connection closed'));
    server.emit('connection', transport);
  });
}
