/**
 * nbdkit-ts as a drop-in `nbdkit` (shim/nbdkit, or a link named nbdkit): found on PATH by
 * libnbd, which starts it with connect_command (-s) and with systemd socket activation
 * (LISTEN_PID/LISTEN_FDS, the listening socket as fd 3), and saying `nbdkit:` in its messages.
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, run } from './helpers/server.js';

const work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-shim-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** PATH with the shim's directory first: `nbdkit` is nbdkit-ts. */
const SHIM_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(ROOT, 'shim')}:/usr/bin:/bin` };

/** Run Python with libnbd's bindings, `nbdkit` on PATH being the shim. */
function python(script: string, env = SHIM_ENV) {
  return run('/usr/bin/python3', ['-c', `import nbd, errno\nh = nbd.NBD()\n${script}\n`], { env });
}

/** PATH where `nbdkit` is the native one (/usr/bin/nbdkit), the oracle. */
const NATIVE_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: '/usr/bin:/bin' };

describe('nbdkit-ts as nbdkit', () => {
  it('says nbdkit: in its messages when run as nbdkit, and nbdkit-ts: otherwise', async () => {
    const shim = await run('nbdkit', ['memory', 'size=1X'], { env: SHIM_ENV });
    expect(shim.code).toBe(1);
    expect(shim.stderr).toMatch(/^nbdkit: error: could not parse size/);
    const link = join(work, 'nbdkit');
    symlinkSync(CLI, link);
    const linked = await run(link, ['memory', 'size=1X']);
    expect(linked.stderr).toMatch(/^nbdkit: error: could not parse size/);
    const plain = await run(CLI, ['memory', 'size=1X']);
    expect(plain.stderr).toMatch(/^nbdkit-ts: error: could not parse size/);
  });

  it('keeps the name in the server it starts in the background', async () => {
    // The plugin fails in the detached server, whose messages the parent relays.
    const result = await run('nbdkit', ['-U', join(work, 'bg.sock'), 'file', join(work, 'missing.img')], { env: SHIM_ENV });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^nbdkit: error: .*missing\.img/m);
    expect(result.stderr).not.toMatch(/nbdkit-ts:/);
  });

  it("is started by libnbd's connect_command", async () => {
    const result = await python(`h.connect_command(['nbdkit', '-s', '--exit-with-parent', 'memory', '3M'])
h.pwrite(b'command' * 10, 512)
print(h.get_size(), h.pread(70, 512) == b'command' * 10)`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('3145728 True');
  });

  it("serves through systemd socket activation, as libnbd's connect_systemd_socket_activation starts it, as native nbdkit does", async () => {
    const script = `h.connect_systemd_socket_activation(['nbdkit', 'memory', '5M'])
h.pwrite(b'activated' * 10, 4096)
print(h.get_size(), h.pread(90, 4096) == b'activated' * 10, h.can_trim(), h.can_zero(), h.can_multi_conn())
h.shutdown()`;
    const result = await python(script);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('5242880 True True True True');
    const native = await python(script, NATIVE_ENV);
    expect(native.stdout.toString()).toBe(result.stdout.toString());
  });

  it('refuses socket activation with an option that chooses where to listen, as nbdkit does', async () => {
    const result = await python(`try:
    h.connect_systemd_socket_activation(['nbdkit', '-p', '10999', 'memory', '1M'])
except nbd.Error:
    print('refused')`);
    expect(result.stdout.toString().trim()).toBe('refused');
    expect(result.stderr).toMatch(/^nbdkit: error: cannot use socket activation with -p flag$/m);
  });

  it('ignores LISTEN_PID and LISTEN_FDS meant for another process', async () => {
    const sock = join(work, 'other.sock');
    const env = { ...SHIM_ENV, LISTEN_PID: '1', LISTEN_FDS: '1' };
    const result = await run('nbdkit', ['-U', sock, 'memory', '1M', '--run', 'nbdinfo --size "$uri"'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^nbdkit: LISTEN_PID was not for us \(ignored\)$/m);
    expect(result.stdout.toString().trim()).toBe('1048576');
  });

  it('refuses LISTEN_FDS out of range, and a descriptor that is not a socket', async () => {
    // exec keeps the shell's pid, which LISTEN_PID names.
    const activate = (fds: string, redirect = '') =>
      run('/bin/sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=${fds} exec nbdkit memory 1M ${redirect}`], { env: SHIM_ENV });
    const tooMany = await activate('17');
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toMatch(/^nbdkit: error: socket activation: LISTEN_FDS=17 out of range$/m);
    const notSocket = await activate('1', '3</dev/null');
    expect(notSocket.code).toBe(1);
    expect(notSocket.stderr).toMatch(/^nbdkit: error: socket activation: file descriptor fd = 3 is not a socket$/m);
  });
});
