/**
 * The nbd plugin: nbdkit-ts as a proxy in front of native nbdkit and qemu-nbd, over Unix
 * sockets, TCP, URIs, socket activation and TLS, compared with native nbdkit's own nbd plugin
 * under the same command line.
 */
import { randomBytes } from 'node:crypto';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runNbdkitTs, serversStoppedAfterEach } from './helpers/server.js';

const start = serversStoppedAfterEach();
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-nbd-'));
  writeFileSync(join(work, 'keys.psk'), `alice:${randomBytes(32).toString('hex')}\n`);
  const openssl = async (args: string[]): Promise<void> => {
    const result = await run('openssl', args, { cwd: work });
    if (result.code !== 0) throw new Error(`openssl ${args[0]}: ${result.stderr}`);
  };
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=nbd test CA']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(work, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server-cert.pem', '-days', '2', '-extfile', 'ext.cnf']);
  mkdirSync(join(work, 'client'));
  copyFileSync(join(work, 'ca-cert.pem'), join(work, 'client', 'ca-cert.pem'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The same --run command through nbdkit-ts's nbd plugin and native nbdkit's. */
async function both(args: string[], command: string): Promise<[string, string]> {
  const ours = await runNbdkitTs(['-U', '-', 'nbd', ...args, '--run', command]);
  const native = await run('nbdkit', ['-U', '-', 'nbd', ...args, '--run', command]);
  expect(ours.code, ours.stderr).toBe(0);
  expect(native.code, native.stderr).toBe(0);
  const clean = (text: string): string => text.replace(/"uri": ".*"/g, '"uri": ""').replace(/nbd\+unix:\S+/g, 'URI');
  return [clean(ours.stdout.toString()), clean(native.stdout.toString())];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Native nbdkit on a loopback TCP port (startServer serves on Unix sockets only). */
async function startNativeTcp(port: number, args: string[]): Promise<ChildProcess> {
  const pidFile = join(work, `tcp-${port}.pid`);
  const child = spawn('nbdkit', ['-f', '-i', '127.0.0.1', '-p', String(port), '-P', pidFile, ...args], { stdio: 'ignore' });
  for (let i = 0; i < 500 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 20));
  if (!existsSync(pidFile)) {
    child.kill();
    throw new Error('native nbdkit did not start on TCP');
  }
  return child;
}

const WRITES =
  'h.pwrite(b"hello" * 1000, 100000); h.zero(65536, 1048576); h.trim(65536, 2097152); ' +
  'h.pwrite(b"\\xff" * 4096, 3000000); h.flush()';

describe('nbd plugin in front of native nbdkit', () => {
  it('passes capabilities, data, zeroes and the allocation map through, as native nbdkit does', async () => {
    const outputs: Record<string, string> = {};
    for (const proxy of ['ours', 'native'] as const) {
      // A fresh upstream each time, so both proxies see the same history.
      const upstream = await start(['memory', '4M'], { native: true });
      const command = `nbdsh -u "$uri" -c '${WRITES}' && nbdinfo --json "$uri" && nbdinfo --map "$uri" && nbdcopy "$uri" - | md5sum`;
      const result =
        proxy === 'ours'
          ? await runNbdkitTs(['-U', '-', 'nbd', `socket=${upstream.socket}`, '--run', command])
          : await run('nbdkit', ['-U', '-', 'nbd', `socket=${upstream.socket}`, '--run', command]);
      expect(result.code, result.stderr).toBe(0);
      outputs[proxy] = result.stdout.toString().replace(/"uri": ".*"/g, '');
      await upstream.stop();
    }
    expect(outputs.ours).toBe(outputs.native);
    expect(outputs.ours).toMatch(/hole,zero/);
  });

  it('passes the upstream server errno to the client (ENOSPC from a failing write)', async () => {
    const upstream = await start(['eval', 'get_size=echo 1M', 'pread=dd if=/dev/zero count=$3 iflag=count_bytes', 'pwrite=cat >/dev/null; echo ENOSPC full >&2; exit 1'], {
      native: true,
    });
    // (The script reads its input first: one that exits before nbdkit has written the data
    // fails with EPIPE, and the client then sees EIO.)
    const script = 'try:\n  h.pwrite(b"x" * 512, 0)\nexcept nbd.Error as e:\n  print(e.errno)';
    const [ours, native] = await both([`socket=${upstream.socket}`], `nbdsh -u "$uri" -c '${script}'`);
    expect(ours.trim()).toBe('ENOSPC');
    expect(ours).toBe(native);
  });

  it('TCP hostname/port and an nbd:// URI with an export name reach the same export', async () => {
    const port = await freePort();
    // The info plugin answers with the export name the client asked for.
    const upstream = await startNativeTcp(port, ['info', 'mode=exportname']);
    const read = `nbdsh -u "$uri" -c 'print(h.pread(h.get_size(), 0).decode())'`;
    const [byHost, byHostNative] = await both(['hostname=127.0.0.1', `port=${port}`, 'export=apple'], read);
    expect(byHost.trim()).toBe('apple');
    expect(byHost).toBe(byHostNative);
    const [byUri, byUriNative] = await both([`nbd://127.0.0.1:${port}/banana`], read);
    expect(byUri.trim()).toBe('banana');
    expect(byUri).toBe(byUriNative);
    upstream.kill();
  });

  it('dynamic-export=true passes each client export name through, and lists the upstream exports', async () => {
    const upstream = await start(['info', 'mode=exportname'], { native: true });
    const proxy = await start(['nbd', `socket=${upstream.socket}`, 'dynamic-export=true']);
    for (const name of ['one', 'tw o', '']) {
      const script = `import nbd\nh = nbd.NBD()\nh.set_export_name(${JSON.stringify(name)})\nh.connect_unix(${JSON.stringify(proxy.socket)})\nprint(repr(bytes(h.pread(h.get_size(), 0)) if h.get_size() else b""))`;
      const result = await run('/usr/bin/python3', ['-c', script]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.toString().trim()).toBe(`b${JSON.stringify(name).replace(/"/g, "'")}`);
    }
  });

  it('shared=true: all clients use one upstream connection', async () => {
    const upstream = await start(['-v', 'memory', '1M'], { native: true });
    const proxy = await start(['nbd', `socket=${upstream.socket}`, 'shared=true']);
    const script = `import nbd\nhs = [nbd.NBD() for i in range(3)]\nfor h in hs: h.connect_unix(${JSON.stringify(proxy.socket)})\nhs[0].pwrite(b"shared", 0)\nprint(bytes(hs[2].pread(6, 0)))\nfor h in hs: h.shutdown()`;
    const result = await run('/usr/bin/python3', ['-c', script]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe("b'shared'");
    expect(upstream.stderr().match(/accepted connection/g) ?? []).toHaveLength(1);
  });
});

describe('nbd plugin in front of qemu-nbd', () => {
  it('command= runs qemu-nbd with socket activation on a qcow2 image', async () => {
    const image = join(work, 'disk.qcow2');
    const made = await run('qemu-img', ['create', '-f', 'qcow2', image, '8M']);
    expect(made.code, made.stderr).toBe(0);
    const command = `nbdsh -u "$uri" -c 'h.pwrite(b"qcow2!" * 100, 65536); print(h.get_size(), bytes(h.pread(6, 65536)))'`;
    const result = await runNbdkitTs(['-U', '-', 'nbd', 'command=qemu-nbd', 'arg=-f', 'arg=qcow2', `arg=${image}`, '--run', command]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe("8388608 b'qcow2!'");
    // The data went into the qcow2 image.
    const check = await run('qemu-io', ['-f', 'qcow2', '-c', 'read -P 0x71 65536 1', image]);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout.toString()).not.toMatch(/Pattern verification failed/);
  });
});

describe('nbd plugin: TLS to the upstream server', () => {
  it('tls=require with tls-certificates verifies the server against the CA', async () => {
    const upstream = await start(['--tls=require', `--tls-certificates=${work}`, 'memory', '1M'], { native: true });
    const [ours, native] = await both(
      ['tls=require', `tls-certificates=${join(work, 'client')}`, `socket=${upstream.socket}`],
      'nbdsh -u "$uri" -c \'h.pwrite(b"tls" * 100, 0); print(bytes(h.pread(3, 0)))\'',
    );
    expect(ours.trim()).toBe("b'tls'");
    expect(ours).toBe(native);
  });

  it('tls-psk with tls-username', async () => {
    const upstream = await start(['--tls=require', `--tls-psk=${join(work, 'keys.psk')}`, 'memory', '1M'], { native: true });
    const [ours, native] = await both(
      ['tls=require', `tls-psk=${join(work, 'keys.psk')}`, 'tls-username=alice', `socket=${upstream.socket}`],
      'nbdinfo --size "$uri"',
    );
    expect(ours.trim()).toBe('1048576');
    expect(ours).toBe(native);
  });

  it('tls=require fails against a server without TLS; tls=on falls back to plain', async () => {
    const upstream = await start(['memory', '1M'], { native: true });
    const refused = await runNbdkitTs(['-U', '-', 'nbd', 'tls=require', `socket=${upstream.socket}`, '--run', 'nbdinfo --size "$uri"']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/TLS/);
    const plain = await runNbdkitTs(['-U', '-', 'nbd', 'tls=on', `socket=${upstream.socket}`, '--run', 'nbdinfo --size "$uri"']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.toString().trim()).toBe('1048576');
  });
});

describe('nbd plugin: a misbehaving upstream server', () => {
  it('garbage instead of a greeting fails that client only; an upstream dying mid-way fails requests, not the server', async () => {
    const sock = join(work, 'garbage.sock');
    const garbage = createServer((c) => c.end(Buffer.from('this is not NBD at all, sorry!!')));
    await new Promise<void>((r) => garbage.listen(sock, r));
    const proxy = await start(['nbd', `socket=${sock}`]);
    const refused = await run('nbdinfo', ['--size', proxy.uri]);
    expect(refused.code).not.toBe(0);
    expect(proxy.stderr()).toMatch(/NBD magic/);
    await new Promise((r) => garbage.close(r));

    const upstream = await start(['memory', '1M'], { native: true });
    const proxy2 = await start(['nbd', `socket=${upstream.socket}`]);
    const script =
      `import nbd, os, signal\nh = nbd.NBD()\nh.connect_unix(${JSON.stringify(proxy2.socket)})\nprint(len(h.pread(512, 0)))\n` +
      `os.kill(${upstream.process.pid}, signal.SIGKILL)\nimport time\ntime.sleep(0.5)\n` +
      `try:\n  h.pread(512, 0)\n  print("read")\nexcept nbd.Error:\n  print("failed")`;
    const result = await run('/usr/bin/python3', ['-c', script]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('512\nfailed');
    expect(proxy2.running()).toBe(true);
  });
});

describe('nbd plugin: configuration errors', () => {
  it.each([
    [[], /exactly one of/],
    [['socket=/x', 'hostname=y'], /cannot mix/],
    [['socket=/x', 'port=1'], /‘port’ parameter should only be used/],
    [['socket=/x', 'dynamic-export=true', 'shared=true'], /cannot use 'dynamic-export' with shared/],
    [['socket=/x', 'bogus=1'], /unknown parameter 'bogus'/],
  ])('%j is refused', async (args, message) => {
    const result = await runNbdkitTs(['-U', '-', 'nbd', ...args, '--run', 'true']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
  });

  it('a command that does not start fails the start-up cleanly', async () => {
    const result = await runNbdkitTs(['-U', '-', 'nbd', 'command=/nonexistent/server', '--run', 'nbdinfo --size "$uri"']);
    expect(result.code).toBe(1);
    // Refused, reset or closed, by how far the shell got before it failed.
    expect(result.stderr).toMatch(/^nbdkit-ts: error: after_fork: /m);
    expect(result.stderr).not.toMatch(/ at /);
  });

  it('--dump-plugin says what scripts test for', async () => {
    const result = await runNbdkitTs(['--dump-plugin', 'nbd']);
    expect(result.code, result.stderr).toBe(0);
    for (const line of ['name=nbd', 'libnbd_tls=1', 'libnbd_uri=1', 'libnbd_dynamic_list=1', 'libnbd_vsock=0']) {
      expect(result.stdout.toString().split('\n')).toContain(line);
    }
  });
});
