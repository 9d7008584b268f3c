/**
 * TLS with libnbd clients: pre-shared keys and X.509 certificates made here with openssl,
 * --tls=require refusing plain clients, and a wrong key failing the handshake.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startServer } from './helpers/server.js';

let work: string;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-tls-'));
  writeFileSync(join(work, 'keys.psk'), `alice:${randomBytes(32).toString('hex')}\n`);
  writeFileSync(join(work, 'wrong.psk'), `alice:${randomBytes(32).toString('hex')}\n`);
  const openssl = async (args: string[]): Promise<void> => {
    const result = await run('openssl', args, { cwd: work });
    if (result.code !== 0) throw new Error(`openssl ${args[0]}: ${result.stderr}`);
  };
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=nbdkit-ts test CA']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(work, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'ext.cnf']);
  mkdirSync(join(work, 'client'));
  copyFileSync(join(work, 'ca-cert.pem'), join(work, 'client', 'ca-cert.pem'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function nbdinfo(uri: string): Promise<{ code: number | null; out: string }> {
  const result = await run('nbdinfo', ['--json', uri]);
  return { code: result.code, out: result.stdout.toString() + result.stderr };
}

describe('TLS', () => {
  it('PSK: a client with the key gets TLS, a plain client is refused under --tls=require', async () => {
    const server = await startServer(['--tls=require', `--tls-psk=${join(work, 'keys.psk')}`, 'memory', '1M']);
    try {
      const tls = await nbdinfo(`nbds+unix://alice@/?socket=${server.socket}&tls-psk-file=${join(work, 'keys.psk')}`);
      expect(tls.code, tls.out).toBe(0);
      expect(JSON.parse(tls.out).TLS).toBe(true);
      const plain = await nbdinfo(server.uri);
      expect(plain.code).not.toBe(0);
      expect(plain.out).toMatch(/"TLS": false/);
      const wrong = await nbdinfo(`nbds+unix://alice@/?socket=${server.socket}&tls-psk-file=${join(work, 'wrong.psk')}`);
      expect(wrong.code).not.toBe(0);
      // The server survived all of that.
      const again = await nbdinfo(`nbds+unix://alice@/?socket=${server.socket}&tls-psk-file=${join(work, 'keys.psk')}`);
      expect(again.code, again.out).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('X.509: data round trips over TLS; --tls=on still serves plain clients', async () => {
    const server = await startServer(['--tls=on', `--tls-certificates=${work}`, 'memory', '1M']);
    try {
      const uri = `nbds+unix:///?socket=${server.socket}&tls-certificates=${join(work, 'client')}`;
      const script = `import nbd\nh = nbd.NBD()\nh.set_uri_allow_local_file(True)\nh.connect_uri(${JSON.stringify(uri)})\nh.pwrite(b"secret" * 100, 4096)\nprint(h.pread(600, 4096) == b"secret" * 100)\n`;
      const result = await run('/usr/bin/python3', ['-c', script]);
      expect(result.stdout.toString().trim(), result.stderr).toBe('True');
      const info = await nbdinfo(uri);
      expect(JSON.parse(info.out).TLS).toBe(true);
      const plain = await nbdinfo(server.uri);
      expect(plain.code, plain.out).toBe(0);
      expect(JSON.parse(plain.out).TLS).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it('a missing certificate directory is a start-up error', async () => {
    const result = await run(process.execPath, [join(process.cwd(), 'dist/cli.js'), '-f', '-U', join(work, 'x.sock'), '--tls=on', `--tls-certificates=${join(work, 'nowhere')}`, 'memory', '1M']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^nbdkit-ts: error: --tls-certificates: .*nowhere\/server-cert\.pem: No such file/);
  });
});
