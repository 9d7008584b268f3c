/**
 * The curl plugin against HTTP and HTTPS servers started here on loopback (a certificate made
 * with openssl), compared with native nbdkit's curl plugin (libcurl) on the same URLs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, type Socket, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runNbdkitTs } from './helpers/server.js';

const DISK = randomBytes(3 * 1024 * 1024 + 1000);
const DISK_MD5 = createHash('md5').update(DISK).digest('hex');
let work: string;
let http: Server;
let https: Server;
let httpBase: string;
let httpsBase: string;
/** Headers of the requests the servers saw, newest last. */
const seen: IncomingMessage['headers'][] = [];

/** A disk served with byte ranges, plus a few misbehaving paths. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  seen.push(req.headers);
  const path = req.url ?? '/';
  if (path === '/moved') {
    res.writeHead(302, { location: '/disk.img' }).end();
    return;
  }
  if (path === '/slow') return; // never answers
  if (path === '/jar-me') {
    res.writeHead(302, { location: '/disk.img', 'set-cookie': 'given=byserver; Path=/' }).end();
    return;
  }
  if (path === '/secret.img') {
    const expected = `Basic ${Buffer.from('alice:open sesame').toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="disk"' }).end();
      return;
    }
  }
  if (path === '/norange.img') {
    res.writeHead(200, { 'content-length': DISK.length }).end(req.method === 'HEAD' ? undefined : DISK);
    return;
  }
  if (!['/disk.img', '/secret.img'].includes(path)) {
    res.writeHead(404).end();
    return;
  }
  const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (req.method === 'HEAD' || !range) {
    res.writeHead(200, { 'content-length': DISK.length, 'accept-ranges': 'bytes' }).end(req.method === 'HEAD' ? undefined : DISK);
    return;
  }
  const first = Number(range[1]);
  const last = Math.min(Number(range[2]), DISK.length - 1);
  res.writeHead(206, {
    'content-length': last - first + 1,
    'content-range': `bytes ${first}-${last}/${DISK.length}`,
    'accept-ranges': 'bytes',
  });
  res.end(DISK.subarray(first, last + 1));
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-curl-'));
  const openssl = async (args: string[]): Promise<void> => {
    const result = await run('openssl', args, { cwd: work });
    if (result.code !== 0) throw new Error(`openssl ${args[0]}: ${result.stderr}`);
  };
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=curl test CA']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(work, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'ext.cnf']);
  http = createHttpServer(handler);
  https = createHttpsServer({ cert: readFileSync(join(work, 'server-cert.pem')), key: readFileSync(join(work, 'server-key.pem')) }, handler);
  httpBase = `http://127.0.0.1:${await listen(http)}`;
  httpsBase = `https://localhost:${await listen(https)}`;
});
afterAll(async () => {
  http.closeAllConnections();
  https.closeAllConnections();
  await new Promise((r) => http.close(r));
  await new Promise((r) => https.close(r));
  rmSync(work, { recursive: true, force: true });
});

const MD5 = 'nbdcopy "$uri" - | md5sum | cut -d" " -f1';
/** For the runs expected to fail: its status is the client's (a pipeline's is its last command's). */
const SIZE = 'nbdinfo --size "$uri"';

async function ours(args: string[], command = MD5): Promise<{ code: number | null; out: string; err: string }> {
  const result = await runNbdkitTs(['-U', '-', 'curl', ...args, '--run', command]);
  return { code: result.code, out: result.stdout.toString().trim(), err: result.stderr };
}

async function native(args: string[], command = MD5): Promise<{ code: number | null; out: string; err: string }> {
  const result = await run('nbdkit', ['-U', '-', 'curl', ...args, '--run', command]);
  return { code: result.code, out: result.stdout.toString().trim(), err: result.stderr };
}

describe('curl plugin', () => {
  it('serves an HTTP disk with range requests, byte for byte as native nbdkit', async () => {
    // -r: native nbdkit offers writes (libcurl uploads), nbdkit-ts does not (see the README).
    const info = 'nbdinfo --json "$uri"';
    const [a, b] = await Promise.all([ours(['-r', `${httpBase}/disk.img`], info), native(['-r', `${httpBase}/disk.img`], info)]);
    const args = [`${httpBase}/disk.img`];
    expect(a.code, a.err).toBe(0);
    const strip = (text: string): string => text.replace(/"uri": ".*"/g, '');
    expect(strip(a.out)).toEqual(strip(b.out));
    const data = await ours(args);
    expect(data.code, data.err).toBe(0);
    expect(data.out).toBe(DISK_MD5);
    expect(seen.some((h) => /^bytes=\d+-\d+$/.test(h.range ?? ''))).toBe(true);
  });

  it('HTTPS: verified against cainfo=, refused without it, accepted with sslverify=false', async () => {
    const url = `${httpsBase}/disk.img`;
    const verified = await ours([url, `cainfo=${join(work, 'ca-cert.pem')}`]);
    expect(verified.code, verified.err).toBe(0);
    expect(verified.out).toBe(DISK_MD5);
    const unknownCa = await ours([url], SIZE);
    expect(unknownCa.code).not.toBe(0);
    expect(unknownCa.err).toMatch(/problem doing HEAD request.*certificate/);
    const unverified = await ours([url, 'sslverify=false']);
    expect(unverified.code, unverified.err).toBe(0);
    expect(unverified.out).toBe(DISK_MD5);
    // The same three answers from native nbdkit.
    expect((await native([url, `cainfo=${join(work, 'ca-cert.pem')}`])).out).toBe(DISK_MD5);
    expect((await native([url], SIZE)).code).not.toBe(0);
  });

  it('sends header=, cookie= and user-agent=; "Name:" removes a header', async () => {
    seen.length = 0;
    const result = await ours(
      [`${httpBase}/disk.img`, 'header=X-Disk: one', 'header=Accept:', 'cookie=session=abc', 'user-agent=Mozilla/1'],
      SIZE,
    );
    expect(result.code, result.err).toBe(0);
    expect(seen.length).toBeGreaterThan(0);
    for (const headers of seen) {
      expect(headers['x-disk']).toBe('one');
      expect(headers.cookie).toBe('session=abc');
      expect(headers['user-agent']).toBe('Mozilla/1');
      expect(headers.accept).toBeUndefined();
    }
  });

  it('header-script= and cookie-script= give the headers and cookie sent; a failing script fails the open', async () => {
    seen.length = 0;
    const result = await ours(
      [`${httpBase}/disk.img`, 'header-script=echo "X-Iteration: $iteration"; echo "X-Url: $url"', 'cookie-script=echo "token=from-script"'],
      SIZE,
    );
    expect(result.code, result.err).toBe(0);
    expect(seen[0]['x-iteration']).toBe('0');
    expect(seen[0]['x-url']).toBe(`${httpBase}/disk.img`);
    expect(seen[0].cookie).toBe('token=from-script');
    const failing = await ours([`${httpBase}/disk.img`, 'header-script=echo "no headers today" >&2; exit 1'], SIZE);
    expect(failing.code).not.toBe(0);
    expect(failing.err).toMatch(/header-script failed: no headers today/);
    const both = await ours([`${httpBase}/disk.img`, 'header=A: b', 'header-script=true'], 'true');
    expect(both.err).toMatch(/header and header-script cannot be used at the same time/);
  });

  it('cookiefile= sends the matching cookies of a Netscape cookie file; cookiejar= writes the ones set', async () => {
    const file = join(work, 'cookies.txt');
    writeFileSync(file, `# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tflavour\toat\nother.example\tFALSE\t/\tFALSE\t0\tnot\tsent\n`);
    seen.length = 0;
    const sent = await ours([`${httpBase}/disk.img`, `cookiefile=${file}`], SIZE);
    expect(sent.code, sent.err).toBe(0);
    expect(seen.map((h) => h.cookie)).toContain('flavour=oat');
    expect(seen.every((h) => !String(h.cookie).includes('not=sent'))).toBe(true);
    const jar = join(work, 'jar.txt');
    const kept = await ours([`${httpBase}/jar-me`, `cookiejar=${jar}`, 'followlocation=true'], SIZE);
    expect(kept.code, kept.err).toBe(0);
    expect(readFileSync(jar, 'utf8')).toMatch(/127\.0\.0\.1\tFALSE\t\/\tFALSE\t0\tgiven\tbyserver/);
  });

  it('proxy= carries HTTP requests and tunnels HTTPS ones, with proxy-user/proxy-password', async () => {
    const proxied: string[] = [];
    const auth = `Basic ${Buffer.from('eve:proxy pass').toString('base64')}`;
    const proxyServer = createHttpServer((req, res) => {
      // An absolute-form request: forward it.
      proxied.push(`${req.method} ${req.url} ${req.headers['proxy-authorization'] === auth}`);
      const upstream = httpRequest(req.url!, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
    });
    // Tunnels are no longer the HTTP server's to close: they are ended here.
    const tunnels: Socket[] = [];
    proxyServer.on('connect', (req: IncomingMessage, client: Socket) => {
      tunnels.push(client);
      proxied.push(`CONNECT ${req.url} ${req.headers['proxy-authorization'] === auth}`);
      const [host, port] = req.url!.split(':');
      const upstream = netConnect(Number(port), host === 'localhost' ? '127.0.0.1' : host, () => {
        tunnels.push(upstream);
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    const port = await listen(proxyServer);
    try {
      const proxyArgs = [`proxy=http://127.0.0.1:${port}`, 'proxy-user=eve', 'proxy-password=proxy pass'];
      const plain = await ours([`${httpBase}/disk.img`, ...proxyArgs]);
      expect(plain.code, plain.err).toBe(0);
      expect(plain.out).toBe(DISK_MD5);
      expect(proxied).toContain(`HEAD ${httpBase}/disk.img true`);
      const secure = await ours([`${httpsBase}/disk.img`, `cainfo=${join(work, 'ca-cert.pem')}`, ...proxyArgs]);
      expect(secure.code, secure.err).toBe(0);
      expect(secure.out).toBe(DISK_MD5);
      expect(proxied).toContain(`CONNECT ${httpsBase.replace('https://', '')} true`);
    } finally {
      for (const socket of tunnels) socket.destroy();
      proxyServer.closeAllConnections();
      await new Promise((r) => proxyServer.close(r));
    }
  });

  it('user= with password=, password=+FILE and password=-FD log in with Basic auth', async () => {
    const url = `${httpBase}/secret.img`;
    writeFileSync(join(work, 'password'), 'open sesame\n');
    expect((await ours([url, 'user=alice', 'password=open sesame'])).out).toBe(DISK_MD5);
    expect((await ours([url, 'user=alice', `password=+${join(work, 'password')}`])).out).toBe(DISK_MD5);
    const fromFd = await run('/bin/sh', ['-c', `exec 3<"${join(work, 'password')}"; exec "$0" "$@"`, process.execPath, join(__dirname, '..', 'dist', 'cli.js'), '-U', '-', 'curl', url, 'user=alice', 'password=-3', '--run', MD5]);
    expect(fromFd.code, fromFd.stderr).toBe(0);
    expect(fromFd.stdout.toString().trim()).toBe(DISK_MD5);
    const refused = await ours([url, 'user=alice', 'password=wrong'], SIZE);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/401/);
    // Native nbdkit agrees on the right password.
    expect((await native([url, 'user=alice', `password=+${join(work, 'password')}`])).out).toBe(DISK_MD5);
  });

  it('follows redirects unless followlocation=false', async () => {
    const url = `${httpBase}/moved`;
    expect((await ours([url])).out).toBe(DISK_MD5);
    expect((await native([url])).out).toBe(DISK_MD5);
    const notFollowed = await ours([url, 'followlocation=false'], SIZE);
    expect(notFollowed.code).not.toBe(0);
    expect((await native([url, 'followlocation=false'], SIZE)).code).not.toBe(0);
  });

  it('timeout= gives up on a server that does not answer', async () => {
    const result = await ours([`${httpBase}/slow`, 'timeout=1'], SIZE);
    expect(result.code).not.toBe(0);
    expect(result.err).toMatch(/timed out/);
  });

  it('refuses a server without range requests, and a missing file, as native nbdkit does', async () => {
    const norange = await ours([`${httpBase}/norange.img`], SIZE);
    expect(norange.err).toMatch(/server does not support 'range' \(byte range\) requests/);
    expect((await native([`${httpBase}/norange.img`], SIZE)).err).toMatch(/server does not support 'range'/);
    const missing = await ours([`${httpBase}/missing.img`], SIZE);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/404/);
  });

  it('is read-only, and refuses the parameters it does not support with a clear error', async () => {
    const info = await ours([`${httpBase}/disk.img`], 'nbdinfo --json "$uri"');
    expect(JSON.parse(info.out).exports[0].is_read_only).toBe(true);
    const socks = await ours([`${httpBase}/disk.img`, 'proxy=socks5://127.0.0.1:1'], 'true');
    expect(socks.code).toBe(1);
    expect(socks.err).toMatch(/^nbdkit-ts: error: proxy: socks5:\/\/ proxies are not supported by nbdkit-ts/m);
  });
});
