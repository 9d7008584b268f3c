/**
 * Starting nbdkit-ts (and native nbdkit) for tests, and running real NBD clients against them.
 * Servers listen on a Unix socket in a fresh temporary directory and are always stopped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');

/** libnbd's Python bindings belong to Debian's python3, so /usr/bin must come first. */
export const CLIENT_ENV: NodeJS.ProcessEnv = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}` };

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  timeoutMs?: number;
}

/** Run a command to completion, capturing its output. Never rejects on a non-zero exit. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? CLIENT_ENV,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    // A command that exits without reading its input is not an error of the test.
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: Buffer.concat(stdout), stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Run nbdkit-ts itself with these arguments. */
export function runNbdkitTs(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [CLI, ...args], options);
}

export interface RunningServer {
  socket: string;
  uri: string;
  process: ChildProcess;
  /** Everything the server printed on stderr so far. */
  stderr(): string;
  /**
   * stderr once `text` is in it `times` times (or after timeoutMs, as it is then): a message
   * the server prints before a reply can reach this process after the reply does.
   */
  logged(text: string | RegExp, times?: number, timeoutMs?: number): Promise<string>;
  /** True until the server process has exited. */
  running(): boolean;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run native nbdkit instead of nbdkit-ts (the oracle). */
  native?: boolean;
  /** How long to wait for the socket to appear. */
  timeoutMs?: number;
  /** Options for node itself, before the script (e.g. --stack-size=250). */
  nodeArgs?: string[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Start a server in the foreground on a private Unix socket: `nbdkit-ts -f -U SOCK -P PID ...args`.
 * Resolves once the pid file exists, which a server writes once it accepts connections; rejects
 * with the server's stderr if it exits first. (Not once the socket exists: Node binds the
 * socket a few hundred microseconds before it listens, and a client connecting in between is
 * refused.)
 */
export async function startServer(args: string[], options: StartOptions = {}): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-test-'));
  const socket = join(dir, 'sock');
  const pidFile = join(dir, 'pid');
  const command = options.native ? 'nbdkit' : process.execPath;
  const prefix = options.native ? [] : [...(options.nodeArgs ?? []), CLI];
  const child = spawn(command, [...prefix, '-f', '-U', socket, '-P', pidFile, ...args], {
    cwd: options.cwd,
    env: options.env ?? CLIENT_ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  let stopping = false;
  const exit = new Promise<number | null>((r) =>
    child.on('exit', (code, signal) => {
      exited = true;
      // A server that dies on its own leaves its socket behind, and its clients see only
      // ECONNREFUSED: say why here.
      if (!stopping) process.stderr.write(`server ${args.join(' ')} exited by itself (${code ?? signal}):\n${stderr}\n`);
      r(code);
    }),
  );
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!existsSync(pidFile)) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`server did not start (${args.join(' ')}):\n${stderr}`);
    }
    await sleep(20);
  }
  return {
    socket,
    uri: `nbd+unix:///?socket=${socket}`,
    process: child,
    stderr: () => stderr,
    logged: async (text, times = 1, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (occurrences(stderr, text) < times && Date.now() < deadline) await sleep(10);
      return stderr;
    },
    running: () => !exited,
    stop: async () => {
      stopping = true;
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exit;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

function occurrences(text: string, pattern: string | RegExp): number {
  if (typeof pattern === 'string') return text.split(pattern).length - 1;
  const global = pattern.flags.includes('g') ? pattern : new RegExp(pattern.source, `${pattern.flags}g`);
  return text.match(global)?.length ?? 0;
}

/** Run a Python snippet with libnbd's bindings; `h` is connected to uri. Returns stdout. */
export async function nbdPython(uri: string, script: string): Promise<string> {
  const program = `import nbd, sys\nh = nbd.NBD()\nh.connect_uri(${JSON.stringify(uri)})\n${script}\n`;
  const result = await run('/usr/bin/python3', ['-c', program]);
  if (result.code !== 0) throw new Error(`python failed (${result.code}):\n${result.stderr}`);
  return result.stdout.toString();
}

/** A startServer whose servers are all stopped after each test of the calling file. */
export function serversStoppedAfterEach(): (args: string[], options?: StartOptions) => Promise<RunningServer> {
  const servers: RunningServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });
  return async (args, options) => {
    const server = await startServer(args, options);
    servers.push(server);
    return server;
  };
}

/** A live process's resident set size in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}
