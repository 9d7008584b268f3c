/**
 * From the command line to a configured plugin: resolve the name (or script path), build the
 * plugin, then load, config each key=value in order, and config_complete, as nbdkit does.
 */
import { existsSync } from 'node:fs';
import { isPluginName, languageOfScript, loadPluginFactory, pluginNames } from './plugin-registry.js';
import { isValidConfigKey, UsageError, type ServerOptions } from './options.js';
import type { Plugin, PluginHost } from './plugin.js';

export interface ResolvedPlugin {
  /** The registry name (memory, lua, ...). */
  name: string;
  /** Parameters after resolution: a script path given as PLUGIN becomes its magic key. */
  params: Array<{ key: string | undefined; value: string }>;
}

/** Turn PLUGIN into a registry name, moving a script path into the parameters. */
export function resolvePlugin(options: ServerOptions): ResolvedPlugin {
  const plugin = options.plugin;
  if (plugin === undefined) throw new UsageError('no plugins given on the command line');
  if (isPluginName(plugin)) return { name: plugin, params: options.params };
  // nbdkit treats anything with a "/" or "." as a path; a script runs in the language it names.
  if (plugin.includes('/') || plugin.includes('.')) {
    if (!existsSync(plugin)) throw new UsageError(`cannot open plugin "${plugin}": No such file or directory`);
    const language = languageOfScript(plugin);
    if (!language) {
      throw new UsageError(`cannot tell which language plugin runs "${plugin}" (name the plugin, e.g. "lua ${plugin}")`);
    }
    return { name: language, params: [{ key: undefined, value: plugin }, ...options.params] };
  }
  throw new UsageError(`unknown plugin "${plugin}" (plugins: ${pluginNames().join(', ')})`);
}

/** Build the plugin and run load. */
export async function instantiate(name: string, host: PluginHost): Promise<Plugin> {
  const factory = await loadPluginFactory(name);
  const plugin = await factory(host);
  if (plugin.load) await plugin.load();
  return plugin;
}

/** Pass each parameter to config (a bare value to the magic key), then config_complete. */
export async function configure(
  plugin: Plugin,
  params: ResolvedPlugin['params'],
  options: { complete: boolean },
): Promise<void> {
  for (const { key, value } of params) {
    // As nbdkit: a plugin without config takes no parameter at all, bare or key=value.
    if (!plugin.config) throw new UsageError(`${plugin.name}: this plugin does not need command line configuration`);
    let configKey = key;
    if (configKey === undefined) {
      if (!plugin.magic_config_key) {
        throw new UsageError(`plugin '${plugin.name}' does not take a bare parameter '${value}': use key=value`);
      }
      configKey = plugin.magic_config_key;
    }
    if (!isValidConfigKey(configKey)) throw new UsageError(`malformed parameter key '${configKey}'`);
    await plugin.config(configKey, value);
  }
  if (options.complete && plugin.config_complete) await plugin.config_complete();
}
