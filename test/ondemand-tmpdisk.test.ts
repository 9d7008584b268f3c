/**
 * The ondemand and tmpdisk plugins: disks made by mkfs (ext4) or by a command, one per export
 * name (kept, locked while in use) or one per connection (thrown away), compared with native
 * nbdkit under the same command lines.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run, runNbdkitTs, serversStoppedAfterEach } from './helpers/server.js';

const start = serversStoppedAfterEach();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-ondemand-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Python with libnbd: connect to export `name` on socket, run `body` with `h`. */
async function withExport(socket: string, name: string, body: string): Promise<{ code: number | null; out: string; err: string }> {
  const script = `import nbd\nh = nbd.NBD()\nh.set_export_name(${JSON.stringify(name)})\nh.connect_unix(${JSON.stringify(socket)})\n${body}\n`;
  const result = await run('/usr/bin/python3', ['-c', script]);
  return { code: result.code, out: result.stdout.toString().trim(), err: result.stderr };
}

/** The ext2/3/4 superblock magic (0xEF53 at byte 1080) read through NBD. */
const EXT_MAGIC = 'print(bytes(h.pread(2, 1080)).hex())';

describe('ondemand', () => {
  it('makes an ext4 disk per export name on first use, and keeps it', async () => {
    const server = await start(['ondemand', `dir=${dir}`, 'size=8M']);
    const first = await withExport(server.socket, 'alpha', `${EXT_MAGIC}\nh.pwrite(b"kept!" * 100, 4 * 1024 * 1024)`);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toBe('53ef');
    expect(statSync(join(dir, 'alpha')).size).toBe(8 * 1024 * 1024);
    const again = await withExport(server.socket, 'alpha', 'print(bytes(h.pread(5, 4 * 1024 * 1024)))');
    expect(again.out).toBe("b'kept!'");
    // "" is the file "default".
    const empty = await withExport(server.socket, '', 'print(h.get_size())');
    expect(empty.out).toBe(String(8 * 1024 * 1024));
    expect(existsSync(join(dir, 'default'))).toBe(true);
  });

  it('refuses a second connection to a disk in use, but not to another disk', async () => {
    const server = await start(['ondemand', `dir=${dir}`, 'size=4M']);
    const script =
      `h2 = nbd.NBD()\nh2.set_export_name("one")\ntry:\n  h2.connect_unix(${JSON.stringify(server.socket)})\n  print("connected")\nexcept nbd.Error:\n  print("refused")\n` +
      `h3 = nbd.NBD()\nh3.set_export_name("two")\nh3.connect_unix(${JSON.stringify(server.socket)})\nprint(h3.get_size())`;
    const result = await withExport(server.socket, 'one', script);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toBe(`refused\n${4 * 1024 * 1024}`);
    expect(server.stderr()).toMatch(/one: filesystem is locked by another client/);
  });

  it('wait=true: a second connection to a disk in use waits for the first to leave', async () => {
    const server = await start(['ondemand', `dir=${dir}`, 'size=1M', 'wait=true', 'command=truncate -s $size "$disk"']);
    const script =
      `import threading, time\n` +
      `def second():\n  h2 = nbd.NBD()\n  h2.set_export_name("one")\n  h2.connect_unix(${JSON.stringify(server.socket)})\n  print("second", bytes(h2.pread(5, 0)))\n` +
      `h.pwrite(b"first", 0)\nt = threading.Thread(target=second)\nt.start()\ntime.sleep(1)\nprint("first leaves")\nh.shutdown()\nt.join()`;
    const result = await withExport(server.socket, 'one', script);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toBe("first leaves\nsecond b'first'");
  });

  it('rejects export names with . / or :', async () => {
    const server = await start(['ondemand', `dir=${dir}`, 'size=1M']);
    for (const name of ['.bad', 'bad.', 'a/b', 'bad:bad']) {
      const result = await withExport(server.socket, name, 'print(h.get_size())');
      expect(result.code, name).not.toBe(0);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('lists the disks in dir as native nbdkit does', async () => {
    for (const name of ['default', 'export1', 'export2', '.hidden', 'a:b']) writeFileSync(join(dir, name), Buffer.alloc(1024 * 1024));
    const list = async (native: boolean): Promise<string[]> => {
      const args = ['-U', '-', 'ondemand', `dir=${dir}`, 'size=1M', '--run', 'nbdinfo --list --json "$uri"'];
      const result = native ? await run('nbdkit', args) : await runNbdkitTs(args);
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout.toString()).exports.map((e: { 'export-name': string }) => e['export-name']).sort();
    };
    const ours = await list(false);
    expect(ours).toEqual(['default', 'export1', 'export2']);
    expect(ours).toEqual(await list(true));
  });

  it('command= makes the disk with the parameters as shell variables', async () => {
    const server = await start(['ondemand', `dir=${dir}`, 'size=1M', 'fill=x', 'command=printf %s "$fill$fill" > "$disk"; truncate -s $size "$disk"']);
    const result = await withExport(server.socket, 'made', 'print(h.get_size(), bytes(h.pread(3, 0)))');
    expect(result.code, result.err).toBe(0);
    expect(result.out).toBe("1048576 b'xx\\x00'");
  });
});

describe('tmpdisk', () => {
  it('gives each connection a fresh ext4 disk with the label asked for', async () => {
    const server = await start(['tmpdisk', '8M', 'label=scratch'], { env: { ...process.env, PATH: `/usr/bin:/usr/sbin:/bin:/sbin`, TMPDIR: dir } });
    // The volume name sits at byte 120 of the superblock (1024 + 120).
    const first = await withExport(server.socket, '', `${EXT_MAGIC}\nprint(bytes(h.pread(7, 1144)))\nh.pwrite(b"gone" * 128, 6 * 1024 * 1024)`);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toBe("53ef\nb'scratch'");
    const second = await withExport(server.socket, '', 'print(bytes(h.pread(4, 6 * 1024 * 1024)))');
    expect(second.out).toBe("b'\\x00\\x00\\x00\\x00'");
    // Nothing is left in TMPDIR: each disk was deleted once open.
    expect(readdirSync(dir)).toEqual([]);
  });

  it('command= with shell variables gives the size the command made, as native nbdkit does', async () => {
    const args = ['-U', '-', 'tmpdisk', '0', 'a=2', 'a=1', 'b=1024', "c=a ' b ' c", `command=[ $a -eq 1 ] && [ "$c" = "a ' b ' c" ] && truncate -s $b "$disk"`];
    const command = ['--run', 'nbdinfo --size "$uri"'];
    const ours = await runNbdkitTs([...args, ...command]);
    const native = await run('nbdkit', [...args, ...command]);
    expect(ours.code, ours.stderr).toBe(0);
    expect(ours.stdout.toString().trim()).toBe('1024');
    expect(ours.stdout.toString()).toBe(native.stdout.toString());
  });

  it('a failing command fails the connection with nbdkit\'s message', async () => {
    const result = await runNbdkitTs(['-U', '-', 'tmpdisk', '1M', 'command=exit 3', '--run', 'nbdinfo --size "$uri"']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/command exited with code 3/);
  });

  it('size is required, and disk= may not be set', async () => {
    expect((await runNbdkitTs(['-U', '-', 'tmpdisk', '--run', 'true'])).stderr).toMatch(/size parameter is required/);
    expect((await runNbdkitTs(['-U', '-', 'tmpdisk', '1M', 'disk=x', '--run', 'true'])).stderr).toMatch(/'disk' parameter cannot be set/);
  });
});
