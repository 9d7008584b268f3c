/**
 * `nbdkit-ts sh SCRIPT` end to end: the ramdisk example under real clients and against native
 * nbdkit, any interpreter through #!, inline scripts, magic config key, errors, --dump-plugin.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, ROOT, nbdPython, run, runNbdkitTs } from './helpers/server.js';
import { scratchArea, serverPool } from './fixtures/sh/e2e.js';

const area = scratchArea('sh-e2e-');
const pool = serverPool();
afterEach(() => pool.stopAll());
afterAll(() => area.cleanup());

const RAMDISK = join(ROOT, 'examples/sh/ramdisk.sh');
const PYTHON_SCRIPT = join(ROOT, 'test/fixtures/sh/python-shebang.py');

describe('sh plugin with real clients', () => {
  it('serves examples/sh/ramdisk.sh: writes, zeroes and trims read back (size as magic key)', async () => {
    const server = await pool.serve(['sh', RAMDISK, '16M']);
    const image = server.uri;
    const io = await run('qemu-io', [
      '-f', 'raw',
      '-c', 'write -P 0xa5 1M 64k',
      '-c', 'write -P 0x5a 15M 1M',
      '-c', 'write -z 1056768 4096',
      '-c', 'read -P 0xa5 1M 4096',
      '-c', 'read -P 0 1056768 4096',
      '-c', 'read -P 0x5a 15M 1M',
      '-c', 'discard 15M 512k',
      '-c', 'read -P 0 15M 512k',
      '-c', 'read -P 0 0 1M',
      image,
    ]);
    expect(io.code, io.stderr).toBe(0);
    expect(io.stdout.toString()).not.toMatch(/verification failed/);
    expect(io.stdout.toString().match(/^read /gm)?.length).toBe(5);
  });

  it('answers nbdinfo exactly as native nbdkit does for the same script', async () => {
    const command = 'nbdinfo --json $uri';
    const ours = await runNbdkitTs(['-U', '-', 'sh', RAMDISK, 'size=3M', '--run', command]);
    const native = await run('nbdkit', ['-U', '-', 'sh', RAMDISK, 'size=3M', '--run', command]);
    expect(ours.code, ours.stderr).toBe(0);
    expect(native.code, native.stderr).toBe(0);
    const facts = (text: string): unknown => {
      const info = JSON.parse(text) as { exports: Array<Record<string, unknown>> };
      return info.exports.map(({ uri: _uri, ...rest }) => rest);
    };
    expect(facts(ours.stdout.toString())).toEqual(facts(native.stdout.toString()));
  });

  it('runs a script in any language through its #! line', async () => {
    const server = await pool.serve(['sh', PYTHON_SCRIPT]);
    const out = await nbdPython(
      server.uri,
      'd = h.pread(1000, 123456)\nprint(all(d[i] == (123456 + i) % 251 for i in range(1000)))',
    );
    expect(out).toBe('True\n');
    const info = await run('nbdinfo', [server.uri]);
    expect(info.stdout.toString()).toMatch(/description: python via sh/);
  });

  it('under -s, script stdout and stderr never reach the NBD stream', async () => {
    const program = `import nbd
h = nbd.NBD()
h.connect_command([${JSON.stringify(process.execPath)}, ${JSON.stringify(CLI)}, "-s", "sh", ${JSON.stringify(RAMDISK)}, "2M"])
h.pwrite(b"abc" * 100, 10)
print(h.pread(300, 10) == b"abc" * 100, h.get_size())`;
    const result = await run('/usr/bin/python3', ['-c', program]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toBe('True 2097152\n');
  });

  it('reads an inline script from stdin with `sh -`', async () => {
    const script = 'case "$1" in get_size) echo 1M ;; pread) dd if=/dev/zero count=$3 iflag=count_bytes status=none ;; *) exit 2 ;; esac\n';
    const result = await runNbdkitTs(['-U', '-', 'sh', '-', '--run', 'nbdinfo --size $uri'], { input: script });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toBe('1048576\n');
    const single = await runNbdkitTs(['-s', 'sh', '-'], { input: script });
    expect(single.code).not.toBe(0);
    expect(single.stderr).toMatch(/inline script is incompatible with -s/);
  });

  it('gives script errors to the client with their errno and prints them in nbdkit form', async () => {
    const dir = area.dir('errors');
    const script = join(dir, 'errors.sh');
    await run('/bin/sh', ['-c', `cat > ${script} && chmod +x ${script}`], {
      input: [
        '#!/bin/sh',
        'case "$1" in',
        '  get_size) echo 1M ;;',
        '  can_write) exit 0 ;;',
        '  pread) echo "EPERM not allowed to read $4" >&2; exit 1 ;;',
        '  pwrite) cat >/dev/null; echo "ENOSPC full" >&2; echo "second line" >&2; exit 1 ;;',
        '  *) exit 2 ;;',
        'esac',
        '',
      ].join('\n'),
    });
    const server = await pool.serve(['sh', script]);
    const out = await nbdPython(
      server.uri,
      `import errno
for call in (lambda: h.pread(512, 4096), lambda: h.pwrite(b"x" * 512, 0)):
    try:
        call()
    except nbd.Error as e:
        print(errno.errorcode[e.errnum])`,
    );
    expect(out).toBe('EPERM\nENOSPC\n');
    expect(await server.logged(/errors\.sh: not allowed to read 4096/)).toMatch(/errors\.sh: not allowed to read 4096/);
    expect(await server.logged(/errors\.sh: full$/m)).toMatch(/errors\.sh: full$/m);
  });

  it('rejects a bare value when the script has no magic config key, and a missing script', async () => {
    const extra = await runNbdkitTs(['sh', PYTHON_SCRIPT, 'stray', '--run', 'true']);
    expect(extra.code).not.toBe(0);
    expect(extra.stderr).toMatch(/expecting key=value on the command line but got: stray/);
    const keyed = await runNbdkitTs(['sh', PYTHON_SCRIPT, 'a=b', '--run', 'true']);
    expect(keyed.code).not.toBe(0);
    expect(keyed.stderr).toMatch(/this plugin does not need command line configuration/);
    const absent = await runNbdkitTs(['sh', join(area.dir('absent'), 'nope.sh'), '--run', 'true']);
    expect(absent.code).not.toBe(0);
    expect(absent.stderr).toMatch(/nope\.sh/);
  });

  it('--dump-plugin adds max_known_status and the script dump_plugin lines', async () => {
    const dir = area.dir('dump');
    const script = join(dir, 'dump.sh');
    await run('/bin/sh', ['-c', `cat > ${script} && chmod +x ${script}`], {
      input: '#!/bin/sh\ncase "$1" in dump_plugin) echo my_key=1; echo other=two ;; thread_model) echo parallel ;; *) exit 2 ;; esac\n',
    });
    const dump = await runNbdkitTs(['--dump-plugin', 'sh', script]);
    expect(dump.code, dump.stderr).toBe(0);
    const lines = dump.stdout.toString().split('\n');
    expect(lines).toContain('max_known_status=8');
    expect(lines.slice(-3)).toEqual(['my_key=1', 'other=two', '']);
    expect(lines).toContain('thread_model=parallel');
    expect(lines).toContain('magic_config_key=script');
  });

  it('a per-connection handle from open reaches later methods and close', async () => {
    const dir = area.dir('handle');
    const log = join(dir, 'log');
    const script = join(dir, 'handle.sh');
    await run('/bin/sh', ['-c', `cat > ${script} && chmod +x ${script}`], {
      input: [
        '#!/bin/sh',
        `echo "$@" >> ${log}`,
        'case "$1" in',
        '  open) mktemp -d $tmpdir/handle-XXXXXX ;;',
        '  get_size) test -d "$2" && echo 64K ;;',
        '  pread) dd if=/dev/zero count=$3 iflag=count_bytes status=none ;;',
        '  close) rm -rf "$2" ;;',
        '  *) exit 2 ;;',
        'esac',
        '',
      ].join('\n'),
    });
    const result = await runNbdkitTs(['-U', '-', 'sh', script, '--run', 'nbdinfo --size $uri']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toBe('65536\n');
    const calls = readFileSync(log, 'utf8').split('\n');
    const open = calls.find((l) => l.startsWith('open '));
    expect(open).toBe('open false  false');
    const handle = calls.find((l) => l.startsWith('get_size '))?.split(' ')[1];
    expect(handle).toMatch(/\/handle-\w{6}$/);
    expect(calls).toContain(`close ${handle}`);
  });
});
