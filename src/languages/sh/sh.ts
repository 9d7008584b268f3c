/**
 * The sh plugin: `nbdkit-ts sh SCRIPT [key=value ...]`. One executable (any interpreter, by
 * its #! line) answers every method; see nbdkit-sh-plugin(3).
 */
import { chmodSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plugin, PluginFactory, PluginHost } from '../../host/plugin.js';
import { PluginError } from '../../host/plugin.js';
import { ScriptCaller } from './call.js';
import type { ScriptTarget } from './call.js';
import { scriptMethods } from './methods.js';
import { chomp } from './parse.js';
import { ScriptTmpdir } from './tmpdir.js';

/** `nbdkit sh -`: the script is read from stdin into $tmpdir, as nbdkit does. */
function inlineScript(dir: string, host: PluginHost): string {
  // Reading a script from the client's connection would eat its handshake.
  if (!host.stdioSafe) throw new PluginError('inline script is incompatible with -s', 'EINVAL');
  const path = join(dir, 'inline-script.sh');
  writeFileSync(path, readFileSync(0));
  chmodSync(path, 0o500);
  return path;
}

const factory: PluginFactory = (host: PluginHost): Plugin => {
  let tmpdir: ScriptTmpdir | undefined;
  let script: ScriptTarget | undefined;
  let magicConfigKey: string | undefined;

  const ensureTmpdir = (): ScriptTmpdir => (tmpdir ??= new ScriptTmpdir());
  const caller = new ScriptCaller(host, () => script, () => ensureTmpdir().environment());

  /** Optional setup methods run once the script is known: OK and MISSING are both fine. */
  async function setupCall(method: string): Promise<string | undefined> {
    const { outcome, text } = await caller.callText(method, []);
    if (outcome === 'false') throw caller.unexpectedFalse(method);
    return outcome === 'ok' ? text : undefined;
  }

  async function setScript(value: string): Promise<void> {
    const dir = ensureTmpdir();
    let path: string;
    if (value === '-') {
      path = inlineScript(dir.path, host);
    } else {
      try {
        path = realpathSync(value);
      } catch (err) {
        throw new PluginError(`realpath: ${value}: ${(err as Error).message}`, 'ENOENT');
      }
    }
    script = { argv0: path, file: path, prefixArgs: [] };
    await setupCall('load');
    const magic = await setupCall('magic_config_key');
    if (magic !== undefined) magicConfigKey = chomp(magic);
  }

  return {
    name: 'sh',
    magic_config_key: 'script',
    config_help:
      'script=<FILENAME>     (required) The shell script to run.\n' +
      '[other arguments may be used by the plugin that you load]',

    load(): void {
      const dir = ensureTmpdir();
      host.debug(`load: tmpdir: ${dir.path}`);
    },

    async unload(): Promise<void> {
      if (script) await caller.unload();
      tmpdir?.remove();
      tmpdir = undefined;
    },

    async config(key: string, value: string): Promise<void> {
      if (!script) {
        if (key !== 'script') throw new PluginError('the first parameter must be script=/path/to/script', 'EINVAL');
        await setScript(value);
        return;
      }
      // A second bare value arrives as script=VALUE: it belongs to the script's own magic key.
      if (key === 'script') {
        if (magicConfigKey === undefined) {
          throw new PluginError(`${script.argv0}: expecting key=value on the command line but got: ${value}`, 'EINVAL');
        }
        key = magicConfigKey;
      }
      const { outcome } = await caller.call('config', [key, value]);
      if (outcome === 'missing') {
        throw new PluginError(`${script.argv0}: this plugin does not need command line configuration`, 'EINVAL');
      }
      if (outcome === 'false') throw caller.unexpectedFalse('config');
    },

    async config_complete(): Promise<void> {
      if (!script) throw new PluginError('missing script parameter', 'EINVAL');
      await setupCall('config_complete');
    },

    ...scriptMethods(host, caller),
  };
};

export default factory;
