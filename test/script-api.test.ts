/**
 * The scripting API and command line of nbdkit 1.34 to 1.44, which native nbdkit 1.32.5 cannot
 * be the oracle for: each is checked against what nbdkit's manual pages say, with real clients
 * (libnbd's Python bindings, whose LIBNBD_DEBUG=1 output shows the error text a server sends;
 * a client knows its own pid, uid and gid to compare with what the plugin saw).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDelay, parseProbability, readPassword } from '../src/host/script-api.js';
import { rfc4514 } from '../src/host/peer.js';
import { CLI, CLIENT_ENV, ROOT, run, runNbdkitTs, serversStoppedAfterEach } from './helpers/server.js';

const FIXTURES = join(ROOT, 'test', 'fixtures');
const serve = serversStoppedAfterEach();

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-script-api-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Run a libnbd Python client: `h` is connected (by `connect`, a statement), `me` holds the
 * client's own [pid, uid, gid]. Returns stdout and the LIBNBD_DEBUG=1 log.
 */
async function client(connect: string, script: string): Promise<{ out: string; debug: string }> {
  const program = `import nbd, os, sys, errno, json
me = [os.getpid(), os.getuid(), os.getgid()]
h = nbd.NBD()
${connect}
def attempt(f):
    try:
        f()
        return 'ok'
    except nbd.Error as e:
        return errno.errorcode.get(e.errnum, str(e.errnum))
${script}
`;
  const result = await run('/usr/bin/python3', ['-c', program], { env: { ...CLIENT_ENV, LIBNBD_DEBUG: '1' } });
  if (result.code !== 0) throw new Error(`python failed (${result.code}):\n${result.stderr}`);
  return { out: result.stdout.toString(), debug: result.stderr };
}

const unixConnect = (socket: string): string => `h.connect_unix(${JSON.stringify(socket)})`;

/** What every adapter's fixture does: report, fail a write, disconnect softly, then forcibly. */
async function exerciseFixture(args: string[]): Promise<{ report: string; me: number[]; debug: string; log: string }> {
  const server = await serve(args, { timeoutMs: 60_000 });
  const first = await client(
    unixConnect(server.socket),
    `print(json.dumps({'report': h.pread(1024, 0).decode().rstrip(), 'me': me}))
print(attempt(lambda: h.pwrite(b'x' * 512, 0)))
print(attempt(lambda: h.pread(512, 512)))
print(attempt(lambda: h.pread(512, 0)))`,
  );
  const [json, write, soft, refused] = first.out.trim().split('\n');
  // A failed write, then the soft disconnect: the request that asked completes, later ones get
  // ESHUTDOWN without reaching the plugin.
  expect([write, soft, refused]).toEqual(['EIO', 'ok', 'ESHUTDOWN']);
  // A large write first moves the connection's reading to a request thread, which must stop
  // with the socket.
  const forced = await client(
    unixConnect(server.socket),
    `print(attempt(lambda: h.pwrite(b'x' * 262144, 0)), attempt(lambda: h.pread(512, 1024)))`,
  );
  // Dropped without a reply: libnbd sees the connection go.
  const [large, dropped] = forced.out.trim().split(' ');
  expect(large).toBe('EIO');
  expect(dropped).not.toMatch(/^(ok|ESHUTDOWN|EIO)$/);
  // The server goes on serving.
  const again = await client(unixConnect(server.socket), `print(attempt(lambda: h.pread(512, 2048)))`);
  expect(again.out.trim()).toBe('ok');
  const parsed = JSON.parse(json) as { report: string; me: number[] };
  return { report: parsed.report, me: parsed.me, debug: first.debug, log: server.stderr() };
}

describe('Python nbdkit module functions of nbdkit 1.34-1.44', () => {
  it('reports the client from the socket, parses, rejects arguments, and sends failures to the client', async () => {
    writeFileSync(join(work, 'password'), 'sesame\n');
    const result = await exerciseFixture(['python', join(FIXTURES, 'python', 'script-api.py'), `password=+${join(work, 'password')}`]);
    const report = JSON.parse(result.report) as Record<string, unknown>;
    const [pid, uid, gid] = result.me;
    expect(report).toMatchObject({
      password: 'sesame',
      preconnect_uid: uid,
      is_tls: false,
      stdio_safe: true,
      peer_pid: pid,
      peer_uid: uid,
      peer_gid: gid,
      peer_tls_dn: '',
      peer_tls_issuer_dn: '',
      export_name: '',
      parse_delay: [0, 1500000],
      parse_probability: 0.25,
      errors: [
        'ValueError: Unable to parse string as delay',
        'ValueError: Unable to parse string as probability',
        'TypeError: export_name() takes no arguments (1 given)',
        'TypeError: shutdown() takes no arguments (1 given)',
      ],
    });
    expect(result.log).toMatch(/nbdkit-ts: error: delay: could not parse delay: soon/);
    // The traceback names the method; the client gets the method and the exception.
    expect(result.log).toMatch(/script-api\.py: pwrite: error: Traceback[^]*RuntimeError: disk on fire/);
    expect(result.debug).toMatch(/structured error server message: pwrite: RuntimeError: disk on fire/);
  });

  it('list_exports sees the client too', async () => {
    const server = await serve(['python', join(FIXTURES, 'python', 'script-api.py')], { timeoutMs: 60_000 });
    const { out } = await client(
      `h.set_opt_mode(True)\n${unixConnect(server.socket)}`,
      `names = []
h.opt_list(lambda name, description: names.append(name) or 0)
print(json.dumps([names, me[0]]))`,
    );
    const [names, pid] = JSON.parse(out) as [string[], number];
    expect(names).toEqual(['', `pid-${pid}`]);
  });

  it('under -s, the peer is the process that started the server (libnbd connect_command)', async () => {
    const script = join(FIXTURES, 'python', 'script-api.py');
    const { out } = await client(
      `h.connect_command([${JSON.stringify(process.execPath)}, ${JSON.stringify(CLI)}, "-s", "python", ${JSON.stringify(script)}])`,
      `print(json.dumps({'report': json.loads(h.pread(1024, 0).decode()), 'me': me}))`,
    );
    const { report, me } = JSON.parse(out) as { report: Record<string, unknown>; me: number[] };
    expect([report.peer_pid, report.peer_uid, report.peer_gid]).toEqual(me);
    // stdin and stdout are the client's connection.
    expect(report.stdio_safe).toBe(false);
  });

  it('over TCP without TLS the peer functions fail, as nbdkit says they must', async () => {
    const server = await startPrintingUri(['-i', '127.0.0.1', '-p', '0', 'python', join(FIXTURES, 'python', 'script-api.py')]);
    try {
      expect(server.uri).toMatch(/^nbd:\/\/localhost:\d+$/);
      const { out } = await client(`h.connect_uri(${JSON.stringify(server.uri)})`, `print(h.pread(1024, 0).decode())`);
      const report = JSON.parse(out) as Record<string, unknown>;
      expect(report.peer_pid).toBe('RuntimeError: nbdkit.peer_pid failed');
      expect(report.peer_uid).toBe('RuntimeError: nbdkit.peer_uid failed');
      expect(report.peer_gid).toBe('RuntimeError: nbdkit.peer_gid failed');
      expect(report.preconnect_uid).toBe('nbdkit.peer_uid failed');
      expect(server.stderr()).toMatch(/error: peer_pid: the client is not connected over a Unix domain socket/);
    } finally {
      await server.stop();
    }
  });
});

describe('Lua, Tcl and JavaScript', () => {
  it('Lua: the nbdkit table has the same functions', async () => {
    const result = await exerciseFixture(['lua', join(FIXTURES, 'lua', 'script-api.lua')]);
    const [pid, uid, gid] = result.me;
    expect(result.report.split('\n')).toEqual([
      `peer_pid=${pid}`,
      `peer_uid=${uid}`,
      `peer_gid=${gid}`,
      'peer_tls_dn=',
      'is_tls=false',
      'stdio_safe=true',
      'parse_delay=2 500000000',
      'parse_probability=0.1',
      'bad_delay=error: d: could not parse delay: later',
    ]);
    expect(result.debug).toMatch(/structured error server message: pwrite: .*script-api\.lua:\d+: lua disk on fire/);
  });

  it('Tcl: the nbdkit command has the same subcommands', async () => {
    const result = await exerciseFixture(['tcl', join(FIXTURES, 'tcl', 'script-api.tcl')]);
    const [pid, uid, gid] = result.me;
    expect(result.report.split('\n')).toEqual([
      `peer_pid=${pid}`,
      `peer_uid=${uid}`,
      `peer_gid=${gid}`,
      'peer_tls_dn=',
      'is_tls=0',
      'stdio_safe=1',
      'parse_delay=0 20000',
      'parse_probability=0.125',
      'bad_probability=error: p: probability out of range, should be [0..1]: 3/2',
    ]);
    expect(result.debug).toMatch(/structured error server message: pwrite: tcl disk on fire/);
  });

  it('JavaScript: the global nbdkit object and the methods of conn', async () => {
    const result = await exerciseFixture(['js', join(FIXTURES, 'js', 'script-api.mjs')]);
    const [pid, uid, gid] = result.me;
    expect(JSON.parse(result.report)).toEqual({
      peerPid: pid,
      peerUid: uid,
      peerGid: gid,
      peerTlsDn: '',
      stdioSafe: true,
      parseDelay: { sec: 0, nsec: 250000000 },
      parseProbability: 0.5,
    });
    expect(result.debug).toMatch(/structured error server message: pwrite: js disk on fire/);
  });
});

describe('TLS client certificate names', () => {
  it('peer_tls_dn and peer_tls_issuer_dn give the verified client certificate in RFC 4514 form', async () => {
    const dir = join(work, 'tls');
    const clientDir = join(dir, 'client');
    mkdirSync(clientDir, { recursive: true });
    const openssl = async (args: string[]): Promise<void> => {
      const result = await run('openssl', args, { cwd: dir });
      if (result.code !== 0) throw new Error(`openssl ${args[0]}: ${result.stderr}`);
    };
    await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/O=BigCo/CN=BigCo CA']);
    writeFileSync(join(dir, 'server.cnf'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
    writeFileSync(join(dir, 'client.cnf'), 'extendedKeyUsage=clientAuth\n');
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost']);
    await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'server.cnf']);
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client/client-key.pem', '-out', 'client.csr', '-subj', '/C=US/O=BigCo/CN=client.example.com']);
    await openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'client/client-cert.pem', '-days', '2', '-extfile', 'client.cnf']);
    writeFileSync(join(clientDir, 'ca-cert.pem'), readFileSync(join(dir, 'ca-cert.pem')));

    const server = await serve(
      ['--tls=require', `--tls-certificates=${dir}`, '--tls-verify-peer', 'python', join(FIXTURES, 'python', 'script-api.py')],
      { timeoutMs: 60_000 },
    );
    const { out } = await client(
      `h.set_uri_allow_local_file(True)\nh.connect_uri(${JSON.stringify(`nbds+unix:///?socket=${server.socket}&tls-certificates=${clientDir}`)})`,
      `print(h.pread(1024, 0).decode())`,
    );
    const report = JSON.parse(out) as Record<string, unknown>;
    expect(report.is_tls).toBe(true);
    expect(report.peer_tls_dn).toBe('CN=client.example.com,O=BigCo,C=US');
    expect(report.peer_tls_issuer_dn).toBe('CN=BigCo CA,O=BigCo');
  });
});

describe('sh and eval exit codes of nbdkit 1.34', () => {
  const dd = 'dd if=/dev/zero count=$3 iflag=count_bytes status=none';
  const pread = `case $4 in 0) ${dd}; exit 7 ;; 512) echo 'EPERM not you' >&2; exit 8 ;; 1024) exit 6 ;; 1536) exit 12 ;; 2048) exit 8 ;; *) ${dd} ;; esac`;

  it('7 and 8 disconnect softly, 6 drops the client, 9-15 are errors', async () => {
    const server = await serve(['eval', 'get_size=echo 1M', `pread=${pread}`]);
    const socket = unixConnect(server.socket);
    const soft = await client(socket, `print(attempt(lambda: h.pread(512, 1536)), attempt(lambda: h.pread(512, 0)), attempt(lambda: h.pread(512, 4096)))`);
    expect(soft.out.trim()).toBe('EIO ok ESHUTDOWN');
    // 8 fails the request with the errno on stderr, or ESHUTDOWN when there is none.
    const failing = await client(socket, `print(attempt(lambda: h.pread(512, 512)), attempt(lambda: h.pread(512, 4096)))`);
    expect(failing.out.trim()).toBe('EPERM ESHUTDOWN');
    const bare = await client(socket, `print(attempt(lambda: h.pread(512, 2048)))`);
    expect(bare.out.trim()).toBe('ESHUTDOWN');
    const dropped = await client(socket, `print(attempt(lambda: h.pread(512, 1024)))`);
    expect(dropped.out.trim()).not.toMatch(/^(ok|EIO|ESHUTDOWN)$/);
    expect(server.running()).toBe(true);
  });

  it('4 shuts the server down after a successful reply, 5 after a failed one', async () => {
    for (const [status, expected] of [
      ['4', 'ok'],
      ['5', 'ESHUTDOWN'],
    ]) {
      const server = await serve(['eval', 'get_size=echo 1M', `pread=${dd}`, `flush=exit ${status}`]);
      const { out } = await client(unixConnect(server.socket), `print(attempt(lambda: h.flush()))`);
      expect(out.trim()).toBe(expected);
      const exited = await new Promise<boolean>((resolve) => {
        if (!server.running()) return resolve(true);
        const timer = setTimeout(() => resolve(false), 20_000);
        server.process.once('exit', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      expect(exited).toBe(true);
      expect(server.process.exitCode).toBe(0);
    }
  });
});

interface PrintingServer {
  uri: string;
  process: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

/** Start nbdkit-ts -f --print-uri ARGS and resolve with the URI it prints first on stdout. */
function startPrintingUri(args: string[]): Promise<PrintingServer> {
  const child = spawn(process.execPath, [CLI, '-f', '--print-uri', ...args], { env: CLIENT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URI printed:\n${stderr}`));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      resolve({ uri: stdout.slice(0, newline), process: child, stderr: () => stderr, stop });
    });
    child.once('exit', () => reject(new Error(`server exited:\n${stderr}`)));
  });
}

describe('server options of nbdkit 1.34-1.44', () => {
  it('--print-uri prints a URI clients connect with, in the foreground and from the background', async () => {
    const socket = join(work, 'print.sock');
    const foreground = await startPrintingUri(['-U', socket, 'memory', '1M']);
    try {
      expect(foreground.uri).toBe(`nbd+unix://?socket=${socket}`);
      const info = await run('nbdinfo', ['--size', foreground.uri]);
      expect(info.stdout.toString().trim()).toBe('1048576');
    } finally {
      await foreground.stop();
    }
    // Without -f the command returns once the server listens, having printed its URI.
    const pidFile = join(work, 'print.pid');
    const background = await runNbdkitTs(['--print-uri', '-U', socket, '-P', pidFile, 'memory', '2M']);
    try {
      expect(background.code, background.stderr).toBe(0);
      const uri = background.stdout.toString().trim();
      expect(uri).toBe(`nbd+unix://?socket=${socket}`);
      const info = await run('nbdinfo', ['--size', uri]);
      expect(info.stdout.toString().trim()).toBe('2097152');
    } finally {
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    }
  });

  it('password=-FD reaches a server that went to the background', async () => {
    const file = join(work, 'fd-password');
    writeFileSync(file, 'through a descriptor\n');
    const socket = join(work, 'fd.sock');
    const pidFile = join(work, 'fd.pid');
    const fd = openSync(file, 'r');
    const parent = spawn(
      process.execPath,
      [CLI, '-U', socket, '-P', pidFile, 'python', join(FIXTURES, 'python', 'script-api.py'), 'password=-5'],
      { env: CLIENT_ENV, stdio: ['ignore', 'ignore', 'pipe', 'ignore', 'ignore', fd] },
    );
    closeSync(fd);
    let stderr = '';
    parent.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => parent.on('exit', resolve));
    try {
      expect(code, stderr).toBe(0);
      const { out } = await client(unixConnect(socket), `print(h.pread(1024, 0).decode())`);
      expect((JSON.parse(out) as { password: string }).password).toBe('through a descriptor');
    } finally {
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    }
  });

  it('a server going to the background still reads a script or password from stdin (sh -)', async () => {
    const socket = join(work, 'stdin.sock');
    const pidFile = join(work, 'stdin.pid');
    const script = `case "$1" in get_size) echo 3M ;; pread) dd if=/dev/zero count=$3 iflag=count_bytes status=none ;; *) exit 2 ;; esac\n`;
    const parent = await runNbdkitTs(['-U', socket, '-P', pidFile, 'sh', '-'], { input: script });
    try {
      expect(parent.code, parent.stderr).toBe(0);
      const info = await run('nbdinfo', ['--size', `nbd+unix:///?socket=${socket}`]);
      expect(info.stdout.toString().trim()).toBe('3145728');
    } finally {
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    }
  });

  it('--run listens on a private Unix socket by default', async () => {
    const result = await runNbdkitTs(['memory', '1M', '--run', 'echo "$uri|$unixsocket|$port"; nbdinfo --size "$uri"']);
    expect(result.code, result.stderr).toBe(0);
    const [line, size] = result.stdout.toString().trim().split('\n');
    const [uri, socket, port] = line.split('|');
    expect(uri).toBe(`nbd+unix://?socket=${socket}`);
    expect(socket).toMatch(/\/socket$/);
    expect(port).toBe('');
    expect(size).toBe('1048576');
    // The private directory is gone with the server.
    expect(existsSync(socket)).toBe(false);
  });

  it('--timeout drops a client that does not finish the handshake in time', async () => {
    const server = await serve(['--timeout=1', 'memory', '1M']);
    const closed = await new Promise<boolean>((resolve) => {
      const socket = connect(server.socket);
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, 30_000);
      socket.on('data', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.on('error', () => undefined);
    });
    expect(closed).toBe(true);
    expect(await server.logged(/handshake not finished after 1 s/)).toMatch(/handshake not finished after 1 s/);
    // A client that does finish is served.
    const info = await run('nbdinfo', ['--size', server.uri]);
    expect(info.stdout.toString().trim()).toBe('1048576');
    const bad = await runNbdkitTs(['--timeout=soon', 'memory', '1M']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^nbdkit-ts: error: --timeout: could not parse delay: soon/);
  });

  it('--keepalive turns on TCP keepalives for accepted connections', async () => {
    const server = await startPrintingUri(['--keepalive', '-i', '127.0.0.1', '-p', '0', 'memory', '1M']);
    try {
      const port = new URL(server.uri).port;
      // Hold a connection open while ss looks at the server's end of it.
      const { out } = await client(
        `h.connect_uri(${JSON.stringify(server.uri)})`,
        `import subprocess
print(subprocess.run(['ss', '-tnoH', 'state', 'established', '( sport = :${port} )'], capture_output=True, text=True).stdout)`,
      );
      expect(out).toMatch(/timer:\(keepalive/);
    } finally {
      await server.stop();
    }
  });

  it('--log=FILE appends the messages to the file instead of stderr', async () => {
    const log = join(work, 'server.log');
    writeFileSync(log, 'earlier line\n');
    const server = await serve([`--log=${log}`, 'eval', 'get_size=echo 1M', `pread=echo 'EIO logged elsewhere' >&2; exit 1`]);
    const { out } = await client(unixConnect(server.socket), `print(attempt(lambda: h.pread(512, 0)))`);
    expect(out.trim()).toBe('EIO');
    let text = '';
    for (let i = 0; i < 500 && !text.includes('logged elsewhere'); i++) {
      text = readFileSync(log, 'utf8');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(text).toMatch(/^earlier line\n.*nbdkit-ts: error: .*pread: logged elsewhere/s);
    expect(server.stderr()).not.toMatch(/logged elsewhere/);
  });

  it('--no-meta-contexts (--no-mc) offers no base:allocation, so no block status', async () => {
    for (const [flag, expected] of [
      ['--no-meta-contexts', 'False'],
      ['--no-mc', 'False'],
      ['-v', 'True'],
    ]) {
      const server = await serve([flag, 'memory', '1M']);
      const { out } = await client(
        `h.add_meta_context('base:allocation')\n${unixConnect(server.socket)}`,
        `print(h.can_meta_context('base:allocation'))`,
      );
      expect(out.trim()).toBe(expected);
    }
  });

  it('-D nbdkit.environ=1 prints the environment with -v', async () => {
    const env = { ...CLIENT_ENV, NBDKIT_TS_ENVIRON_TEST: 'visible' };
    const shown = await runNbdkitTs(['-v', '-D', 'nbdkit.environ=1', 'memory', '1M', '--run', 'true'], { env });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stderr).toMatch(/nbdkit-ts: debug: environ: NBDKIT_TS_ENVIRON_TEST=visible/);
    const hidden = await runNbdkitTs(['-v', 'memory', '1M', '--run', 'true'], { env });
    expect(hidden.stderr).not.toMatch(/NBDKIT_TS_ENVIRON_TEST/);
  });
});

describe('script-api parsers', () => {
  it('parse_delay: seconds, fractions and units, exactly', () => {
    expect(parseDelay('d', '1')).toEqual({ sec: 1, nsec: 0 });
    expect(parseDelay('d', '0.1')).toEqual({ sec: 0, nsec: 100000000 });
    expect(parseDelay('d', '1.2s')).toEqual({ sec: 1, nsec: 200000000 });
    expect(parseDelay('d', '1500ms')).toEqual({ sec: 1, nsec: 500000000 });
    expect(parseDelay('d', '20μs')).toEqual({ sec: 0, nsec: 20000 });
    expect(parseDelay('d', '7ns')).toEqual({ sec: 0, nsec: 7 });
    for (const bad of ['', 'x', '-1', '1h', '1.2.3']) expect(() => parseDelay('d', bad)).toThrow(/d: could not parse delay/);
  });

  it('parse_probability: decimals, percentages and ratios between 0 and 1', () => {
    expect(parseProbability('p', '0.25')).toBe(0.25);
    expect(parseProbability('p', '1e-3')).toBe(0.001);
    expect(parseProbability('p', '10%')).toBeCloseTo(0.1);
    expect(parseProbability('p', '1:4')).toBe(0.25);
    expect(parseProbability('p', '1/8')).toBe(0.125);
    expect(() => parseProbability('p', '150%')).toThrow(/out of range/);
    expect(() => parseProbability('p', '1/0')).toThrow(/could not parse/);
    expect(() => parseProbability('p', 'often')).toThrow(/could not parse/);
  });

  it('read_password: the value itself, +FILE and -FD (closed after reading)', () => {
    expect(readPassword('plain')).toBe('plain');
    const file = join(work, 'pw');
    writeFileSync(file, 'from file\n');
    expect(readPassword(`+${file}`)).toBe('from file');
    const fd = openSync(file, 'r');
    expect(readPassword(`-${fd}`)).toBe('from file');
    expect(() => writeSync(fd, 'x')).toThrow(/EBADF/);
    expect(() => readPassword('-1')).toThrow(/stdin, stdout or stderr/);
    expect(() => readPassword(`+${join(work, 'missing')}`)).toThrow(/missing/);
    expect(() => closeSync(openSync(file, 'r'))).not.toThrow();
  });

  it('RFC 4514 names from the certificate order Node prints', () => {
    expect(rfc4514('C=US\nO=BigCo\nCN=client.example.com')).toBe('CN=client.example.com,O=BigCo,C=US');
    expect(rfc4514(undefined)).toBe('');
  });
});
