/**
 * `nbdkit-ts streaming` end to end: the seed's qemu-img recipe into a FIFO read by cat,
 * existing FIFOs and Unix sockets, gaps, backwards writes, reads, -r, and read= mode.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ROOT, nbdPython, run, runNbdkitTs } from './helpers/server.js';
import { envWithNbdkitTs, scratchArea, serverPool } from './fixtures/sh/e2e.js';

const area = scratchArea('streaming-e2e-');
const pool = serverPool();
const readers: ChildProcess[] = [];
afterEach(async () => {
  await pool.stopAll();
  for (const reader of readers.splice(0)) reader.kill('SIGKILL');
});
afterAll(() => area.cleanup());

/** `cat FIFO > OUT` in the background; resolves when cat has seen the end of the stream. */
function catInto(fifo: string, out: string): Promise<number | null> {
  const cat = spawn('/bin/sh', ['-c', 'exec cat "$0" > "$1"', fifo, out], { stdio: 'ignore' });
  readers.push(cat);
  return new Promise((resolve) => cat.on('exit', resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A disk image with random data, a zero gap, and data in its last bytes. */
function sampleImage(path: string): Buffer {
  const data = Buffer.alloc(6 * 1024 * 1024);
  randomBytes(2 * 1024 * 1024).copy(data, 0);
  randomBytes(1024 * 1024).copy(data, 4 * 1024 * 1024);
  Buffer.from('the end').copy(data, data.length - 7);
  writeFileSync(path, data);
  return data;
}

describe('streaming plugin', () => {
  it('turns the seed recipe (qemu-img convert -n into $nbd) into the disk on a new FIFO', async () => {
    const dir = area.dir('seed');
    const input = join(dir, 'input.raw');
    const data = sampleImage(input);
    const fifo = join(dir, 'output');
    const out = join(dir, 'captured.raw');
    // The plugin creates the FIFO; --run starts the reader, then qemu-img writes the disk.
    const result = await runNbdkitTs(
      ['-U', '-', 'streaming', `pipe=${fifo}`, '--run', `test -p ${fifo} && { cat ${fifo} > ${out} & } && qemu-img convert -n ${input} -O raw $nbd`],
    );
    expect(result.code, result.stderr).toBe(0);
    // The server has exited and closed the FIFO, so cat ends on its own.
    for (let i = 0; i < 200 && (!existsSync(out) || statSync(out).size < data.length); i++) await sleep(25);
    expect(readFileSync(out).equals(data)).toBe(true);
  });

  it('uses an existing FIFO, and the streaming example script works as written', async () => {
    const dir = area.dir('example');
    const input = join(dir, 'input.raw');
    const data = sampleImage(input);
    const result = await run(join(ROOT, 'examples/streaming/qemu-img-to-pipe.sh'), [input], { env: envWithNbdkitTs(dir) });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.equals(data)).toBe(true);
  });

  it('streams into a listening Unix socket', async () => {
    const dir = area.dir('socket');
    const path = join(dir, 'listener');
    const received: Buffer[] = [];
    const done = new Promise<void>((resolve) => {
      const listener: Server = createServer((conn) => {
        conn.on('data', (chunk: Buffer) => received.push(chunk));
        conn.on('end', () => {
          listener.close();
          resolve();
        });
      });
      listener.listen(path);
    });
    while (!existsSync(path)) await sleep(10);
    const server = await pool.serve(['streaming', `write=${path}`, 'size=1M']);
    await nbdPython(server.uri, 'h.pwrite(b"abc" * 1000, 0)\nh.pwrite(b"xyz", 4000)');
    await pool.stopAll();
    await done;
    const expected = Buffer.concat([Buffer.from('abc'.repeat(1000)), Buffer.alloc(1000), Buffer.from('xyz')]);
    expect(Buffer.concat(received).equals(expected)).toBe(true);
  });

  it('fills gaps with zeroes, reads zeroes past the high-water mark, and fails writes backwards for good', async () => {
    const dir = area.dir('rules');
    const fifo = join(dir, 'fifo');
    const out = join(dir, 'out');
    const server = await pool.serve(['streaming', `pipe=${fifo}`]);
    const cat = catInto(fifo, out);
    const result = await nbdPython(
      server.uri,
      `import errno
def attempt(f):
    try:
        r = f()
        return "ok" if r is None else r
    except nbd.Error as e:
        return errno.errorcode[e.errnum]
print(h.get_size())
print(attempt(lambda: h.pwrite(b"A" * 512, 0)))
print(attempt(lambda: h.pwrite(b"B" * 512, 1024)))
print(attempt(lambda: h.pread(512, 1536).count(0)))
print(attempt(lambda: h.pwrite(b"C" * 512, 0)))
print(attempt(lambda: h.pwrite(b"D" * 512, 4096)))`,
    );
    expect(result.split('\n')).toEqual([String((1n << 63n) - (1n << 30n)), 'ok', 'ok', '512', 'EIO', 'EIO', '']);
    expect(await server.logged(/client tried to seek backwards and write/)).toMatch(/client tried to seek backwards and write/);
    // A new connection is refused in the error state.
    const again = await run('nbdinfo', ['--size', server.uri]);
    expect(again.code).not.toBe(0);
    await pool.stopAll();
    await cat;
    expect(readFileSync(out).equals(Buffer.concat([Buffer.alloc(512, 'A'), Buffer.alloc(512), Buffer.alloc(512, 'B')]))).toBe(true);
  });

  it('fails writes at once with EIO, saying why, when the FIFO reader has exited', async () => {
    const dir = area.dir('reader-exits');
    const fifo = join(dir, 'fifo');
    const out = join(dir, 'out');
    const server = await pool.serve(['streaming', `pipe=${fifo}`]);
    const head = spawn('/bin/sh', ['-c', 'exec head -c 100000 "$0" > "$1"', fifo, out], { stdio: 'ignore' });
    readers.push(head);
    const headExited = new Promise((resolve) => head.on('exit', resolve));
    // 4 MiB in 256 KiB writes: head takes the first 100,000 bytes and leaves, so not even the
    // first write completes. Each must fail at once, where it used to wait forever for room
    // in the pipe.
    const result = await nbdPython(
      server.uri,
      `import errno, time
outcomes = []
for i in range(16):
    started = time.monotonic()
    try:
        h.pwrite(bytes([65 + i]) * 262144, i * 262144)
        outcomes.append("ok")
    except nbd.Error as e:
        outcomes.append("%s %s" % (errno.errorcode[e.errnum], "quickly" if time.monotonic() - started < 5 else "slowly"))
print(" ".join(sorted(set(outcomes))))`,
    );
    await headExited;
    expect(result.trim()).toBe('EIO quickly');
    expect(await server.logged(/reader closed the pipe \(EPIPE\)/)).toMatch(/reader closed the pipe \(EPIPE\)/);
    expect(readFileSync(out).equals(Buffer.alloc(100000, 'A'))).toBe(true);
  });

  it('enters the error state on a read below the high-water mark', async () => {
    const dir = area.dir('read-back');
    const server = await pool.serve(['streaming', `pipe=${join(dir, 'fifo')}`, 'size=64K']);
    const cat = catInto(join(dir, 'fifo'), join(dir, 'out'));
    const out = await nbdPython(
      server.uri,
      `print(h.get_size())
h.pwrite(b"A" * 512, 0)
try:
    h.pread(512, 0)
except nbd.Error as e:
    print("refused")`,
    );
    expect(out).toBe('65536\nrefused\n');
    const writeMode = /client tried to read, but the streaming plugin is being used in write mode/;
    expect(await server.logged(writeMode)).toMatch(writeMode);
    await pool.stopAll();
    await cat;
  });

  it('refuses -r and a missing pipe=', async () => {
    const dir = area.dir('refuse');
    const readonly = await runNbdkitTs(['-r', '-U', '-', 'streaming', `pipe=${join(dir, 'fifo')}`, '--run', 'true']);
    expect(readonly.code).not.toBe(0);
    expect(readonly.stderr).toMatch(/you cannot use the -r option with the streaming plugin/);
    const none = await runNbdkitTs(['-U', '-', 'streaming', 'size=1M', '--run', 'true']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/you must supply either the read=<FILENAME> or write=<FILENAME>/);
    const both = await runNbdkitTs(['-U', '-', 'streaming', 'read=a', 'write=b', '--run', 'true']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/cannot use read and write options at the same time/);
  });

  it('read= serves a stream to a client reading forwards, skipping ahead as asked', async () => {
    const dir = area.dir('read');
    const fifo = join(dir, 'fifo');
    const data = randomBytes(3 * 65536);
    // The writer opens the FIFO first (the plugin creates it if needed; here the test does).
    await run('mkfifo', [fifo]);
    const writer = createWriteStream(fifo);
    writer.end(data);
    const server = await pool.serve(['streaming', `read=${fifo}`, `size=${data.length}`]);
    const out = await nbdPython(
      server.uri,
      `print(h.is_read_only())
a = h.pread(65536, 0)
b = h.pread(1000, 131072)
try:
    h.pread(512, 0)
except nbd.Error as e:
    print("backwards refused")
print(a.hex())
print(b.hex())`,
    );
    const lines = out.split('\n');
    expect(lines.slice(0, 2)).toEqual(['True', 'backwards refused']);
    expect(lines[2]).toBe(data.subarray(0, 65536).toString('hex'));
    expect(lines[3]).toBe(data.subarray(131072, 132072).toString('hex'));
    expect(await server.logged(/client tried to seek backwards and read/)).toMatch(/client tried to seek backwards and read/);
  });
});
