/**
 * The eval plugin: `nbdkit-ts eval get_size='echo 64M' pread='...' [key=value ...]`. Each
 * method is a /bin/sh fragment given on the command line; see nbdkit-eval-plugin(1).
 *
 * Each fragment is saved as $tmpdir/METHOD and run as `/bin/sh $tmpdir/METHOD METHOD ARGS...`,
 * so $0, $1... are those nbdkit-sh-plugin(3) describes. Methods without a fragment run the
 * `missing` fragment, which defaults to `exit 2` (answered without starting a shell).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plugin, PluginFactory, PluginHost } from '../../host/plugin.js';
import { PluginError } from '../../host/plugin.js';
import { ScriptCaller } from './call.js';
import type { ScriptTarget } from './call.js';
import { scriptMethods } from './methods.js';
import { ExitCode } from './status.js';
import { ScriptTmpdir } from './tmpdir.js';

const SHELL = '/bin/sh';

/** The keys that are methods; every other key=value goes to the config fragment. */
export const EVAL_METHODS: ReadonlySet<string> = new Set([
  'after_fork', 'block_size', 'cache', 'can_cache', 'can_extents', 'can_fast_zero', 'can_flush',
  'can_fua', 'can_multi_conn', 'can_trim', 'can_write', 'can_zero', 'close', 'config',
  'config_complete', 'default_export', 'dump_plugin', 'export_description', 'extents', 'flush',
  'get_ready', 'get_size', 'is_rotational', 'list_exports', 'missing', 'open', 'pread',
  'preconnect', 'pwrite', 'thread_model', 'trim', 'unload', 'zero',
]);

/**
 * can_* answers synthesised when the data method is given but its can_* is not, as the
 * server does for other plugins (eval, unlike sh, knows which methods exist).
 */
const SYNTHESISED_CAN: ReadonlyArray<readonly [string, string, string]> = [
  ['pwrite', 'can_write', ''],
  ['flush', 'can_flush', ''],
  ['trim', 'can_trim', ''],
  ['zero', 'can_zero', ''],
  ['extents', 'can_extents', ''],
  ['cache', 'can_cache', 'native\n'],
];

const factory: PluginFactory = (host: PluginHost): Plugin => {
  let tmpdir: ScriptTmpdir | undefined;
  const scripts = new Map<string, ScriptTarget>();

  const ensureTmpdir = (): ScriptTmpdir => (tmpdir ??= new ScriptTmpdir());
  const missingPath = (): string => join(ensureTmpdir().path, 'missing');
  const defaultMissing = (): ScriptTarget => ({
    argv0: missingPath(),
    file: SHELL,
    prefixArgs: [missingPath()],
    builtin: { status: ExitCode.MISSING, stdout: '' },
  });

  const resolve = (method: string): ScriptTarget =>
    scripts.get(method) ?? scripts.get('missing') ?? defaultMissing();
  const caller = new ScriptCaller(host, resolve, () => ensureTmpdir().environment());

  function addMethod(method: string, fragment: string): void {
    if (scripts.has(method)) {
      throw new PluginError(`method ${method} defined more than once on the command line`, 'EINVAL');
    }
    const path = join(ensureTmpdir().path, method);
    writeFileSync(path, fragment === '' || fragment.endsWith('\n') ? fragment : fragment + '\n', { mode: 0o500 });
    scripts.set(method, { argv0: path, file: SHELL, prefixArgs: [path] });
  }

  return {
    name: 'eval',
    config_help: "get_size=' SCRIPT '\npread=' SCRIPT '\n[etc]",

    load(): void {
      host.debug(`load: tmpdir: ${ensureTmpdir().path}`);
    },

    async unload(): Promise<void> {
      await caller.unload();
      tmpdir?.remove();
      tmpdir = undefined;
    },

    async config(key: string, value: string): Promise<void> {
      if (EVAL_METHODS.has(key)) {
        addMethod(key, value);
        return;
      }
      const { outcome } = await caller.call('config', [key, value]);
      if (outcome === 'missing') {
        throw new PluginError(
          `${resolve('config').argv0}: callback '${key}' is unknown, and there is no 'config' callback to handle it`,
          'EINVAL',
        );
      }
      if (outcome === 'false') throw caller.unexpectedFalse('config');
    },

    async config_complete(): Promise<void> {
      for (const [method, canMethod, stdout] of SYNTHESISED_CAN) {
        if (scripts.has(method) && !scripts.has(canMethod)) {
          const path = join(ensureTmpdir().path, canMethod);
          scripts.set(canMethod, { argv0: path, file: SHELL, prefixArgs: [path], builtin: { status: ExitCode.OK, stdout } });
        }
      }
      const { outcome } = await caller.call('config_complete', []);
      if (outcome === 'false') throw caller.unexpectedFalse('config_complete');
    },

    ...scriptMethods(host, caller),
  };
};

export default factory;
