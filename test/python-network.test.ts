// Python plugins that use the network and the host's packages: real servers on loopback (an
// HTTP server with range requests, an HTTPS one with a certificate made here, an S3-compatible
// one from npm), real NBD clients, and native nbdkit as the oracle where it has the same result.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ENV, ROOT, type RunningServer, nbdPython, run, runNbdkitTs, startServer } from './helpers/server.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'python-network');
const NATIVE = existsSync('/usr/bin/nbdkit') && existsSync('/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-python-plugin.so');
const BOTO3 = existsSync('/usr/lib/python3/dist-packages/boto3');
const DISK = randomBytes(3 * 1024 * 1024 + 512);
/** Each test starts interpreters and real servers: a generous limit for a loaded machine. */
const SLOW = 300_000;

let work: string;
let env: NodeJS.ProcessEnv;
let http: Server;
let https: Server;
let silent: TcpServer;
let resetting: TcpServer;
let closedPort: number;
const requests: string[] = [];
const servers: RunningServer[] = [];

/** Serves DISK at /disk with HEAD and single ranges, and a small page at /small. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  requests.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`);
  if (req.url === '/small') {
    res.end('small page\n');
    return;
  }
  if (req.url !== '/disk') {
    res.statusCode = 404;
    res.end();
    return;
  }
  const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!range) {
    res.setHeader('Content-Length', DISK.length);
    res.end(req.method === 'HEAD' ? undefined : DISK);
    return;
  }
  const start = Number(range[1]);
  const end = Math.min(Number(range[2]), DISK.length - 1);
  res.statusCode = 206;
  res.setHeader('Content-Range', `bytes ${start}-${end}/${DISK.length}`);
  res.setHeader('Content-Length', end - start + 1);
  res.end(DISK.subarray(start, end + 1));
}

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function portOf(server: Server | TcpServer): number {
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-pynet-'));
  env = { ...CLIENT_ENV, XDG_CACHE_HOME: join(work, 'cache') };
  // A CA and a server certificate for localhost signed by it, made for this run.
  const sh = (args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: 'ignore' });
  sh(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=nbdkit-ts test CA']);
  sh(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(work, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  sh(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
  http = createHttpServer(handler);
  https = createHttpsServer({ key: readFileSync(join(work, 'server.key')), cert: readFileSync(join(work, 'server.pem')) }, handler);
  silent = createTcpServer(() => undefined);
  resetting = createTcpServer((socket: Socket) => socket.once('data', () => socket.resetAndDestroy()));
  const closed = createTcpServer();
  closedPort = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
  await Promise.all([listen(http), listen(https), listen(silent), listen(resetting)]);
});

afterAll(async () => {
  for (const server of servers.splice(0)) await server.stop();
  for (const server of [http, https, silent, resetting]) {
    (server as Server).closeAllConnections?.();
    server.close();
  }
  rmSync(work, { recursive: true, force: true });
});

async function serve(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const server = await startServer(['-r', 'python', ...args], { env: { ...env, ...extraEnv }, cwd: work, timeoutMs: 240_000 });
  servers.push(server);
  return server;
}

/** Read [offset, offset+count) through libnbd's Python bindings; hex of what came back. */
async function readThroughNbd(uri: string, offset: number, count: number): Promise<Buffer> {
  const out = await nbdPython(uri, `sys.stdout.write(h.pread(${count}, ${offset}).hex())`);
  return Buffer.from(out.trim(), 'hex');
}

describe('python plugins over HTTP and HTTPS', () => {
  it('reads a disk over HTTP with range requests: the bytes the server holds, the same as native nbdkit', async () => {
    const url = `url=http://127.0.0.1:${portOf(http)}/disk`;
    const server = await serve([join(FIXTURES, 'http_range.py'), url]);
    requests.length = 0;
    expect((await readThroughNbd(server.uri, 0, 4096)).equals(DISK.subarray(0, 4096))).toBe(true);
    expect((await readThroughNbd(server.uri, 1_000_000, 65536)).equals(DISK.subarray(1_000_000, 1_065_536))).toBe(true);
    // The requests reached the server as ranges.
    expect(requests).toContain('GET /disk bytes=1000000-1065535');
    // The whole disk through nbdcopy, against the original.
    const copy = join(work, 'http-copy.raw');
    const result = await run('nbdcopy', [server.uri, copy]);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(copy).equals(DISK)).toBe(true);
    if (NATIVE) {
      const native = await startServer(['-r', 'python', join(FIXTURES, 'http_range.py'), url], { native: true, env, cwd: work });
      servers.push(native);
      expect((await readThroughNbd(native.uri, 1_000_000, 65536)).equals(DISK.subarray(1_000_000, 1_065_536))).toBe(true);
    }
  }, SLOW);

  it('reads over HTTPS with real TLS, trusting the CA given, and refuses a server the CA store does not trust', async () => {
    const url = `url=https://localhost:${portOf(https)}/disk`;
    const server = await serve([join(FIXTURES, 'http_range.py'), url, `cafile=${join(work, 'ca.pem')}`]);
    expect((await readThroughNbd(server.uri, 2_000_000, 8192)).equals(DISK.subarray(2_000_000, 2_008_192))).toBe(true);
    // Without the CA: the system's store does not know the test CA, so opening fails.
    const untrusted = await serve([join(FIXTURES, 'http_range.py'), url]);
    const failed = await run('/usr/bin/python3', ['-c', `import nbd\nh = nbd.NBD()\ntry:\n    h.connect_uri(${JSON.stringify(untrusted.uri)})\nexcept nbd.Error as e:\n    print('refused', e)\n`]);
    expect(failed.stdout.toString()).toMatch(/refused/);
    expect(await untrusted.logged('CERTIFICATE_VERIFY_FAILED')).toMatch(/certificate verify failed: self-signed certificate in certificate chain|unable to get local issuer certificate/);
  }, SLOW);
});

describe('python sockets, TLS and imports: what each probe gives', () => {
  let probeEnv: NodeJS.ProcessEnv;
  const probe = join(FIXTURES, 'probe.py');

  beforeAll(() => {
    const pythonpath = join(work, 'pythonpath');
    mkdirSync(pythonpath, { recursive: true });
    writeFileSync(join(pythonpath, 'probe_pythonpath.py'), "VALUE = 'from PYTHONPATH'\n");
    // A module that exists only as a compiled extension for the host's CPython.
    writeFileSync(join(pythonpath, 'probe_compiled.cpython-311-x86_64-linux-gnu.so'), 'not loadable here');
    probeEnv = {
      ...env,
      PYTHONPATH: pythonpath,
      PROBE_CLOSED_PORT: String(closedPort),
      PROBE_SILENT_PORT: String(portOf(silent)),
      PROBE_RESET_PORT: String(portOf(resetting)),
      PROBE_TLS_PORT: String(portOf(https)),
      PROBE_CA: join(work, 'ca.pem'),
    };
  });

  function probeLines(stderr: string): Map<string, string> {
    const lines = new Map<string, string>();
    for (const line of stderr.split('\n')) {
      const space = line.indexOf(' ');
      if (space > 0) lines.set(line.slice(0, space), line.slice(space + 1));
    }
    return lines;
  }

  it('gives CPython exceptions for network failures, real TLS checks, and clear errors for what is unsupported', async () => {
    const ours = await runNbdkitTs(['--dump-plugin', 'python', probe], { env: probeEnv, cwd: work, timeoutMs: 240_000 });
    expect(ours.code, ours.stderr).toBe(0);
    const lines = probeLines(ours.stderr);
    expect(lines.get('refused')).toBe('ConnectionRefusedError ');
    expect(lines.get('unknown-host')).toBe('gaierror ');
    expect(lines.get('timeout')).toBe('TimeoutError ');
    expect(lines.get('reset')).toBe('ConnectionResetError ');
    expect(lines.get('tls-trusted')).toBe("ok ('HTTP/1.1 200 OK', 'localhost')");
    expect(lines.get('tls-system-store')).toBe('SSLCertVerificationError CERTIFICATE_VERIFY_FAILED');
    expect(lines.get('tls-wrong-name')).toBe('SSLCertVerificationError CERTIFICATE_VERIFY_FAILED');
    expect(lines.get('listen')).toBe('OSError ');
    expect(lines.get('udp')).toBe('OSError ');
    expect(lines.get('pythonpath')).toBe('ok from PYTHONPATH');
    expect(lines.get('beside')).toBe('ok beside the script');
    expect(lines.get('compiled')).toBe('ImportError ');
    if (NATIVE) {
      const native = await run('/usr/bin/nbdkit', ['--dump-plugin', 'python', probe], { env: probeEnv, cwd: work });
      const theirs = probeLines(native.stderr);
      for (const name of ['refused', 'unknown-host', 'timeout', 'reset', 'tls-trusted', 'tls-system-store', 'tls-wrong-name', 'pythonpath']) {
        expect(lines.get(name), name).toBe(theirs.get(name));
      }
    }
  }, SLOW);

  it('says in one line why a compiled extension, a server socket or a thread cannot work', async () => {
    const script = join(work, 'unsupported.py');
    writeFileSync(script, [
      'import socket, sys, threading, multiprocessing',
      'for f in (lambda: __import__("probe_compiled"), lambda: socket.socket().bind(("127.0.0.1", 0)),',
      '          lambda: threading.Thread(target=print).start(), lambda: multiprocessing.Pipe()):',
      '    try:',
      '        f()',
      '    except Exception as e:',
      '        print("error:", e, file=sys.stderr)',
      'def open(ro): return 1',
      'def get_size(h): return 512',
      'def pread(h, n, o): return bytes(n)',
      '',
    ].join('\n'));
    const result = await runNbdkitTs(['--dump-plugin', 'python', script], { env: probeEnv, cwd: work, timeoutMs: 240_000 });
    const errors = result.stderr.split('\n').filter((line) => line.startsWith('error:'));
    expect(errors[0]).toMatch(/cannot import 'probe_compiled': it is a compiled extension \(.*probe_compiled\.cpython-311-x86_64-linux-gnu\.so\) built for the host's CPython/);
    expect(errors[1]).toMatch(/binding a socket \(server sockets\) is not supported by nbdkit-ts/);
    expect(errors[2]).toMatch(/can't start new thread: nbdkit-ts runs Python in WebAssembly/);
    expect(errors[3]).toMatch(/socketpair\(\) \(and with it multiprocessing\) is not supported/);
  }, SLOW);

  it('imports from the virtualenv named by VIRTUAL_ENV instead of the system site-packages', async () => {
    const venv = join(work, 'venv');
    const site = join(venv, 'lib', 'python3.11', 'site-packages');
    mkdirSync(site, { recursive: true });
    writeFileSync(join(venv, 'pyvenv.cfg'), 'include-system-site-packages = false\n');
    writeFileSync(join(site, 'probe_venv.py'), "VALUE = 'from the venv'\n");
    const script = join(work, 'venv_probe.py');
    writeFileSync(script, [
      'import sys, probe_venv',
      'print("venv:", probe_venv.VALUE, file=sys.stderr)',
      'try:',
      '    import boto3',
      '    print("system: visible", file=sys.stderr)',
      'except ImportError:',
      '    print("system: hidden", file=sys.stderr)',
      'def open(ro): return 1',
      'def get_size(h): return 512',
      'def pread(h, n, o): return bytes(n)',
      '',
    ].join('\n'));
    const result = await runNbdkitTs(['--dump-plugin', 'python', script], { env: { ...env, VIRTUAL_ENV: venv }, cwd: work, timeoutMs: 240_000 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/venv: from the venv/);
    expect(result.stderr).toMatch(/system: hidden/);
  }, SLOW);
});

describe.skipIf(!BOTO3)('python plugins with boto3 against an S3-compatible server', () => {
  let s3: S3rver;
  let endpoint: string;
  const object = randomBytes(1024 * 1024);

  beforeAll(async () => {
    s3 = new S3rver({
      address: '127.0.0.1', port: 0, silent: true, directory: join(work, 's3'),
      configureBuckets: [{ name: 'disks', configs: [] }],
    });
    const address = await s3.run();
    endpoint = `http://127.0.0.1:${address.port}`;
    // Put the object with a boto3 script under host Python, as its owner would.
    const put = await run('/usr/bin/python3', ['-c', [
      'import boto3, sys',
      `s3 = boto3.client("s3", endpoint_url=${JSON.stringify(endpoint)}, region_name="us-east-1")`,
      's3.put_object(Bucket="disks", Key="disk.img", Body=sys.stdin.buffer.read())',
    ].join('\n')], { input: object, env: { ...CLIENT_ENV, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } });
    expect(put.code, put.stderr).toBe(0);
  }, SLOW);

  afterAll(async () => {
    await s3?.close();
  }, SLOW);

  it('reads and writes the object through boto3 in the plugin', async () => {
    const server = await startServer(['python', join(FIXTURES, 's3_disk.py'), `endpoint=${endpoint}`, 'bucket=disks', 'key=disk.img'], {
      env: { ...env, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }, cwd: work, timeoutMs: 240_000,
    });
    servers.push(server);
    expect((await readThroughNbd(server.uri, 4096, 8192)).equals(object.subarray(4096, 12288))).toBe(true);
    await nbdPython(server.uri, 'h.pwrite(b"written through boto3", 100000)');
    const back = await readThroughNbd(server.uri, 100000, 21);
    expect(back.toString()).toBe('written through boto3');
    // And the object on the server changed.
    const got = await run('/usr/bin/python3', ['-c', [
      'import boto3, sys',
      `s3 = boto3.client("s3", endpoint_url=${JSON.stringify(endpoint)}, region_name="us-east-1")`,
      'sys.stdout.write(s3.get_object(Bucket="disks", Key="disk.img", Range="bytes=100000-100020")["Body"].read().decode())',
    ].join('\n')], { env: { ...CLIENT_ENV, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } });
    expect(got.stdout.toString()).toBe('written through boto3');
  }, SLOW);
});
