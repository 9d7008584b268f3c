/**
 * `nbdkit-ts eval` end to end: the seed's examples, exit codes and errnos as clients see them,
 * binary data, inferred capabilities, missing=, $tmpdir, --dump-plugin, the thread model.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ROOT, nbdPython, run, runNbdkitTs } from './helpers/server.js';
import { envWithNbdkitTs, everyByte, scratchArea, serverPool } from './fixtures/sh/e2e.js';

const area = scratchArea('eval-e2e-');
const pool = serverPool();
afterEach(() => pool.stopAll());
afterAll(() => area.cleanup());

const ZEROES = ['get_size= echo 64M ', 'pread= dd if=/dev/zero count=$3 iflag=count_bytes '];

describe('eval plugin with real clients', () => {
  it('runs the seed example of a 64M disk of zeroes (examples/eval/zeroes.sh)', async () => {
    const dir = area.dir('zeroes');
    const result = await run(join(ROOT, 'examples/eval/zeroes.sh'), ['-U', '-', '--run', 'nbdinfo $uri'], {
      env: envWithNbdkitTs(dir),
    });
    expect(result.code, result.stderr).toBe(0);
    const info = result.stdout.toString();
    expect(info).toMatch(/export-size: 67108864 \(64M\)/);
    expect(info).toMatch(/is_read_only: true/);
    const server = await pool.serve(['eval', ...ZEROES]);
    const out = await nbdPython(server.uri, 'd = h.pread(1048576, 63 * 1048576)\nprint(len(d), d.count(0))');
    expect(out).toBe('1048576 1048576\n');
  });

  it('runs the seed example that serves a file, writes included (examples/eval/file.sh)', async () => {
    const dir = area.dir('file');
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(1024 * 1024, 0x11));
    const result = await run(
      join(ROOT, 'examples/eval/file.sh'),
      ['disk.img', '-U', '-', '--run', 'qemu-io -f raw -c "write -P 0xa5 4096 8192" -c "read -P 0x11 0 4096" $nbd'],
      { env: envWithNbdkitTs(dir), cwd: dir },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).not.toMatch(/verification failed/);
    const after = readFileSync(disk);
    expect(after.length).toBe(1024 * 1024);
    expect(after.subarray(4096, 4096 + 8192).every((b) => b === 0xa5)).toBe(true);
    expect(after.subarray(0, 4096).every((b) => b === 0x11)).toBe(true);
    expect(after.subarray(12288).every((b) => b === 0x11)).toBe(true);
  });

  it('carries every byte value through pwrite (stdin) and pread (stdout)', async () => {
    const dir = area.dir('binary');
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(65536));
    const server = await pool.serve([
      'eval',
      `get_size=stat -Lc %s ${disk}`,
      `pread=dd if=${disk} skip=$4 count=$3 iflag=count_bytes,skip_bytes status=none`,
      `pwrite=dd of=${disk} seek=$4 conv=notrunc oflag=seek_bytes status=none`,
    ]);
    const data = everyByte(40000);
    writeFileSync(join(dir, 'data'), data);
    const out = await nbdPython(
      server.uri,
      `data = open(${JSON.stringify(join(dir, 'data'))}, "rb").read()
h.pwrite(data, 1000)
print(h.pread(len(data), 1000) == data)`,
    );
    expect(out).toBe('True\n');
    expect(readFileSync(disk).subarray(1000, 41000).equals(data)).toBe(true);
  });

  it('gives the client the errno named on stderr, EIO otherwise, and logs the message', async () => {
    const server = await pool.serve([
      'eval',
      'get_size=echo 1M',
      'pread=if [ $4 = 0 ]; then echo "ENOSPC Out of space" >&2; exit 1; fi; echo "EROFS read only" >&2; exit 9',
      'pwrite=cat >/dev/null; echo "no errno here" >&2; exit 1',
      'trim=exit 12',
    ]);
    const out = await nbdPython(
      server.uri,
      `import errno
for call in (lambda: h.pread(512, 0), lambda: h.pread(512, 512), lambda: h.pwrite(b"x" * 512, 0), lambda: h.trim(512, 0)):
    try:
        call()
        print("ok")
    except nbd.Error as e:
        print(errno.errorcode[e.errnum])`,
    );
    // EROFS travels as EPERM, the NBD protocol's nearest error.
    expect(out.split('\n')).toEqual(['ENOSPC', 'EPERM', 'EIO', 'EIO', '']);
    expect(await server.logged(/pread: Out of space/)).toMatch(/pread: Out of space/);
    expect(await server.logged(/pwrite: no errno here/)).toMatch(/pwrite: no errno here/);
  });

  it('infers can_* from the fragments given, as nbdkit does', async () => {
    const readOnly = await pool.serve(['eval', ...ZEROES]);
    const writable = await pool.serve([
      'eval',
      ...ZEROES,
      'pwrite=cat >/dev/null',
      'flush=exit 0',
      'trim=exit 0',
      'cache=exit 0',
    ]);
    const probe = `print(h.is_read_only(), h.can_flush(), h.can_trim(), h.can_zero(), h.can_fua(), h.can_cache())`;
    expect(await nbdPython(readOnly.uri, probe)).toBe('True False False False False False\n');
    // zero is emulated by the server with pwrite; FUA with flush.
    expect(await nbdPython(writable.uri, probe)).toBe('False True True True True True\n');
  });

  it('falls back to pwrite when zero answers ENOTSUP', async () => {
    const dir = area.dir('zero');
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(8192, 0xff));
    const server = await pool.serve([
      'eval',
      `get_size=stat -Lc %s ${disk}`,
      `pread=dd if=${disk} skip=$4 count=$3 iflag=count_bytes,skip_bytes status=none`,
      `pwrite=dd of=${disk} seek=$4 conv=notrunc oflag=seek_bytes status=none`,
      'zero=echo ENOTSUP >&2; exit 1',
    ]);
    const out = await nbdPython(server.uri, 'h.zero(4096, 1024)\nprint(h.pread(8192, 0).count(0))');
    expect(out).toBe('4096\n');
  });

  it('reports extents and export lists in the sh formats', async () => {
    const server = await pool.serve([
      'eval',
      'get_size=echo 2M',
      'pread=dd if=/dev/zero count=$3 iflag=count_bytes status=none',
      'extents=echo 0 1M; echo 1M 1M hole,zero',
      'list_exports=printf "NAMES+DESCRIPTIONS\\nfirst\\nsecond\\none\\ntwo\\n"',
    ]);
    const map = await run('nbdinfo', ['--map', server.uri]);
    expect(map.code, map.stderr).toBe(0);
    expect(map.stdout.toString().trim().split('\n').map((l) => l.trim().split(/\s+/).slice(0, 3).join(' '))).toEqual([
      '0 1048576 0',
      '1048576 1048576 3',
    ]);
    const list = await run('nbdinfo', ['--list', '--json', server.uri]);
    expect(list.code, list.stderr).toBe(0);
    const exports = (JSON.parse(list.stdout.toString()) as { exports: Array<{ 'export-name': string; description?: string }> }).exports;
    expect(exports.map((e) => [e['export-name'], e.description])).toEqual([
      ['first', 'one'],
      ['second', 'two'],
    ]);
  });

  it('calls missing= for every method without a fragment; config sees only other keys', async () => {
    const dir = area.dir('missing');
    const result = await runNbdkitTs(
      [
        '-U', '-', 'eval',
        ...ZEROES,
        `missing=echo "in missing: $@" >> ${dir}/missing.log; exit 2`,
        `config=echo "$2=$3" >> ${dir}/config.log`,
        'answer=42',
        '--run', 'nbdinfo --size $uri',
      ],
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toBe('67108864\n');
    expect(readFileSync(join(dir, 'config.log'), 'utf8')).toBe('answer=42\n');
    const log = readFileSync(join(dir, 'missing.log'), 'utf8');
    for (const method of ['config_complete', 'thread_model', 'get_ready', 'preconnect', 'open', 'can_write', 'is_rotational', 'close']) {
      expect(log).toMatch(new RegExp(`^in missing: ${method}\\b`, 'm'));
    }
  });

  it('refuses a key no fragment handles, and a method given twice', async () => {
    const unknown = await runNbdkitTs(['eval', ...ZEROES, 'file=disk.img', '--run', 'true']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/callback 'file' is unknown, and there is no 'config' callback/);
    const twice = await runNbdkitTs(['eval', ...ZEROES, 'get_size=echo 1M', '--run', 'true']);
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/method get_size defined more than once/);
  });

  it('gives the fragments a $tmpdir that is removed when the server exits', async () => {
    const dir = area.dir('tmpdir');
    const record = join(dir, 'tmpdir.txt');
    const server = await pool.serve(['eval', `get_size=echo "$tmpdir" > ${record}; echo 1M`, ZEROES[1]]);
    await nbdPython(server.uri, 'h.get_size()');
    const tmp = readFileSync(record, 'utf8').trim();
    expect(existsSync(join(tmp, 'get_size'))).toBe(true);
    expect(server.process.pid).toBeDefined();
    await pool.stopAll();
    expect(existsSync(tmp)).toBe(false);
  });

  it('--dump-plugin shows max_known_status and the dump_plugin output', async () => {
    const plain = await runNbdkitTs(['--dump-plugin', 'eval']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.toString()).toMatch(/^max_known_status=8$/m);
    expect(plain.stdout.toString()).toMatch(/^thread_model=serialize_all_requests$/m);
    const extra = await runNbdkitTs(['--dump-plugin', 'eval', 'dump_plugin=echo extra=stuff', 'thread_model=echo parallel']);
    expect(extra.code, extra.stderr).toBe(0);
    expect(extra.stdout.toString()).toMatch(/^extra=stuff$/m);
    expect(extra.stdout.toString()).toMatch(/^thread_model=parallel$/m);
  });

  it('runs requests side by side under parallel, one at a time otherwise', async () => {
    // Each pread waits (for at most a few seconds) until another pread has started: only
    // possible when two scripts run at once.
    const rendezvous = (dir: string): string =>
      `pread=touch ${dir}/$4; i=0; while [ $(ls ${dir} | wc -l) -lt 2 ]; do i=$((i+1)); ` +
      `if [ $i -gt 40 ]; then echo "EIO alone" >&2; exit 1; fi; sleep 0.05; done; ` +
      `dd if=/dev/zero count=$3 iflag=count_bytes status=none`;
    const concurrent = `
cmds = [h.aio_pread(nbd.Buffer(512), off) for off in (0, 512)]
while h.aio_in_flight() > 0:
    h.poll(-1)
ok = 0
for c in cmds:
    try:
        h.aio_command_completed(c)
        ok += 1
    except nbd.Error:
        pass
print(ok)`;
    const parallel = await pool.serve(['eval', 'get_size=echo 1M', rendezvous(area.dir('par')), 'thread_model=echo parallel']);
    expect(await nbdPython(parallel.uri, concurrent)).toBe('2\n');
    const serial = await pool.serve(['eval', 'get_size=echo 1M', rendezvous(area.dir('ser'))]);
    // Serialised, the first pread waits alone and fails; the second then finds its marker.
    expect(await nbdPython(serial.uri, concurrent)).toBe('1\n');
    expect(await serial.logged(/pread: alone/)).toMatch(/pread: alone/);
  });
});
