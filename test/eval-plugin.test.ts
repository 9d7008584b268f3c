// The eval plugin called directly through the Plugin interface (no server): arguments,
// exit codes, errno parsing, can_* inference, missing, $tmpdir, binary data.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import factory from '../src/languages/sh/eval.js';
import type { ExtentSink, Plugin } from '../src/host/plugin.js';
import { CacheMode, Flag, FuaMode, PluginError, ThreadModel } from '../src/host/plugin.js';
import { connection, testHost } from './fixtures/sh/host.js';

/** The error a callback failed with (sync or async), or undefined if it succeeded. */
async function rejection(result: unknown): Promise<unknown> {
  try {
    await result;
    return undefined;
  } catch (error) {
    return error;
  }
}

const loaded: Plugin[] = [];
const scratch: string[] = [];

function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'eval-test-'));
  scratch.push(dir);
  return dir;
}

async function evalPlugin(params: Record<string, string>, host = testHost()): Promise<Plugin> {
  const plugin = await factory(host);
  loaded.push(plugin);
  await plugin.load?.();
  for (const [key, value] of Object.entries(params)) await plugin.config!(key, value);
  await plugin.config_complete!();
  return plugin;
}

afterEach(async () => {
  for (const plugin of loaded.splice(0)) await plugin.unload?.();
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('eval plugin', () => {
  it('serves the seed example: 64M of zeroes from dd', async () => {
    const p = await evalPlugin({
      get_size: ' echo 64M ',
      pread: ' dd if=/dev/zero count=$3 iflag=count_bytes ',
    });
    const h = await p.open(false, connection());
    expect(await p.get_size(h)).toBe(64n * 1024n * 1024n);
    const buf = new Uint8Array(4096).fill(7);
    await p.pread(h, buf, 4096n, 0);
    expect(buf.every((b) => b === 0)).toBe(true);
    // Nothing given for writing: every can_* is false, with no process started.
    expect(await p.can_write!(h)).toBe(false);
    expect(await p.can_flush!(h)).toBe(false);
    expect(await p.can_trim!(h)).toBe(false);
    expect(await p.can_zero!(h)).toBe(false);
    expect(await p.can_extents!(h)).toBe(false);
    expect(await p.can_cache!(h)).toBe(CacheMode.NONE);
    expect(await p.can_fua!(h)).toBe(FuaMode.NONE);
    expect(await p.can_fast_zero!(h)).toBe(true);
    expect(await p.thread_model!()).toBe(ThreadModel.SERIALIZE_ALL_REQUESTS);
  });

  it('passes method, handle, count, offset and flags as $1..$5, binary-safe both ways', async () => {
    const dir = scratchDir();
    const p = await evalPlugin({
      open: 'echo "h-$3-$2-$1"',
      get_size: 'echo 1M',
      pread: `echo "$0 $@" > ${dir}/rargs; head -c $3 ${dir}/data`,
      pwrite: `echo "$@" > ${dir}/wargs; cat > ${dir}/data`,
    });
    const h = await p.open(true, connection('exp'));
    expect((h as { id: string }).id).toBe('h-exp-true-open');
    const data = new Uint8Array(256);
    for (let i = 0; i < 256; i++) data[i] = i; // NULs, newlines, invalid UTF-8
    await p.pwrite!(h, data, 512n, Flag.FUA);
    expect(readFileSync(`${dir}/wargs`, 'utf8')).toBe('pwrite h-exp-true-open 256 512 fua\n');
    await p.pwrite!(h, data, 512n, Flag.FUA | Flag.MAY_TRIM | Flag.FAST_ZERO);
    expect(readFileSync(`${dir}/wargs`, 'utf8')).toBe('pwrite h-exp-true-open 256 512 fua,may_trim,fast\n');
    const out = new Uint8Array(256);
    await p.pread(h, out, 1024n, 0);
    expect(Buffer.from(out).equals(Buffer.from(data))).toBe(true);
    expect(readFileSync(`${dir}/rargs`, 'utf8')).toMatch(/^\/\S+\/pread pread h-exp-true-open 256 1024\n$/);
    // $tmpdir is given to scripts only, never put in the server's own environment.
    expect(process.env.tmpdir).toBeUndefined();
  });

  it('fails a pread that prints the wrong amount of data', async () => {
    const p = await evalPlugin({ get_size: 'echo 1M', pread: 'head -c 10 /dev/zero' });
    const h = await p.open(false, connection());
    await expect(p.pread(h, new Uint8Array(11), 0n, 0)).rejects.toThrow(/expecting 11 bytes but received 10 bytes/);
    await expect(p.pread(h, new Uint8Array(9), 0n, 0)).rejects.toThrow(/expecting 9 bytes but received 10 bytes/);
  });

  it('reports exit 1 with an errno name on stderr as that errno, EIO otherwise', async () => {
    const p = await evalPlugin({
      get_size: 'echo 1M',
      pread: 'echo "ENOSPC Out of space" >&2; exit 1',
      pwrite: 'cat >/dev/null; echo "EINVALID thing" >&2; exit 9',
      trim: 'exit 1',
      zero: 'echo enotsup >&2; exit 1',
    });
    const h = await p.open(false, connection());
    const err = await rejection(p.pread(h, new Uint8Array(1), 0n, 0));
    expect(err).toBeInstanceOf(PluginError);
    expect((err as PluginError).errno).toBe('ENOSPC');
    expect((err as PluginError).message).toMatch(/pread: Out of space$/);
    const err2 = (await rejection(p.pwrite!(h, new Uint8Array(1), 0n, 0))) as PluginError;
    expect(err2.errno).toBe('EIO');
    expect(err2.message).toMatch(/EINVALID thing$/);
    const err3 = (await rejection(p.trim!(h, 1, 0n, 0))) as PluginError;
    expect(err3.errno).toBe('EIO');
    expect(err3.message).toMatch(/did not print an error message/);
    const err4 = (await rejection(p.zero!(h, 1, 0n, 0))) as PluginError;
    expect(err4.errno).toBe('ENOTSUP');
  });

  it('judges a pwrite that leaves stdin unread by its exit status alone, as nbdkit does', async () => {
    const p = await evalPlugin({ get_size: 'echo 16M', pread: 'exit 1', pwrite: 'exit 0', trim: 'exit 0' });
    const h = await p.open(false, connection());
    await p.pwrite!(h, new Uint8Array(4 * 1024 * 1024), 0n, 0);
    const q = await evalPlugin({ get_size: 'echo 16M', pread: 'exit 1', pwrite: 'echo "EIO failed early" >&2; exit 1' });
    const h2 = await q.open(false, connection());
    await expect(q.pwrite!(h2, new Uint8Array(4 * 1024 * 1024), 0n, 0)).rejects.toThrow(/failed early/);
  });

  it('treats exit 3 as false and 2 as missing', async () => {
    const p = await evalPlugin({
      get_size: 'echo 1M',
      pread: 'exit 3',
      pwrite: 'cat >/dev/null',
      can_write: 'exit 3',
      is_rotational: 'exit 0',
      can_multi_conn: 'exit 2',
    });
    const h = await p.open(false, connection());
    expect(await p.can_write!(h)).toBe(false);
    expect(await p.is_rotational!(h)).toBe(true);
    expect(await p.can_multi_conn!(h)).toBe(false);
    const err = (await rejection(p.pread(h, new Uint8Array(1), 0n, 0))) as PluginError;
    expect(err.message).toMatch(/pread method returned unexpected code \(3\/false\)/);
  });

  it('synthesises can_* from the methods given, including can_cache=native', async () => {
    const p = await evalPlugin({
      get_size: 'echo 1M',
      pread: 'exit 1',
      pwrite: 'cat >/dev/null',
      flush: 'exit 0',
      trim: 'exit 0',
      zero: 'exit 0',
      extents: 'echo 0 $3 hole,zero',
      cache: 'exit 0',
    });
    const h = await p.open(false, connection());
    expect(await p.can_write!(h)).toBe(true);
    expect(await p.can_flush!(h)).toBe(true);
    expect(await p.can_trim!(h)).toBe(true);
    expect(await p.can_zero!(h)).toBe(true);
    expect(await p.can_extents!(h)).toBe(true);
    expect(await p.can_cache!(h)).toBe(CacheMode.NATIVE);
    expect(await p.can_fua!(h)).toBe(FuaMode.EMULATE);
    expect(await p.can_fast_zero!(h)).toBe(false);
    const added: Array<[bigint, bigint, number]> = [];
    const sink: ExtentSink = { add: (o, l, t) => void added.push([o, l, t]) };
    await p.extents!(h, 4096, 0n, Flag.REQ_ONE, sink);
    expect(added).toEqual([[0n, 4096n, 3]]);
  });

  it('runs missing= for every method not given, and config sees only non-method keys', async () => {
    const dir = scratchDir();
    const p = await evalPlugin({
      missing: `echo "$@" >> ${dir}/missing.log; exit 2`,
      config: `echo "$2=$3" >> ${dir}/config.log`,
      get_size: 'echo 1M',
      pread: 'dd if=/dev/zero count=$3 iflag=count_bytes 2>/dev/null',
      foo: 'bar',
      thread_model: 'echo parallel',
      file: 'disk.img',
    });
    expect(await p.thread_model!()).toBe(ThreadModel.PARALLEL);
    await p.get_ready!();
    const h = await p.open(false, connection());
    expect(await p.can_write!(h)).toBe(false);
    await p.close!(h);
    expect(readFileSync(`${dir}/config.log`, 'utf8')).toBe('foo=bar\nfile=disk.img\n');
    const log = readFileSync(`${dir}/missing.log`, 'utf8').split('\n');
    for (const method of ['config_complete', 'get_ready', 'open false  false', 'can_write ', 'close ']) {
      expect(log).toContain(method);
    }
  });

  it('rejects a key with no config fragment, and duplicate methods', async () => {
    const p = await factory(testHost());
    loaded.push(p);
    await p.load?.();
    await p.config!('get_size', 'echo 1');
    await expect(p.config!('get_size', 'echo 2')).rejects.toThrow(/defined more than once/);
    await expect(p.config!('file', 'disk.img')).rejects.toThrow(/callback 'file' is unknown/);
  });

  it('creates $tmpdir for the scripts and removes it at unload', async () => {
    const p = await evalPlugin({ get_size: 'echo $tmpdir', pread: 'exit 1' });
    const h = await p.open(false, connection());
    const err = (await Promise.resolve(p.get_size(h)).catch((e: unknown) => e)) as PluginError;
    // get_size printed the directory, which is not a size: the message carries it.
    const dir = /get_size method: (\S+)$/.exec(err.message)?.[1];
    expect(dir).toBeDefined();
    expect(existsSync(`${dir}/get_size`)).toBe(true);
    expect(readFileSync(`${dir}/get_size`, 'utf8')).toBe('echo $tmpdir\n');
    await p.unload!();
    loaded.pop();
    expect(existsSync(dir!)).toBe(false);
  });

  it('dump_plugin prints max_known_status and the fragment output', async () => {
    const p = await factory(testHost());
    loaded.push(p);
    await p.load?.();
    await p.config!('dump_plugin', 'echo extra=stuff');
    expect(await p.dump_plugin!()).toEqual(['max_known_status=8', 'extra=stuff']);
  });

  it('parses block_size, exports and default_export', async () => {
    const p = await evalPlugin({
      get_size: 'echo 1M',
      pread: 'exit 1',
      block_size: 'echo 512 4K 1M',
      list_exports: 'printf "INTERLEAVED\\na\\ndesc a\\nb\\ndesc b\\n"',
      default_export: 'printf "NAMES+DESCRIPTIONS\\nx\\ny\\nX\\nY\\n"',
      export_description: 'echo "a disk"',
    });
    const h = await p.open(false, connection());
    expect(await p.block_size!(h)).toEqual({ minimum: 512, preferred: 4096, maximum: 1048576 });
    expect(await p.list_exports!(false, false)).toEqual([
      { name: 'a', description: 'desc a' },
      { name: 'b', description: 'desc b' },
    ]);
    expect(await p.default_export!(false, false)).toBe('x');
    expect(await p.export_description!(h)).toBe('a disk');
  });
});
