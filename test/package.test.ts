/**
 * The package as a user gets it: `npm pack`, then `npm install -g` of the tarball into a fresh
 * prefix, run from a directory outside the work tree with a PATH and environment that lead to
 * nothing of the work tree (no node_modules, no NODE_PATH), serving disks to real clients.
 * Also: the prebuilt fs-native addon in the package matches the C sources it claims to be from.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, run } from './helpers/server.js';

const NATIVE = join(ROOT, 'runtimes', 'fs-native');

describe('the prebuilt fs-native addons', () => {
  it.each(['linux-x64', 'linux-arm64'])('%s was built from the sources in the tree (run `npm run build:native` after changing them)', (target) => {
    const prebuilt = join(NATIVE, 'prebuilds', target);
    const recorded = new Map(
      readFileSync(join(prebuilt, 'SOURCES.sha256'), 'utf8')
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
      expect(hash, `${path} changed since the ${target} addon was built`).toBe(recorded.get(path));
    }
    // An ELF shared object for that machine (e_machine: 62 x86-64, 183 AArch64).
    const elf = readFileSync(join(prebuilt, 'fs_native.napi.glibc.node'));
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf.readUInt16LE(18)).toBe(target === 'linux-x64' ? 62 : 183);
  });
});

// Generous timeouts: the machine is shared, and each test starts Node (and Python, tsc) from scratch.
describe('npm pack, then npm install -g into a fresh prefix', { timeout: 240_000 }, () => {
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
    run(join(prefix, 'bin', 'nbdkit-ts'), args, { cwd: work, env: { ...env, ...extraEnv }, timeoutMs: 240_000 });

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
    // Only a local build allowed, and there is none.
    const builtOnly = await nbdkitTs(['--dump-config'], { NBDKIT_TS_NATIVE: 'built' });
    expect(builtOnly.stdout.toString()).toMatch(/^fs_native=none$/m);
  });

  it('installs the manual page where man finds it', async () => {
    expect(existsSync(join(prefix, 'share', 'man', 'man1', 'nbdkit-ts.1'))).toBe(true);
    const page = await run('man', ['-M', join(prefix, 'share', 'man'), '-P', 'cat', 'nbdkit-ts'], { cwd: work, env: { ...env, MANWIDTH: '80' } });
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout.toString()).toMatch(/SYNOPSIS[\s\S]*--mask-handshake[\s\S]*ENVIRONMENT[\s\S]*LISTEN_FDS/);
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
    // Python's first start in a fresh cache prepares its snapshot: seconds, more on a loaded machine.
  }, 300_000);

  it("gives a drop-in nbdkit, off PATH until asked for, that libnbd starts by socket activation", async () => {
    expect(existsSync(join(prefix, 'bin', 'nbdkit'))).toBe(false);
    const script = "h.connect_systemd_socket_activation(['nbdkit', 'memory', '7M']); print(h.get_size())";
    const shimEnv = { ...env, PATH: `${join(installed, 'shim')}:${env.PATH}` };
    const result = await run('nbdsh', ['-c', script], { cwd: work, env: shimEnv });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString().trim()).toBe('7340032');
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

  it('publishes its types: the TypeScript example type-checks against the installed package and serves', async () => {
    // A project of the user's: nbdkit-ts in its node_modules (the installed copy), TypeScript
    // and @types/node from the work tree's own.
    const app = join(work, 'app');
    mkdirSync(join(app, 'node_modules'), { recursive: true });
    symlinkSync(installed, join(app, 'node_modules', 'nbdkit-ts'));
    copyFileSync(join(ROOT, 'examples', 'api', 'ramdisk-server.ts'), join(app, 'ramdisk-server.ts'));
    // A plugin of the wrong shape must not type-check: the types say something.
    writeFileSync(
      join(app, 'wrong.ts'),
      "import type { Plugin } from 'nbdkit-ts';\nexport const p: Plugin = { open: () => 1, get_size: () => 'big', pread: () => undefined };\n",
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = ['--module', 'nodenext', '--target', 'es2022', '--strict', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types')];
    // One compilation of both (it still emits the good one): errors in wrong.ts only.
    const compiled = await run(process.execPath, [tsc, ...flags, 'ramdisk-server.ts', 'wrong.ts'], { cwd: app, env, timeoutMs: 240_000 });
    const errors = compiled.stdout.toString().trim().split('\n').filter((line) => /error TS/.test(line));
    expect(errors.length, compiled.stdout.toString()).toBeGreaterThan(0);
    expect(errors.filter((line) => !line.startsWith('wrong.ts')), compiled.stdout.toString()).toEqual([]);
    expect(compiled.stdout.toString()).toMatch(/'string' is not assignable/);

    const server = spawn(process.execPath, [join(app, 'ramdisk-server.js')], { cwd: app, env, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
    try {
      const uri = await new Promise<string>((resolve, reject) => {
        server.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        void exited.then((code) => reject(new Error(`the example exited (${code})`)));
      });
      const label = await run('nbdsh', ['-u', uri, '-c', 'print(h.pread(22, 0).decode(), h.get_size())'], { env });
      expect(label.stdout.toString().trim()).toBe('nbdkit-ts example disk 67108864');
    } finally {
      server.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  }, 300_000);

  // Last: it takes the prebuilt binary away.
  it('builds the addon at install where no prebuilt one fits, and uses that build', async () => {
    const native = join(installed, 'runtimes', 'fs-native');
    renameSync(join(native, 'prebuilds'), join(native, 'prebuilds.away'));
    // The package's own install script, as npm runs it (with npm's node-gyp and a compiler here).
    const install = await run('npm', ['run', 'install'], { cwd: installed, env: { ...process.env, NODE_PATH: '' }, timeoutMs: 300_000 });
    expect(install.code, install.stderr).toBe(0);
    expect(existsSync(join(native, 'build', 'Release', 'fs_native.node'))).toBe(true);
    const config = await nbdkitTs(['--dump-config']);
    expect(config.stdout.toString()).toMatch(/^fs_native=built$/m);
    const disk = join(work, 'built.img');
    writeFileSync(disk, Buffer.alloc(1 << 16));
    expect((await nbdkitTs(['-U', '-', 'file', disk, '--run', 'nbdinfo --can trim "$uri"'])).code).toBe(0);
  }, 400_000);
});
