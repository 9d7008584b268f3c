/**
 * The file plugin's other modes and parameters (nbdkit-file-plugin(1)): dir= serves a
 * directory's files as exports, fd= and dirfd= serve inherited descriptors, cache=none keeps the
 * file out of the page cache, fadvise= hints; each compared with native nbdkit where it has it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, CLIENT_ENV, run, runNbdkitTs, type RunResult } from './helpers/server.js';

let work: string;
let dir: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-file-modes-'));
  dir = join(work, 'disks');
  mkdirSync(dir);
  writeFileSync(join(dir, 'a.img'), Buffer.alloc(65536, 'a'));
  writeFileSync(join(dir, 'b.img'), Buffer.alloc(131072, 'b'));
  mkdirSync(join(dir, 'subdir'));
  symlinkSync('a.img', join(dir, 'link'));
  symlinkSync('nowhere', join(dir, 'dangling'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function both(args: string[]): Promise<[RunResult, RunResult]> {
  return Promise.all([run('nbdkit', args), runNbdkitTs(args)]);
}

/** stderr without the program's name and the private directories of the servers. */
function message(result: RunResult): string {
  return result.stderr.replace(/^nbdkit(-ts)?: (file\[\d+\]: )?error: /gm, '').trim();
}

describe('dir=', () => {
  it('lists the regular files (links followed) as exports, as native', async () => {
    const list = 'nbdinfo --list --json "$uri"';
    const [native, ours] = await both(['-U', '-', 'file', `dir=${dir}`, '--run', list]);
    const names = (result: RunResult): string[] =>
      (JSON.parse(result.stdout.toString()) as { exports: Array<{ 'export-name': string; 'export-size': number }> }).exports
        .map((e) => `${e['export-name']}:${e['export-size']}`)
        .sort();
    expect(native.code).toBe(0);
    expect(names(ours)).toEqual(names(native));
    expect(names(ours)).toEqual(['a.img:65536', 'b.img:131072', 'link:65536']);
  });

  it('serves the file the export name names, and refuses the default export and names with /', async () => {
    const check =
      'nbdsh -u "nbd+unix:///b.img?socket=$unixsocket" -c "print(h.get_size(), h.pread(4, 0))"; ' +
      'nbdinfo --size "$uri" 2>/dev/null || echo default refused; ' +
      'nbdinfo --size "nbd+unix:///subdir%2Fx?socket=$unixsocket" 2>/dev/null || echo slash refused';
    const [native, ours] = await both(['-U', '-', 'file', `dir=${dir}`, '--run', check]);
    expect(ours.stdout.toString()).toBe(native.stdout.toString());
    expect(ours.stdout.toString()).toBe("131072 bytearray(b'bbbb')\ndefault refused\nslash refused\n");
  });

  it("start-up mistakes give nbdkit's messages", async () => {
    const cases = [
      ['file', dir],
      ['file', `dir=${join(dir, 'a.img')}`],
      ['file', 'fadvise=bogus', join(dir, 'a.img')],
      ['file', 'cache=bogus', join(dir, 'a.img')],
    ];
    for (const args of cases) {
      const [native, ours] = await both(['-U', '-', ...args, '--run', 'true']);
      expect(ours.code, args.join(' ')).toBe(1);
      expect(message(ours), args.join(' ')).toBe(message(native));
    }
  });
});

describe('fd= and dirfd= (nbdkit 1.34)', () => {
  /** Start nbdkit-ts in the background (no -f) with `fd` open as descriptor 5; resolves to its pid file. */
  async function startWithDescriptor(args: string[], fd: number): Promise<{ socket: string; stop: () => void }> {
    const socket = join(work, `fd-${Date.now()}.sock`);
    const pidFile = `${socket}.pid`;
    const child = spawn(process.execPath, [CLI, '-U', socket, '-P', pidFile, ...args], {
      env: CLIENT_ENV,
      stdio: ['ignore', 'ignore', 'pipe', 'ignore', 'ignore', fd],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    return { socket, stop: () => existsSync(pidFile) && process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM') };
  }

  it('fd=: serves the file open on the descriptor, also once the server has gone to the background', async () => {
    const fd = openSync(join(dir, 'b.img'), 'r+');
    try {
      const server = await startWithDescriptor(['file', 'fd=5'], fd);
      try {
        const out = await run('/usr/bin/python3', [
          '-c',
          `import nbd; h = nbd.NBD(); h.connect_unix(${JSON.stringify(server.socket)}); print(h.get_size(), h.is_read_only(), h.pread(2, 0))`,
        ]);
        expect(out.stdout.toString()).toBe("131072 False bytearray(b'bb')\n");
      } finally {
        server.stop();
      }
    } finally {
      closeSync(fd);
    }
  });

  it('fd=: a descriptor open read-only gives a read-only export', async () => {
    const fd = openSync(join(dir, 'a.img'), 'r');
    try {
      const server = await startWithDescriptor(['file', 'fd=5'], fd);
      try {
        const info = await run('nbdinfo', ['--json', `nbd+unix:///?socket=${server.socket}`]);
        expect(info.stdout.toString()).toMatch(/"is_read_only": true/);
      } finally {
        server.stop();
      }
    } finally {
      closeSync(fd);
    }
  });

  it('dirfd=: the files of the directory open on the descriptor', async () => {
    const fd = openSync(dir, 'r');
    try {
      const server = await startWithDescriptor(['file', 'dirfd=5'], fd);
      try {
        const list = await run('nbdinfo', ['--list', `nbd+unix:///?socket=${server.socket}`]);
        expect(list.stdout.toString().match(/export="[^"]*"/g)?.sort()).toEqual(['export="a.img"', 'export="b.img"', 'export="link"']);
      } finally {
        server.stop();
      }
    } finally {
      closeSync(fd);
    }
  });

  it('refuses descriptors 0-2 and a descriptor that is not a file', async () => {
    expect((await runNbdkitTs(['-f', '-U', '-', 'file', 'fd=1', '--run', 'true'])).stderr).toMatch(/fd must be > 2/);
    expect((await runNbdkitTs(['-f', '-U', '-', 'file', 'fd=99', '--run', 'true'])).stderr).toMatch(
      /fd is not regular or block device: 99/,
    );
  });
});

describe('cache= and fadvise=', () => {
  it('cache=none: what is read or written does not stay in the page cache, as native', async () => {
    const disk = join(work, 'cache.img');
    const source = join(work, 'source.img');
    writeFileSync(source, Buffer.alloc(16 << 20, 7));
    writeFileSync(disk, Buffer.alloc(16 << 20));
    // fincore's RES column: how much of the file is in the page cache.
    const resident = async (): Promise<number> =>
      Number((await run('fincore', ['-b', '-n', '-o', 'RES', disk])).stdout.toString().trim());
    for (const native of [true, false]) {
      const program = native ? run.bind(null, 'nbdkit') : runNbdkitTs;
      const write = await program([
        '-U', '-', 'file', disk, 'cache=none', 'fadvise=sequential',
        '--run', `nbdcopy --connections=1 --request-size=262144 ${source} "$uri"`,
      ]);
      expect(write.code, write.stderr).toBe(0);
      // nbdkit drops each write a few writes later: only the last ones remain (2 to 4 MiB seen
      // natively), where without cache=none all 16 MiB would.
      expect(await resident(), `${native ? 'native' : 'nbdkit-ts'} after writes`).toBeLessThanOrEqual(6 << 20);
      await run('cat', [disk]); // all 16 MiB in the page cache now
      const read = await program(['-U', '-', 'file', disk, 'cache=none', '--run', 'nbdcopy "$uri" - | md5sum']);
      expect(read.stdout.toString()).toBe((await run('md5sum', ['-'], { input: readFileSync(source) })).stdout.toString());
      // Every page read was dropped (natively up to 2 MiB stay, read ahead of the last reads).
      expect(await resident(), `${native ? 'native' : 'nbdkit-ts'} after reads`).toBeLessThanOrEqual(4 << 20);
    }
  });
});
