/**
 * The package as a user gets it: `npm pack`, then `npm install -g` of the tarball into a fresh
 * prefix, run from a directory outside the work tree with a PATH and environment that lead to
 * nothing of the work tree (no node_modules, no NODE_PATH), serving disks to real clients.
 * Also: the prebuilt fs-native addon in the package matches the C sources it claims to be from.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run } from './helpers/server.js';

const NATIVE = join(ROOT, 'runtimes', 'fs-native');
const PREBUILT = join(NATIVE, 'prebuilds', 'linux-x64');

describe('the prebuilt fs-native addon', () => {
  it('was built from the sources in the tree (run `npm run build:native` after changing them)', () => {
    const recorded = new Map(
      readFileSync(join(PREBUILT, 'SOURCES.sha256'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => {
          const [hash, path] = line.split(/\s+\*?/);
          return [path, hash] as const;
        }),
    );
    const sources = ['binding.gyp', ...readdirSync(join(NATIVE, 'src')).map((name) => `src/${name}`)].sort();
    expect([...recorded.keys()].sort()).toEqual(sources);
    for (const path of sources) {
      const hash = createHash('sha256').update(readFileSync(join(NATIVE, path))).digest('hex');
      expect(hash, `${path} changed since the prebuilt addon was built`).toBe(recorded.get(path));
    }
    expect(existsSync(join(PREBUILT, 'fs_native.napi.glibc.node'))).toBe(true);
  });
});

describe('npm pack, then npm install -g into a fresh prefix', () => {
  let work: string;
  let prefix: string;
  let installed: string;
  /** An environment that knows nothing of the work tree. */
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-package-'));
    prefix = join(work, 'prefix');
    installed = join(prefix, 'lib', 'node_modules', 'nbdkit-ts');
    const base: NodeJS.ProcessEnv = { HOME: work, XDG_CACHE_HOME: join(work, 'cache'), LANG: 'C.UTF-8' };
    // npm's own cache and configuration stay the machine's (the registry's packages come from there).
    const npmEnv = { ...process.env, NODE_PATH: '', npm_config_node_gyp: '/bin/false' };
    // dist/ is built by `npm test` before the tests (and by `npm run build`): no prepare here.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, env: npmEnv, timeoutMs: 120_000 });
    expect(pack.code, pack.stderr).toBe(0);
    const tarball = readdirSync(work).find((name) => /^nbdkit-ts-.*\.tgz$/.test(name));
    expect(tarball).toBeDefined();
    // A build at install time would fail (npm_config_node_gyp is /bin/false): the prebuilt
    // addon must be all it needs.
    const install = await run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball!)],
      { cwd: work, env: npmEnv, timeoutMs: 300_000 },
    );
    expect(install.code, install.stderr).toBe(0);
    env = { ...base, PATH: `${join(prefix, 'bin')}:/usr/bin:/bin` };
  }, 400_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const nbdkitTs = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    run(join(prefix, 'bin', 'nbdkit-ts'), args, { cwd: work, env: { ...env, ...extraEnv }, timeoutMs: 120_000 });

  it('installs the command, the runtimes and the prebuilt addon, and builds nothing', () => {
    expect(existsSync(join(installed, 'runtimes', 'fs-native', 'prebuilds', 'linux-x64', 'fs_native.napi.glibc.node'))).toBe(true);
    expect(existsSync(join(installed, 'runtimes', 'fs-native', 'build'))).toBe(false);
    expect(existsSync(join(installed, 'runtimes', 'wasm-tcl', 'wasm', 'tcl.wasm'))).toBe(true);
    // Nothing of the development tree comes along.
    expect(existsSync(join(installed, 'test'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'vitest'))).toBe(false);
  });

  it('says in --dump-config that the prebuilt addon is in use, and none with NBDKIT_TS_NATIVE=0', async () => {
    const config = await nbdkitTs(['--dump-config']);
    expect(config.code, config.stderr).toBe(0);
    expect(config.stdout.toString()).toMatch(/^fs_native=prebuilt$/m);
    const without = await nbdkitTs(['--dump-config'], { NBDKIT_TS_NATIVE: '0' });
    expect(without.stdout.toString()).toMatch(/^fs_native=none$/m);
  });

  it('serves memory 1G to nbdinfo', async () => {
    const result = await nbdkitTs(['-U', '-', 'memory', '1G', '--run', 'nbdinfo --size "$uri"']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('1073741824');
  });

  it.each([
    ['lua', 'examples/lua/ramdisk.lua'],
    ['python', 'examples/python/ramdisk.py'],
    ['tcl', 'examples/tcl/ramdisk.tcl'],
  ])('serves the %s example plugin shipped in the package, written and read back by nbdsh', async (language, script) => {
    const check =
      "nbdsh -u \"$uri\" -c 'h.pwrite(b\"package\" * 1000, 12345); assert h.pread(7000, 12345) == b\"package\" * 1000; print(h.get_size())'";
    const result = await nbdkitTs(['-U', '-', language, join(installed, script), 'size=8M', '--run', check]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('8388608');
  });

  it('uses the addon for the file plugin (trim), and serves without it when NBDKIT_TS_NATIVE=0', async () => {
    const disk = join(work, 'disk.img');
    writeFileSync(disk, Buffer.alloc(1 << 20, 1));
    const canTrim = ['-U', '-', 'file', disk, '--run', 'nbdinfo --can trim "$uri"'];
    expect((await nbdkitTs(canTrim)).code).toBe(0);
    expect((await nbdkitTs(canTrim, { NBDKIT_TS_NATIVE: '0' })).code).toBe(2);
    const read = await nbdkitTs(['-U', '-', 'file', disk, '--run', 'nbdcopy "$uri" -'], { NBDKIT_TS_NATIVE: '0' });
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.equals(Buffer.alloc(1 << 20, 1))).toBe(true);
  });
});
