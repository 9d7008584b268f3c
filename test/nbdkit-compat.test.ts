/**
 * What nbdkit's own test suite and tools read from the server, compared with native nbdkit
 * 1.32.5 (the oracle): --version, --dump-config, --dump-plugin, --help, --short-options and
 * --long-options, FUA of Lua and Tcl scripts, NBD_OPT_LIST without list_exports, `sh -` in the
 * background, and the memory plugin's allocators.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine, SPECS, type OptionSpec } from '../src/host/options.js';
import { CLI, CLIENT_ENV, ROOT, run, runNbdkitTs, type RunResult } from './helpers/server.js';

/** The entry of the option table for `-x` or `--name`. */
function findOption(option: string): OptionSpec | undefined {
  if (option.startsWith('--')) return SPECS.find((s) => s.long === option.slice(2) || s.aliases?.includes(option.slice(2)));
  return SPECS.find((s) => s.short === option.slice(1));
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-compat-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** key=value lines as a map (the first of a repeated key wins, as `grep | head -1` reads it). */
function keys(result: RunResult): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of result.stdout.toString().split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !map.has(line.slice(0, eq))) map.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return map;
}

/** The same arguments under native nbdkit and nbdkit-ts. */
function both(args: string[]): Promise<[RunResult, RunResult]> {
  return Promise.all([run('nbdkit', args), runNbdkitTs(args)]);
}

describe('--version', () => {
  it('reports the nbdkit release followed, as native does, with nbdkit-ts in parentheses', async () => {
    const [native, ours] = await both(['--version']);
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(ours.code).toBe(0);
    expect(ours.stdout.toString()).toBe(`${native.stdout.toString().trim()} (nbdkit-ts ${version})\n`);
  });

  it('with a plugin adds its name and version, as native does', async () => {
    const [native, ours] = await both(['memory', '--version']);
    expect(ours.stdout.toString().split('\n')[1]).toBe(native.stdout.toString().split('\n')[1]);
    expect(ours.stdout.toString().split('\n')[1]).toBe('memory 1.32.5');
  });

  it('with a plugin that does not exist fails, as scripts probe for plugins that way', async () => {
    const [native, ours] = await both(['nosuchplugin', '--version']);
    expect(native.code).toBe(1);
    expect(ours.code).toBe(1);
    expect(ours.stdout.toString()).toBe('');
    expect(ours.stderr).toMatch(/^nbdkit-ts: error: unknown plugin "nosuchplugin"/);
  });
});

describe('--dump-config', () => {
  it("has nbdkit's keys, with the version of the nbdkit followed, and nbdkit-ts's version under its own key", async () => {
    const [native, ours] = await both(['--dump-config']);
    const n = keys(native);
    const o = keys(ours);
    for (const key of ['version', 'version_major', 'version_minor', 'tls', 'exit_with_parent', 'host_cpu', 'host_os']) {
      expect(o.get(key), key).toBe(n.get(key));
    }
    for (const key of ['binary', 'bindir', 'name', 'selinux', 'zstd']) expect(o.has(key), key).toBe(true);
    expect(o.get('nbdkit_ts_version')).toMatch(/^\d+\.\d+\.\d+/);
    expect(o.get('version_extra')).toBe(`nbdkit-ts ${o.get('nbdkit_ts_version')}`);
    // Sorted by key, as nbdkit prints them.
    const order = [...o.keys()];
    expect(order).toEqual([...order].sort());
  });

  it('answers at once, whatever follows it on the command line, as native', async () => {
    const [native, ours] = await both(['--dump-config', '--no-such-option']);
    expect(native.code).toBe(0);
    expect(ours.code).toBe(0);
  });
});

describe('--dump-plugin', () => {
  it("memory: nbdkit's keys and the plugin's own lines", async () => {
    const [native, ours] = await both(['memory', '--dump-plugin']);
    const n = keys(native);
    const o = keys(ours);
    for (const key of ['name', 'version', 'max_thread_model', 'thread_model', 'magic_config_key', 'mlock', 'zstd']) {
      expect(o.get(key), key).toBe(n.get(key));
    }
    expect(o.get('path')).toBeDefined();
    expect(o.get('api_version')).toBe('2');
  });

  it('together with -s fails and prints nothing on stdout, as native', async () => {
    const [native, ours] = await both(['--dump-plugin', '-s', 'null']);
    for (const result of [native, ours]) {
      expect(result.code).not.toBe(0);
      expect(result.stdout.length).toBe(0);
      expect(result.stderr).not.toBe('');
    }
  });
});

describe('--short-options, --long-options and --help', () => {
  it('list options one a line; every option listed is in --help and is accepted', async () => {
    const [short, long, help] = await Promise.all([
      runNbdkitTs(['--short-options']),
      runNbdkitTs(['--long-options']),
      runNbdkitTs(['--help']),
    ]);
    const shorts = short.stdout.toString().trim().split('\n');
    const longs = long.stdout.toString().trim().split('\n');
    const helpText = help.stdout.toString();
    expect(shorts).toEqual(expect.arrayContaining(['-v', '-V', '-U', '-s', '-r']));
    expect(longs).toEqual(expect.arrayContaining(['--help', '--version', '--dump-config', '--dump-plugin', '--exportname']));
    for (const option of shorts) {
      expect(option).toMatch(/^-[A-Za-z0-9]$/);
      expect(helpText, option).toContain(`${option},`);
    }
    for (const option of longs) {
      expect(option).toMatch(/^--[a-z0-9-]+$/);
      expect(helpText, option).toMatch(new RegExp(`${option}\\b`));
    }
    // nbdkit's own options are all known to nbdkit-ts: taken, or refused by name.
    const nativeLongs = (await run('nbdkit', ['--long-options'])).stdout.toString().trim().split('\n');
    const nativeShorts = (await run('nbdkit', ['--short-options'])).stdout.toString().trim().split('\n');
    for (const option of [...nativeLongs, ...nativeShorts]) {
      const spec = findOption(option);
      expect(spec, option).toBeDefined();
      if (spec!.unsupported) expect(() => parseCommandLine([option, 'x', 'null']), option).toThrow(/is not supported/);
    }
  });

  it('an option nbdkit has and nbdkit-ts does not take is refused by name', async () => {
    const result = await runNbdkitTs(['--filter=cow', 'memory', '1M']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^nbdkit-ts: error: --filter is not supported/);
  });
});

describe('FUA of Lua and Tcl scripts without flush', () => {
  const scripts: Array<[string, string, string]> = [
    [
      'lua',
      'noflush.lua',
      `function open(ro) return 1 end
function get_size(h) return 1048576 end
function pread(h, count, offset) return string.rep("\\0", count) end
function pwrite(h, buf, offset) end
`,
    ],
    [
      'tcl',
      'noflush.tcl',
      `proc plugin_open {readonly} { return 1 }
proc get_size {h} { return 1048576 }
proc pread {h count offset} { return [string repeat "\\0" $count] }
proc pwrite {h buf offset} { }
`,
    ],
  ];
  for (const [language, name, text] of scripts) {
    it(`${language}: FUA offered (emulated) and can_flush false, as native; a FUA write succeeds`, async () => {
      const script = join(work, name);
      writeFileSync(script, text);
      const check =
        'nbdinfo --json "$uri" | grep -E \'"can_(fua|flush)"\' && ' +
        'nbdsh -u "$uri" -c "h.pwrite(b\\"x\\" * 512, 0, nbd.CMD_FLAG_FUA); print(\\"written\\")"';
      const [native, ours] = await both(['-U', '-', language, script, '--run', check]);
      expect(native.stdout.toString()).toMatch(/"can_fua": true/);
      expect(ours.stdout.toString()).toBe(native.stdout.toString());
      expect(ours.code).toBe(0);
    });
  }
});

describe('NBD_OPT_LIST without list_exports', () => {
  it('a failing default_export gives an empty list, not an error, as native', async () => {
    const args = [
      '-U',
      '-',
      'eval',
      'default_export=echo no default >&2; exit 1',
      'get_size=echo 1M',
      'pread=exit 1',
      '--run',
      'nbdinfo --list --json "$uri"',
    ];
    const [native, ours] = await both(args);
    expect(native.code).toBe(0);
    expect(ours.code).toBe(0);
    const exports = (result: RunResult): unknown => (JSON.parse(result.stdout.toString()) as { exports: unknown }).exports;
    expect(exports(ours)).toEqual(exports(native));
    expect(exports(ours)).toEqual([]);
    expect(ours.stderr).toMatch(/no default/);
  });
});

describe('sh - in the background', () => {
  it('keeps the script read from stdin once the server has detached', async () => {
    const socket = join(work, 'inline.sock');
    const pidFile = join(work, 'inline.pid');
    const script = 'case "$1" in get_size) echo 3M ;; pread) dd if=/dev/zero count=$3 iflag=count_bytes 2>/dev/null ;; *) exit 2 ;; esac\n';
    const start = await runNbdkitTs(['-U', socket, '-P', pidFile, 'sh', '-'], { input: script });
    expect(start.code).toBe(0);
    try {
      const size = await run('nbdinfo', ['--size', `nbd+unix:///?socket=${socket}`]);
      expect(size.stdout.toString().trim()).toBe(String(3 * 1024 * 1024));
    } finally {
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
    }
  });
});

describe('memory allocator=', () => {
  const writes =
    'nbdsh -u "$uri" -c "h.pwrite(b\\"x\\" * 100, 40000); h.pwrite(b\\"y\\" * 100, 0); h.zero(32768, 0); ' +
    'h.pwrite(bytes(10), 70000); assert h.pread(100, 40000) == b\\"x\\" * 100" && nbdinfo --map "$uri"';
  for (const allocator of ['sparse', 'malloc', 'malloc,mlock=true', 'zstd']) {
    it(`${allocator}: the same data and extents map as native`, async () => {
      const [native, ours] = await both(['-U', '-', 'memory', '1M', `allocator=${allocator}`, '--run', writes]);
      expect(native.code).toBe(0);
      expect(ours.stderr).toBe('');
      expect(ours.stdout.toString()).toBe(native.stdout.toString());
    });
  }

  for (const bad of ['bogus', 'sparse,x=1', 'malloc,foo=1', 'malloc,mlock=maybe', 'zstd,level=3']) {
    it(`allocator=${bad} is refused with nbdkit's message`, async () => {
      const [native, ours] = await both(['-U', '-', 'memory', '1M', `allocator=${bad}`, '--run', 'true']);
      expect(native.code).toBe(1);
      expect(ours.code).toBe(1);
      // (nbdkit then adds a second line naming the whole allocator= value.)
      const first = (text: string): string => text.split('\n')[0].replace(/^nbdkit(-ts)?: error: /, '');
      expect(first(ours.stderr)).toBe(first(native.stderr));
    });
  }
});

describe('-4 and -6', () => {
  it('listen on one address family only', async () => {
    for (const [flag, host] of [['-4', '127.0.0.1'], ['-6', '::1']] as const) {
      const port = String(20000 + Math.floor(Math.random() * 20000));
      const child = spawn(process.execPath, [CLI, flag, '-f', '-p', port, 'memory', '1M'], { env: CLIENT_ENV, stdio: 'ignore' });
      try {
        const uri = `nbd://${host.includes(':') ? `[${host}]` : host}:${port}`;
        let result: RunResult | undefined;
        for (let i = 0; i < 100; i++) {
          result = await run('nbdinfo', ['--size', uri]);
          if (result.code === 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(result?.stdout.toString().trim(), flag).toBe('1048576');
        const other = flag === '-4' ? `nbd://[::1]:${port}` : `nbd://127.0.0.1:${port}`;
        expect((await run('nbdinfo', ['--size', other])).code, `${flag} other family`).not.toBe(0);
      } finally {
        child.kill('SIGTERM');
      }
    }
  });
});
