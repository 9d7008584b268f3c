/**
 * The Lua adapter driven directly through its Plugin object (no server): argument passing,
 * byte transparency, results, errors and errnos, the io library on host files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import luaFactory from '../src/languages/lua/index.js';
import { Flag, PluginError, ReportedPluginError, type ExtentSink, type Plugin, type PluginHost } from '../src/host/plugin.js';
import { parseSize } from '../src/host/size.js';

const FIXTURES = resolve(__dirname, 'fixtures', 'lua');
const fixture = (name: string): string => join(FIXTURES, name);
const CONNECTION = { exportName: 'exp1', tls: false, readonly: false };

interface TestHost extends PluginHost {
  debugs: string[];
  shutdowns: number;
}

function testHost(): TestHost {
  const host: TestHost = {
    debugs: [],
    shutdowns: 0,
    debug: (m) => void host.debugs.push(m),
    error: () => undefined,
    parseSize: (t) => parseSize(t),
    shutdown: () => void host.shutdowns++,
    readonly: false,
    verbose: false,
    stdioSafe: true,
  };
  return host;
}

const loaded: Plugin[] = [];

/** The adapter's factory, remembering each plugin so that it is unloaded after the test. */
async function factory(host: PluginHost): Promise<Plugin> {
  const plugin = await luaFactory(host);
  loaded.push(plugin);
  return plugin;
}

afterEach(async () => {
  for (const plugin of loaded.splice(0)) await plugin.unload?.();
});

async function load(script: string, params: Array<[string, string]> = [], host = testHost()): Promise<Plugin> {
  const plugin = await factory(host);
  await plugin.config!('script', script);
  for (const [k, v] of params) await plugin.config!(k, v);
  await plugin.config_complete!();
  return plugin;
}

/**
 * The PluginError a callback fails with (callbacks may throw synchronously): already printed
 * (ReportedPluginError) when serving, left to the command line to print during start-up.
 */
async function failure(call: () => unknown, reported = true): Promise<PluginError> {
  try {
    await call();
  } catch (e) {
    expect(e).toBeInstanceOf(reported ? ReportedPluginError : PluginError);
    if (!reported) expect(e).not.toBeInstanceOf(ReportedPluginError);
    return e as PluginError;
  }
  throw new Error('expected a failure');
}

async function readText(plugin: Plugin, h: unknown, count: number, offset: bigint, flags = 0): Promise<string> {
  const buf = new Uint8Array(count);
  await plugin.pread(h, buf, offset, flags);
  return Buffer.from(buf).toString('latin1').trimEnd();
}

const scratch = mkdtempSync(join(tmpdir(), 'lua-adapter-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('lua adapter: callbacks', () => {
  it('passes the seed arguments plus trailing flags, and keeps the handle until close', async () => {
    const plugin = await load(fixture('callbacks.lua'), [['k', 'v']]);
    expect(await plugin.thread_model!()).toBe(3);
    const h = await plugin.open(true, CONNECTION);
    expect(await readText(plugin, h, 64, 4096n, Flag.REQ_ONE)).toBe('pread 64 4096 4 integer');
    await plugin.pwrite!(h, new Uint8Array(10), 1n << 40n, Flag.FUA);
    await plugin.flush!(h, 0);
    await plugin.trim!(h, 512, 1024n, Flag.FUA);
    await plugin.zero!(h, 4096, 8192n, Flag.MAY_TRIM | Flag.FAST_ZERO);
    await plugin.zero!(h, 100, 0n, 0);
    await plugin.cache!(h, 16, 32n, 0);
    expect((await readText(plugin, h, 200, 0n)).split('\n')).toEqual([
      'pwrite 10 1099511627776 2',
      'flush 0',
      'trim 512 1024 2',
      'zero 4096 8192 true 9',
      'zero 100 0 false 0',
      'cache 16 32 0',
    ]);
    await plugin.close!(h);
  });

  it('converts every optional result', async () => {
    const plugin = await load(fixture('callbacks.lua'));
    const h = await plugin.open(false, CONNECTION);
    expect(await plugin.get_size(h)).toBe(1048576n);
    expect(await plugin.block_size!(h)).toEqual({ minimum: 512, preferred: 4096, maximum: 1048576 });
    for (const name of ['is_rotational', 'can_write', 'can_flush', 'can_trim', 'can_zero', 'can_fast_zero', 'can_multi_conn', 'can_extents'] as const) {
      expect(await plugin[name]!(h)).toBe(true);
    }
    expect(await plugin.can_fua!(h)).toBe(2);
    expect(await plugin.can_cache!(h)).toBe(2);
    expect(await plugin.export_description!(h)).toBe('export exp1');
    expect(await plugin.default_export!(false, false)).toBe('plain');
    expect(await plugin.list_exports!(false, false)).toEqual([
      { name: 'plain' },
      { name: 'described', description: 'the second export' },
      { name: 'positional', description: 'third' },
    ]);
    const added: Array<[bigint, bigint, number]> = [];
    const sink: ExtentSink = { add: (o, l, t) => void added.push([o, l, t]) };
    await plugin.extents!(h, 1048576, 0n, 0, sink);
    expect(added).toEqual([
      [0n, 65536n, 0],
      [65536n, 65536n, 3],
      [131072n, 917504n, 0],
    ]);
  });

  it('exposes only the optional callbacks the script defines', async () => {
    const plugin = await load(fixture('string-disk.lua'));
    expect(plugin.pwrite).toBeTypeOf('function');
    for (const name of ['trim', 'zero', 'can_write', 'extents', 'can_fua', 'cache', 'list_exports'] as const) {
      expect(plugin[name], name).toBeUndefined();
    }
    // As nbdkit's Lua plugin: a flush that does nothing, and can_flush false, so that FUA is
    // offered (emulated by that flush) to writable scripts.
    expect(await plugin.flush!(undefined, 0)).toBeUndefined();
    expect(await plugin.can_flush!(undefined)).toBe(false);
    // SERIALIZE_ALL_REQUESTS unless the script says otherwise.
    expect(await plugin.thread_model!()).toBe(1);
  });

  it('dump_plugin appends the lines the script prints', async () => {
    const plugin = await factory(testHost());
    await plugin.config!('script', fixture('callbacks.lua'));
    const lines = await plugin.dump_plugin!();
    expect(lines[0]).toMatch(/^lua_version=5\.4/);
    expect(lines.slice(1)).toEqual(['callbacks_fixture=1', 'parse_size_1M=1048576']);
  });

  it('offers the nbdkit table: debug, parse_size, export_name, shutdown, set_error', async () => {
    const host = testHost();
    const plugin = await factory(host);
    const script = join(scratch, 'nbdkit-table.lua');
    writeFileSync(
      script,
      `function open (ro) nbdkit.debug ("opening " .. nbdkit.export_name ()) return nbdkit.export_name () end
       function get_size (h) return nbdkit.parse_size ("2G") + nbdkit.parse_size ("1k") end
       function pread (h, c, o) nbdkit.shutdown () return h .. string.rep (".", c) end
       function can_write (h) local ok, e = pcall (nbdkit.parse_size, "lots") nbdkit.debug (e) return false end`,
    );
    await plugin.config!('script', script);
    await plugin.config_complete!();
    const h = await plugin.open(false, { exportName: 'named', tls: false, readonly: false });
    expect(await plugin.get_size(h)).toBe(2147484672n);
    expect(await readText(plugin, h, 8, 0n)).toBe('named...');
    expect(host.shutdowns).toBe(1);
    expect(await plugin.can_write!(h)).toBe(false);
    expect(host.debugs[0]).toBe('opening named');
    expect(host.debugs[1]).toMatch(/could not parse size string \(lots\)/);
  });
});

describe('lua adapter: bytes', () => {
  it('moves every byte value unchanged in both directions', async () => {
    const plugin = await load(fixture('bytes.lua'));
    const h = await plugin.open(false, CONNECTION);
    const buf = new Uint8Array(1024);
    await plugin.pread(h, buf, 0n, 0);
    for (let i = 0; i < buf.length; i++) expect(buf[i]).toBe(i % 256);
    const reversed = new Uint8Array(512).map((_, i) => 255 - ((i + 100) % 256));
    await plugin.pwrite!(h, reversed, 100n, 0);
    const back = new Uint8Array(512);
    await plugin.pread(h, back, 100n, 0);
    expect(Buffer.from(back).equals(Buffer.from(reversed))).toBe(true);
  });

  it('passes strings as UTF-8 both ways', async () => {
    const plugin = await load(fixture('callbacks.lua'), [['name', 'dé€jà']]);
    await plugin.preconnect!(true);
    const h = await plugin.open(false, { exportName: 'ünï', tls: false, readonly: false });
    const buf = new Uint8Array(200);
    await plugin.pread(h, buf, 1n, 0);
    expect(Buffer.from(buf).toString('utf8').trimEnd().split('\n')).toEqual([
      'config name=dé€jà',
      'config_complete',
      'preconnect true',
      'open false ünï',
    ]);
    expect(await plugin.export_description!(h)).toBe('export ünï');
  });
});

describe('lua adapter: errors', () => {
  it('turns error() into a reported EIO failure naming callback, script and line', async () => {
    const plugin = await load(fixture('errors.lua'));
    const h = await plugin.open(false, CONNECTION);
    const e = await failure(() => plugin.pread(h, new Uint8Array(16), 4096n, 0));
    expect(e.message).toBe(`pread: ${fixture('errors.lua')}:12: pread refused at 4096`);
    expect(e.errno).toBe('EIO');
    // The interpreter is still usable afterwards.
    await plugin.pread(h, new Uint8Array(16), 0n, 0);
  });

  it('uses the errno chosen with nbdkit.set_error, by name or number', async () => {
    const plugin = await load(fixture('errors.lua'));
    const h = await plugin.open(false, CONNECTION);
    const full = await failure(() => plugin.pwrite!(h, new Uint8Array(4), 0n, 0));
    expect(full.errno).toBe('ENOSPC');
    expect(full.message).toMatch(/^pwrite: .*errors\.lua:19: disk full$/);
    const trim = await failure(() => plugin.trim!(h, 4, 0n, 0));
    expect(trim.errno).toBe('EPERM');
    expect(trim.message).toMatch(/^trim: .*errors\.lua:24: trim not permitted$/);
    // set_error applies to the failing call only.
    expect((await failure(() => plugin.pread(h, new Uint8Array(1), 4096n, 0))).errno).toBe('EIO');
  });

  it('describes non-string errors, runtime faults and bad results', async () => {
    const plugin = await load(fixture('errors.lua'));
    const h = await plugin.open(false, CONNECTION);
    expect((await failure(() => plugin.zero!(h, 1, 0n, 0))).message).toBe('zero: (error object is a table value)');
    expect((await failure(() => plugin.flush!(h, 0))).message).toMatch(/^flush: .*errors\.lua:33: attempt to index a nil value \(local 't'\)$/);
  });

  it('rejects results of the wrong type', async () => {
    const script = join(scratch, 'bad-results.lua');
    writeFileSync(
      script,
      `function open (ro) return 1 end
       function get_size (h) return "big" end
       function pread (h, c, o) return {} end
       function can_write (h) return 1 end
       function can_fua (h) return "native" end
       function list_exports (ro, tls) return "one" end`,
    );
    const plugin = await load(script);
    const h = await plugin.open(false, CONNECTION);
    expect((await failure(() => plugin.get_size(h))).message).toBe('get_size: cannot convert returned value to an integer');
    expect((await failure(() => plugin.pread(h, new Uint8Array(1), 0n, 0))).message).toBe('pread: return value is not a string');
    expect((await failure(() => plugin.can_write!(h))).message).toBe('can_write: return value is not a boolean');
    expect((await failure(() => plugin.can_fua!(h))).message).toBe('can_fua: cannot convert returned value to an integer');
    expect((await failure(() => plugin.list_exports!(false, false))).message).toBe('list_exports: return value is not a table');
  });

  it('rejects a short pread result', async () => {
    const plugin = await load(fixture('string-disk.lua'));
    const h = await plugin.open(false, CONNECTION);
    const e = await failure(() => plugin.pread(h, new Uint8Array(16), 1048576n - 8n, 0));
    expect(e.message).toBe('pread: returned string length < count bytes');
  });

  it('fails at start-up on syntax errors, load errors, missing callbacks and bad parameters', async () => {
    const cases: Array<[string, RegExp]> = [
      ['syntax-error.lua', /^could not parse Lua script .*syntax-error\.lua:4: '\)' expected near 'return'$/],
      ['load-error.lua', /^could not run Lua script: .*load-error\.lua:4: stopped at load$/],
      ['missing-pread.lua', /missing-pread\.lua: one of the required callbacks 'open', 'get_size' or 'pread' is not defined/],
      ['no-such-script.lua', /^could not parse Lua script cannot open .*no-such-script\.lua: No such file or directory$/],
    ];
    for (const [name, message] of cases) {
      const plugin = await factory(testHost());
      const e = await failure(() => plugin.config!('script', fixture(name)), false);
      expect(e.message).toMatch(message);
    }
    const noConfig = await factory(testHost());
    await noConfig.config!('script', fixture('string-disk.lua'));
    expect((await failure(() => noConfig.config!('size', '1'), false)).message).toMatch(/this plugin does not need command line configuration$/);
    const notFirst = await factory(testHost());
    expect((await failure(() => notFirst.config!('file', 'x'), false)).message).toBe('the first parameter must be script=/path/to/script.lua');
    const badConfig = await factory(testHost());
    await badConfig.config!('script', fixture('file-disk.lua'));
    expect((await failure(() => badConfig.config!('size', '1'), false)).message).toMatch(/^config: .*file-disk\.lua:\d+: unknown parameter size=1$/);
    expect((await failure(() => badConfig.config_complete!(), false)).message).toMatch(/^config_complete: .*file parameter missing$/);
  });

  it('skips a #! line and keeps line numbers', async () => {
    const plugin = await load(fixture('shebang.lua'));
    const h = await plugin.open(false, CONNECTION);
    expect((await failure(() => plugin.pread(h, new Uint8Array(1), 0n, 0))).message).toMatch(/shebang\.lua:5: line six$/);
  });
});

describe('lua adapter: io on host files', () => {
  it('passes the io checks script', async () => {
    const dir = mkdtempSync(join(scratch, 'io-'));
    await load(fixture('io-checks.lua'), [['dir', dir]]);
  });
});
