/**
 * Calling one plugin method of a script: find the script for the method, run it with the
 * method's arguments, log the call under -v, and turn its exit status into an outcome.
 */
import type { ConnectionInfo, PluginHost } from '../../host/plugin.js';
import { disconnect } from '../../host/script-api.js';
import { PluginError } from '../../host/plugin.js';
import { runScript } from './run.js';
import { ExitCode, interpretResult } from './status.js';
import type { Outcome } from './status.js';

/** How one method is carried out. */
export interface ScriptTarget {
  /** The script's path: $0 for the script, and the prefix of its error messages. */
  readonly argv0: string;
  /** The executable and the arguments placed before the method name. */
  readonly file: string;
  readonly prefixArgs: readonly string[];
  /**
   * A fixed answer given without starting a process (eval's default `missing`, and the
   * can_* answers it synthesises), exactly what the equivalent one-line script would give.
   */
  readonly builtin?: { readonly status: number; readonly stdout: string };
}

/** Which script implements a method; undefined when no script is configured. */
export type ScriptResolver = (method: string) => ScriptTarget | undefined;

export interface CallOptions {
  readonly stdin?: Uint8Array;
  readonly stdoutInto?: Uint8Array;
  /** The connection the method serves, which exit statuses 6 to 8 disconnect. */
  readonly connection?: ConnectionInfo;
}

export interface CallResult {
  readonly outcome: Outcome;
  readonly stdout: Buffer;
  readonly stdoutLength: number;
}

/** Quote an argument for the -v log the way a shell would need it. */
function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_,.+:/=@%-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export class ScriptCaller {
  constructor(
    private readonly host: PluginHost,
    private readonly resolve: ScriptResolver,
    private readonly environment: () => NodeJS.ProcessEnv,
  ) {}

  /** The script for a method, or a PluginError when none is configured (sh without script=). */
  target(method: string): ScriptTarget {
    const target = this.resolve(method);
    if (!target) throw new PluginError('missing script parameter', 'EINVAL');
    return target;
  }

  hasScript(method: string): boolean {
    return this.resolve(method) !== undefined;
  }

  /** The unload method, whose errors are ignored (nbdkit-sh-plugin(3)). */
  async unload(): Promise<void> {
    try {
      await this.call('unload', []);
    } catch {
      // ignored, as nbdkit does
    }
  }

  /** Run `script METHOD ARGS...`; throws the script's PluginError when it failed. */
  async call(method: string, args: readonly string[], options: CallOptions = {}): Promise<CallResult> {
    const target = this.target(method);
    const argv = [...target.prefixArgs, method, ...args];
    if (this.host.verbose) {
      this.host.debug(`calling: ${[target.argv0, method, ...args].map(shellQuote).join(' ')}`);
    }
    if (target.builtin) {
      const stdout = Buffer.from(target.builtin.stdout);
      if (options.stdoutInto) options.stdoutInto.set(stdout.subarray(0, options.stdoutInto.length));
      const outcome = interpretResult(
        target.argv0,
        { status: target.builtin.status, signal: undefined, stdout, stdoutLength: stdout.length, stderr: Buffer.alloc(0) },
        (m) => this.host.debug(m),
      );
      return { outcome, stdout, stdoutLength: stdout.length };
    }
    const result = await runScript({
      file: target.file,
      args: argv,
      env: this.environment(),
      stdin: options.stdin,
      stdoutInto: options.stdoutInto,
    });
    if (this.host.verbose && result.status !== undefined) {
      this.host.debug(`completed: ${target.argv0} ${method}: status ${result.status}`);
    }
    const effects = {
      shutdown: () => this.host.shutdown(),
      disconnect: (force: boolean) => {
        if (!disconnect(options.connection, force)) this.host.debug('no connection in this method, ignoring disconnect request');
      },
    };
    const outcome = interpretResult(target.argv0, result, (m) => this.host.debug(m), effects);
    return { outcome, stdout: result.stdout, stdoutLength: result.stdoutLength };
  }

  /** Text output of a successful call (empty for other outcomes). */
  async callText(method: string, args: readonly string[], connection?: ConnectionInfo): Promise<{ outcome: Outcome; text: string }> {
    const { outcome, stdout } = await this.call(method, args, { connection });
    return { outcome, text: outcome === 'ok' ? stdout.toString('utf8') : '' };
  }

  /** The error nbdkit gives when a method exits 3 but is not a boolean. */
  unexpectedFalse(method: string): PluginError {
    return new PluginError(
      `${this.target(method).argv0}: ${method} method returned unexpected code (${ExitCode.FALSE}/false)`,
      'EIO',
    );
  }
}
