/**
 * The command line of nbdkit(1): mistakes give one line and exit 1 before anything listens;
 * --run, -P and background mode behave as nbdkit's do.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, CLIENT_ENV, run, runNbdkitTs } from './helpers/server.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nbdkit-ts-cli-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('mistakes on the command line', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['an unknown plugin', ['nosuchplugin'], /^nbdkit-ts: error: unknown plugin "nosuchplugin"/],
    ['an unknown option', ['--bogus', 'memory', '1M'], /^nbdkit-ts: error: unrecognized option '--bogus'/],
    ['an unknown short option', ['-Z', 'memory', '1M'], /^nbdkit-ts: error: invalid option -- 'Z'/],
    ['a malformed key=value', ['memory', '=1M'], /^nbdkit-ts: error: malformed parameter '=1M'/],
    ['a missing required parameter', ['memory'], /^nbdkit-ts: error: you must specify size=<SIZE>/],
    ['an unparsable size', ['memory', 'size=12Q'], /^nbdkit-ts: error: could not parse size: unknown suffix 'Q'/],
    ['an unknown plugin key', ['memory', '1M', 'colour=blue'], /^nbdkit-ts: error: unknown parameter 'colour'/],
    ['a missing option argument', ['memory', '1M', '-U'], /^nbdkit-ts: error: option '-U' requires an argument/],
    ['a missing script file', ['./nothere.lua'], /^nbdkit-ts: error: cannot open plugin "\.\/nothere\.lua"/],
  ];
  for (const [what, args, message] of cases) {
    it(`${what}: one line on stderr and exit status 1`, async () => {
      const socket = join(work, `never-${what.replace(/\W/g, '')}.sock`);
      const result = await runNbdkitTs(['-f', '-U', socket, ...args]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(existsSync(socket)).toBe(false);
    });
  }
});

describe('options as native nbdkit takes them', () => {
  /** Exit status, and stdout and stderr with each program's name and the socket path taken out. */
  const outcome = (result: { code: number | null; stdout: Buffer; stderr: string }): string => {
    const clean = (text: string): string => text.replace(/^nbdkit(-ts)?: (error: )?/gm, '').replace(/socket=\S+/g, 'socket=');
    return `${result.code} [${clean(result.stdout.toString()).trim()}] [${clean(result.stderr).trim()}]`;
  };
  const cases: Array<[string, string[]]> = [
    ['a file= that does not exist is an error at start', ['file', join('/nonexistent', 'disk.img'), '--run', 'true']],
    ['-D with a malformed flag', ['-D', 'foo', 'memory', '1M', '--run', 'true']],
    ['-D NAME.FLAG=N: a warning that it was not used', ['--debug=a.b=1', 'memory', '1M', '--run', 'true']],
    ['--log=null: no messages, not even errors', ['--log=null', 'file', '/nonexistent', '--run', 'true']],
    ['--log with an unknown destination', ['--log=bogus', 'memory', '1M', '--run', 'true']],
    ['--mask-handshake=0: plain newstyle', ['--mask-handshake=0', 'memory', '1M', '--run', 'nbdinfo "$uri" | head -1']],
    ['--mask-handshake=1: fixed newstyle without NO_ZEROES', ['--mask-handshake=1', 'memory', '1M', '--run', 'nbdinfo --size "$uri"']],
    ['-n, the default protocol', ['-n', 'memory', '1M', '--run', 'nbdinfo --size "$uri"']],
    ['-i beside -U is ignored', ['-i', '127.0.0.1', 'memory', '1M', '--run', 'echo "$uri"']],
  ];
  for (const [what, args] of cases) {
    it(`${what}: as nbdkit`, async () => {
      const [native, ours] = await Promise.all([run('nbdkit', ['-U', '-', ...args]), runNbdkitTs(['-U', '-', ...args])]);
      expect(outcome(ours)).toBe(outcome(native));
    });
  }

  it('-o (oldstyle, not supported) is refused in one line', async () => {
    const result = await runNbdkitTs(['-o', '-U', '-', 'memory', '1M', '--run', 'true']);
    expect([result.code, result.stderr]).toEqual([
      1,
      'nbdkit-ts: error: -o/--oldstyle is not supported: nbdkit-ts serves the newstyle protocol only\n',
    ]);
  });
});

describe('captive mode and the background', () => {
  it('--run exits with the command status and sets $uri, $unixsocket, $exportname', async () => {
    const ok = await runNbdkitTs(['memory', '2M', '--run', 'nbdinfo --size "$uri" && test -S "$unixsocket" && test -z "$exportname"']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.toString().trim()).toBe('2097152');
    const failing = await runNbdkitTs(['memory', '2M', '--run', 'exit 42']);
    expect(failing.code).toBe(42);
  });

  it('without -f it detaches after listening; -P names the pid; kill stops it and removes socket and pid file', async () => {
    const socket = join(work, 'bg.sock');
    const pidFile = join(work, 'bg.pid');
    const start = await runNbdkitTs(['-P', pidFile, '-U', socket, 'memory', '1M'], { timeoutMs: 20_000 });
    expect(start.code, start.stderr).toBe(0);
    // The parent has exited and the server is already serving.
    expect(existsSync(socket)).toBe(true);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    expect(pid).toBeGreaterThan(1);
    const size = await run('nbdinfo', ['--size', `nbd+unix:///?socket=${socket}`]);
    expect(size.stdout.toString().trim()).toBe('1048576');
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && (existsSync(pidFile) || existsSync(socket)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(pidFile)).toBe(false);
    expect(existsSync(socket)).toBe(false);
    // Gone, or a zombie waiting for a reaper that this sandbox's init may not be.
    const alive = (): boolean => {
      try {
        return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });
});

describe('the command started by its #! line', () => {
  // A file that does not exist: a Node that tried to load it would warn on stderr.
  const extraCerts = join('/nonexistent', 'extra certs.pem');
  const environOf = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

  it('starts Node without NODE_EXTRA_CA_CERTS and gives --run the caller\'s value back', async () => {
    const env = { ...CLIENT_ENV, NODE_EXTRA_CA_CERTS: extraCerts };
    // $PPID of the --run shell is the server; its environ is what Node started with.
    const script =
      'tr "\\0" "\\n" < /proc/$PPID/environ | grep -c "^NODE_EXTRA_CA_CERTS=";' +
      'printf "%s|%s" "$NODE_EXTRA_CA_CERTS" "${NBDKIT_TS_NODE_EXTRA_CA_CERTS-unset}"';
    const result = await run(CLI, ['memory', '1M', '--run', script], { env });
    expect(result.stderr).not.toMatch(/extra certs/i);
    expect(result.stdout.toString()).toBe(`0\n${extraCerts}|unset`);
  });

  it('leaves an unset NODE_EXTRA_CA_CERTS unset', async () => {
    const { NODE_EXTRA_CA_CERTS: _dropped, ...env } = CLIENT_ENV;
    const result = await run(CLI, ['memory', '1M', '--run', 'printf "%s|%s" "${NODE_EXTRA_CA_CERTS-unset}" "${NBDKIT_TS_NODE_EXTRA_CA_CERTS-unset}"'], { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toBe('unset|unset');
  });

  it('starts the background server the same way', async () => {
    const socket = join(work, 'bg-env.sock');
    const pidFile = join(work, 'bg-env.pid');
    const env = { ...CLIENT_ENV, NODE_EXTRA_CA_CERTS: extraCerts };
    const start = await runNbdkitTs(['-P', pidFile, '-U', socket, 'memory', '1M'], { env, timeoutMs: 20_000 });
    expect(start.code, start.stderr).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    try {
      const environ = environOf(pid);
      expect(environ.filter((entry) => entry.startsWith('NODE_EXTRA_CA_CERTS='))).toEqual([]);
      expect(environ).toContain(`NBDKIT_TS_NODE_EXTRA_CA_CERTS=${extraCerts}`);
    } finally {
      process.kill(pid, 'SIGTERM');
    }
  });
});

describe('informational options', () => {
  it('--dump-plugin lists the plugin and its callbacks', async () => {
    const result = await runNbdkitTs(['memory', '--dump-plugin']);
    expect(result.code).toBe(0);
    const lines = result.stdout.toString().split('\n');
    expect(lines).toContain('name=memory');
    expect(lines).toContain('thread_model=parallel');
    expect(lines).toContain('magic_config_key=size');
    expect(lines).toContain('has_extents=1');
  });

  it('--version and --help print and exit 0', async () => {
    const version = await runNbdkitTs(['--version']);
    expect(version.code).toBe(0);
    // The nbdkit release followed, then nbdkit-ts's own version where nbdkit puts an extra one.
    expect(version.stdout.toString()).toMatch(/^nbdkit 1\.32\.5 \(nbdkit-ts \d+\.\d+\.\d+\)\n$/);
    const help = await runNbdkitTs(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.toString()).toContain('PLUGIN [[KEY=]VALUE');
  });
});
