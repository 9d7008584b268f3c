/**
 * TLS with libnbd clients: pre-shared keys and X.509 certificates made here with openssl,
 * --tls=require refusing plain clients, and a wrong key failing the handshake.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NBD_CMD, NBD_OPT, NBD_REP, RawClient, SIMPLE_REPLY_MAGIC } from './helpers/raw-client.js';
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
  // Client certificates: one from the server's CA, one from a CA the server has never heard of.
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rogue-ca-key.pem', '-out', 'rogue-ca-cert.pem', '-days', '2', '-subj', '/CN=rogue CA']);
  writeFileSync(join(work, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, ca] of [['client', 'ca'], ['rogue', 'rogue-ca']]) {
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}-cert.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-out', `${name}-cert.pem`, '-days', '2', '-extfile', 'client.cnf']);
  }
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

/** What a client presenting `certificate` (or none) gets from a server: served, or refused. */
async function withClientCertificate(socket: string, certificate: string | undefined): Promise<string> {
  const client = await RawClient.connect(socket);
  try {
    await client.greet();
    const pem = (name: string): Buffer => readFileSync(join(work, name));
    await client.startTls({
      ca: pem('ca-cert.pem'),
      ...(certificate ? { cert: pem(`${certificate}-cert.pem`), key: pem(`${certificate}-key.pem`) } : {}),
    });
    // Under TLS 1.3 the client finishes its handshake before the server has judged its
    // certificate: a refusal shows as the connection closing instead of answering GO.
    await client.go();
    client.sendRequest(NBD_CMD.READ, 0n, 512);
    const reply = await client.readSimpleReply(512);
    return reply.error === 0 ? 'served' : `error ${reply.error}`;
  } catch {
    return 'refused';
  } finally {
    client.end();
  }
}

describe('--tls-verify-peer, as native nbdkit', () => {
  for (const native of [false, true]) {
    it(`${native ? 'native nbdkit' : 'nbdkit-ts'}: serves only clients whose certificate the CA signed`, async () => {
      const server = await startServer(['--tls=require', `--tls-certificates=${work}`, '--tls-verify-peer', 'memory', '1M'], { native });
      try {
        expect(await withClientCertificate(server.socket, 'client')).toBe('served');
        expect(await withClientCertificate(server.socket, 'rogue')).toBe('refused');
        expect(await withClientCertificate(server.socket, undefined)).toBe('refused');
      } finally {
        await server.stop();
      }
    });
  }

  it('nbdkit-ts: without --tls-verify-peer any client is served', async () => {
    const server = await startServer(['--tls=require', `--tls-certificates=${work}`, 'memory', '1M']);
    try {
      expect(await withClientCertificate(server.socket, 'rogue')).toBe('served');
      expect(await withClientCertificate(server.socket, undefined)).toBe('served');
    } finally {
      await server.stop();
    }
  });
});

/**
 * Structured replies and base:allocation asked for in plaintext, then STARTTLS and GO: what the
 * secure session got (the transmission flags and the kind of reply a READ gets).
 */
async function optionsBeforeStartTls(socket: string): Promise<{ structuredAck: boolean; df: boolean; replyMagic: number; blockStatusError: number }> {
  const client = await RawClient.connect(socket);
  try {
    await client.greet();
    client.sendOption(NBD_OPT.STRUCTURED_REPLY);
    const structuredAck = (await client.readOptionReply()).type === NBD_REP.ACK;
    const context = Buffer.from('base:allocation');
    const query = Buffer.alloc(4 + 4 + 4 + context.length);
    query.writeUInt32BE(0, 0); // export name ""
    query.writeUInt32BE(1, 4); // one query
    query.writeUInt32BE(context.length, 8);
    context.copy(query, 12);
    client.sendOption(NBD_OPT.SET_META_CONTEXT, query);
    while ((await client.readOptionReply()).type !== NBD_REP.ACK);
    await client.startTls({ ca: readFileSync(join(work, 'ca-cert.pem')) });
    const { flags } = await client.go();
    client.sendRequest(NBD_CMD.READ, 0n, 512, { cookie: 1n });
    const header = await client.read(16);
    const replyMagic = header.readUInt32BE(0);
    if (replyMagic === SIMPLE_REPLY_MAGIC) await client.read(512);
    client.sendRequest(NBD_CMD.BLOCK_STATUS, 0n, 512, { cookie: 2n });
    const status = await client.readSimpleReply();
    return { structuredAck, df: (flags & 0x80) !== 0, replyMagic, blockStatusError: status.error };
  } finally {
    client.end();
  }
}

describe('STARTTLS forgets what was negotiated in plaintext, as native nbdkit', () => {
  it('structured replies and meta contexts set before STARTTLS do not reach the secure session', async () => {
    const results = [];
    for (const native of [false, true]) {
      const server = await startServer(['--tls=on', `--tls-certificates=${work}`, 'memory', '1M'], { native });
      try {
        results.push(await optionsBeforeStartTls(server.socket));
      } finally {
        await server.stop();
      }
    }
    expect(results[0]).toEqual({ structuredAck: true, df: false, replyMagic: SIMPLE_REPLY_MAGIC, blockStatusError: 22 });
    expect(results[0]).toEqual(results[1]);
  });
});
