/**
 * Running one script invocation as a child process: the only place that spawns.
 *
 * Each plugin method is one fork/exec of the script (as nbdkit-sh-plugin does), so the event
 * loop never waits on a script and a `parallel` script really runs requests side by side.
 * Everything crossing the pipes is a Buffer, so pread output and pwrite input stay binary-safe.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export interface RunRequest {
  /** Executable to start and its arguments (argv[1..]). */
  readonly file: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Sent on the script's stdin, which is then closed. Without it stdin is /dev/null. */
  readonly stdin?: Uint8Array;
  /**
   * When given, stdout is copied straight into this buffer (pread), and only the number of
   * bytes the script printed is reported, so a long read is never assembled twice.
   */
  readonly stdoutInto?: Uint8Array;
}

export interface RunResult {
  /** The exit status, or undefined when the script was killed by a signal. */
  readonly status: number | undefined;
  /** The signal number that ended the script, if any. */
  readonly signal: number | undefined;
  /** Collected stdout (empty when stdoutInto was used). */
  readonly stdout: Buffer;
  /** Total bytes the script wrote on stdout. */
  readonly stdoutLength: number;
  readonly stderr: Buffer;
  /** Set when the script could not be started or its stdin could not be written. */
  readonly failure?: string;
}

// A runaway script must not grow the server without bound: error text beyond this is dropped.
const STDERR_LIMIT = 1 << 20;

export function runScript(req: RunRequest): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(req.file, req.args, {
      env: req.env,
      stdio: [req.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });

    const outChunks: Buffer[] = [];
    let outLength = 0;
    const errChunks: Buffer[] = [];
    let errLength = 0;
    let failure: string | undefined;
    let settled = false;

    // Both are pipes by construction of stdio above.
    const stdout = child.stdout as NodeJS.ReadableStream;
    const stderr = child.stderr as NodeJS.ReadableStream;
    stdout.on('data', (chunk: Buffer) => {
      const into = req.stdoutInto;
      if (into) {
        // Copy what fits; the length still counts everything, so "too much data" is detected.
        if (outLength < into.length) into.set(chunk.subarray(0, into.length - outLength), outLength);
      } else {
        outChunks.push(chunk);
      }
      outLength += chunk.length;
    });
    stderr.on('data', (chunk: Buffer) => {
      if (errLength < STDERR_LIMIT) errChunks.push(chunk);
      errLength += chunk.length;
    });

    if (req.stdin && child.stdin) {
      child.stdin.on('error', (err: NodeJS.ErrnoException) => {
        // A script that exits without reading all of stdin is judged by its exit status
        // alone: native nbdkit stops writing once the script is gone and accepts status 0.
        if (err.code !== 'EPIPE') failure ??= `write: ${err.message}`;
      });
      child.stdin.end(req.stdin);
    }

    child.on('error', (err: NodeJS.ErrnoException) => {
      // spawn failed (ENOENT, EACCES...): there is no process to wait for.
      if (settled) return;
      settled = true;
      resolve({
        status: undefined,
        signal: undefined,
        stdout: Buffer.alloc(0),
        stdoutLength: 0,
        stderr: Buffer.alloc(0),
        failure: err.message,
      });
    });

    // 'close' waits for the exit and for stdout/stderr to reach EOF, like nbdkit's poll loop.
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      resolve({
        status: code ?? undefined,
        signal: signal ? constants.signals[signal] : undefined,
        stdout: req.stdoutInto ? Buffer.alloc(0) : Buffer.concat(outChunks),
        stdoutLength: outLength,
        stderr: Buffer.concat(errChunks),
        failure,
      });
    });
  });
}
