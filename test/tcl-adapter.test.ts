// The Tcl adapter called directly through the Plugin interface (no server): which callbacks
// it exposes, start-up errors, dump_plugin, errors and errnos, the nbdkit command.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import factory from '../src/languages/tcl/index.js';
import { type Plugin, PluginError, ReportedPluginError, ThreadModel } from '../src/host/plugin.js';
import { connection, testHost, type TestHost } from './fixtures/sh/host.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'tcl');
const loaded: Plugin[] = [];

async function tclPlugin(script: string, params: Record<string, string> = {}, host = testHost()): Promise<Plugin> {
  const plugin = await factory(host);
  loaded.push(plugin);
  await plugin.load?.();
  await plugin.config!('script', join(FIXTURES, script));
  for (const [key, value] of Object.entries(params)) await plugin.config!(key, value);
  await plugin.config_complete!();
  return plugin;
}

afterEach(async () => {
  for (const plugin of loaded.splice(0)) await plugin.unload?.();
});

describe('the callbacks a script defines, and only those', () => {
  it('ramdisk.tcl: the write callbacks, no can_* procs, nothing beyond nbdkit’s Tcl plugin', async () => {
    const p = await tclPlugin('ramdisk.tcl', { size: '4096' });
    for (const name of ['open', 'close', 'get_size', 'pread', 'pwrite', 'flush', 'trim', 'zero'] as const) {
      expect(p[name], name).toBeTypeOf('function');
    }
    for (const name of ['can_write', 'can_flush', 'can_trim', 'can_zero', 'can_fua', 'extents', 'cache', 'block_size'] as const) {
      expect(p[name], name).toBeUndefined();
    }
    expect(await p.thread_model!()).toBe(ThreadModel.SERIALIZE_ALL_REQUESTS);
  });

  it('filedisk.tcl has no trim, so the backend supplies nbdkit’s default', async () => {
    const p = await tclPlugin('filedisk.tcl', { file: '/dev/null' });
    expect(p.trim).toBeUndefined();
    expect(p.zero).toBeTypeOf('function');
  });

  it('extended.tcl: thread_model, modes, block size and extents', async () => {
    const p = await tclPlugin('extended.tcl', { size: '64k' });
    expect(await p.thread_model!()).toBe(ThreadModel.PARALLEL);
    const h = await p.open(false, connection('second'));
    expect(await p.get_size(h)).toBe(65536n);
    expect(await p.can_fua!(h)).toBe(2);
    expect(await p.can_cache!(h)).toBe(2);
    expect(await p.block_size!(h)).toEqual({ minimum: 1, preferred: 4096, maximum: 1048576 });
    expect(await p.export_description!(h)).toBe('export second, TLS 0');
    const extents: Array<[bigint, bigint, number]> = [];
    await p.extents!(h, 65536, 0n, 0, { add: (o, l, t) => void extents.push([o, l, t]) });
    expect(extents).toEqual([
      [0n, 32768n, 0],
      [32768n, 32768n, 3],
    ]);
    expect(await p.list_exports!(false, false)).toEqual([
      { name: 'first' },
      { name: 'second', description: 'the second export' },
    ]);
    await p.close!(h);
  });
});

describe('data', () => {
  it('pread fills the buffer with the bytes pwrite wrote', async () => {
    const p = await tclPlugin('ramdisk.tcl', { size: '8192' });
    const h = await p.open(false, connection());
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff);
    await p.pwrite!(h, data, 1000n, 0);
    const back = new Uint8Array(300);
    await p.pread(h, back, 1000n, 0);
    expect(Array.from(back)).toEqual(Array.from(data));
    await p.close!(h);
  });
});

describe('errors', () => {
  it('a Tcl error is reported with errorInfo and thrown as already reported, EIO', async () => {
    const host = testHost();
    const p = await tclPlugin('errors.tcl', {}, host);
    const h = await p.open(false, connection());
    const error = await Promise.resolve()
      .then(() => p.pread(h, new Uint8Array(512), 65536n, 0))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReportedPluginError);
    expect((error as PluginError).errno).toBe('EIO');
    expect(host.errors).toHaveLength(1);
    expect(host.errors[0]).toMatch(/^pread: cannot read at 65536\n/);
    expect(host.errors[0]).toContain('(procedure "check_read" line 3)');
    // The adapter's own call of the proc is not quoted back.
    expect(host.errors[0]).not.toContain('"pread h 512 65536"');
  });

  it('nbdkit set_error sets the errno of that call only', async () => {
    const p = await tclPlugin('errors.tcl');
    const h = await p.open(false, connection());
    const failed = await Promise.resolve()
      .then(() => p.pwrite!(h, new Uint8Array(1), 65536n, 0))
      .catch((e: unknown) => e);
    expect((failed as PluginError).errno).toBe('ENOSPC');
    const next = await Promise.resolve()
      .then(() => p.pread(h, new Uint8Array(1), 70000n, 0))
      .catch((e: unknown) => e);
    expect((next as PluginError).errno).toBe('EIO');
  });

  it('start-up errors are PluginErrors for the command line to print', async () => {
    const host = testHost();
    const p = await factory(host);
    loaded.push(p);
    await p.load!();
    await expect(Promise.resolve().then(() => p.config!('script', join(FIXTURES, 'missing-pread.tcl')))).rejects.toThrow(
      /one of the required callbacks 'plugin_open', 'get_size' or 'pread' is not defined/,
    );
    const q = await factory(host);
    loaded.push(q);
    await q.load!();
    await expect(Promise.resolve().then(() => q.config!('script', join(FIXTURES, 'load-error.tcl')))).rejects.toThrow(
      /^could not load Tcl script: .*load-error\.tcl: line 4: /,
    );
    expect(host.errors).toEqual([]);
  });
});

describe('dump_plugin and the nbdkit command', () => {
  it('dump_plugin returns the Tcl version and what the script printed', async () => {
    const p = await tclPlugin('ramdisk.tcl');
    expect(await p.dump_plugin!()).toEqual(['tcl_version=8.6', 'tcl_patch_level=8.6.13', 'ramdisk_tcl=1']);
  });

  it('debug, parse_size and export_name reach the host', async () => {
    const host: TestHost = testHost({ verbose: true });
    const p = await tclPlugin('extended.tcl', { size: '1M' }, host);
    const h = await p.open(true, connection('first'));
    expect(host.debugs).toContain('open export first readonly=1');
    expect(await p.get_size(h)).toBe(1048576n);
    await p.close!(h);
  });
});
