// Messages of a server in the background go to the system log, as nbdkit's do (its stderr is
// gone once the command that started it has returned), and --log=syslog sends them there in
// the foreground too. The log here is a Unix datagram socket of the test's own, which logger(1)
// is pointed at with NBDKIT_TS_SYSLOG_SOCKET.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLIENT_ENV, CLI, nbdPython, run } from './helpers/server.js';

const work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-syslog-'));
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A syslog socket that collects what it receives. */
async function syslogSocket(name: string): Promise<{ path: string; received: () => string }> {
  const path = join(work, name);
  let received = '';
  const listener: ChildProcess = spawn(
    '/usr/bin/python3',
    [
      '-u',
      '-c',
      `import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
while True:
    print(s.recv(65536).decode("utf-8", "replace"), flush=True)`,
      path,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  listener.stdout!.on('data', (chunk: Buffer) => (received += chunk.toString()));
  cleanups.push(() => listener.kill('SIGKILL'));
  for (let i = 0; i < 500 && !received.startsWith('ready'); i++) await new Promise((r) => setTimeout(r, 10));
  return { path, received: () => received };
}

async function waitFor(read: () => string, pattern: RegExp): Promise<string> {
  for (let i = 0; i < 500 && !pattern.test(read()); i++) await new Promise((r) => setTimeout(r, 20));
  return read();
}

/** An eval plugin whose pread fails with a message of its own. */
const FAILING = ['eval', 'get_size=echo 1M', 'pread=echo "EIO the disk said no" >&2; exit 1'];

describe('syslog', () => {
  it('a server in the background logs its errors to the system log, not to the stderr it lost', async () => {
    const log = await syslogSocket('background.sock');
    const socket = join(work, 'bg.sock');
    const pidFile = join(work, 'bg.pid');
    const env = { ...CLIENT_ENV, NBDKIT_TS_SYSLOG_SOCKET: log.path };
    const started = await run(process.execPath, [CLI, '-U', socket, '-P', pidFile, ...FAILING], { env });
    expect(started.code, started.stderr).toBe(0);
    cleanups.push(() => {
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    });
    const read = await nbdPython(
      `nbd+unix:///?socket=${socket}`,
      `try:
    h.pread(512, 0)
except nbd.Error as e:
    print(e.errno)`,
    );
    expect(read.trim()).toBe('EIO');
    const messages = await waitFor(log.received, /the disk said no/);
    // logger's format: <priority>timestamp tag[pid]: message (daemon.err is <27>).
    expect(messages).toMatch(/<27>.*nbdkit-ts\[\d+\]: error: .*the disk said no/);
    expect(started.stderr).not.toMatch(/the disk said no/);
  });

  it('--log=syslog in the foreground, and a start-up error of a background server still on stderr', async () => {
    const log = await syslogSocket('foreground.sock');
    const env = { ...CLIENT_ENV, NBDKIT_TS_SYSLOG_SOCKET: log.path };
    const result = await run(process.execPath, [CLI, '--log=syslog', '-U', '-', ...FAILING, '--run', 'nbdinfo --map "$uri" || true; nbdcopy "$uri" - >/dev/null || true'], { env });
    expect(result.code).toBe(0);
    expect(result.stderr).not.toMatch(/the disk said no/);
    expect(await waitFor(log.received, /the disk said no/)).toMatch(/nbdkit-ts\[\d+\]: error: .*the disk said no/);

    // Before it has detached, a server's failure reaches the caller.
    const failed = await run(process.execPath, [CLI, '-U', join(work, 'x.sock'), 'file', join(work, 'missing')], { env });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^nbdkit-ts: error: .*missing/m);
  });
});
