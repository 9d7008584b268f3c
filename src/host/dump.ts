/** --version, --dump-config, --help and --dump-plugin output, in nbdkit's key=value style. */
import { readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { fileURLToPath } from 'node:url';
import { threadModelName } from './backend.js';
import { fsNativeOrigin } from './fs-native.js';
import { USAGE } from './options.js';
import type { Plugin } from './plugin.js';

/** nbdkit-ts's own package.json: the nearest one up from this module, bundled or not. */
function packageVersion(): string {
  for (let url = new URL('package.json', import.meta.url); ; url = new URL('../package.json', url)) {
    try {
      const found = JSON.parse(readFileSync(fileURLToPath(url), 'utf8')) as { name?: string; version: string };
      if (found.name === 'nbdkit-ts') return found.version;
    } catch {
      // none here
    }
    if (url.pathname === '/package.json') return 'unknown';
  }
}

export function versionText(): string {
  return `nbdkit-ts ${packageVersion()}\n`;
}

export function dumpConfig(): string {
  const version = packageVersion();
  const [major, minor] = version.split('.');
  const lines = [
    `binary=${process.argv[1]}`,
    'exit_with_parent=yes',
    // The fs-native addon in use: the package's prebuilt binary, a local build, or none.
    `fs_native=${fsNativeOrigin}`,
    `host_cpu=${arch() === 'x64' ? 'x86_64' : arch()}`,
    `host_os=${platform()}`,
    'name=nbdkit-ts',
    `node_version=${process.versions.node}`,
    `version=${version}`,
    `version_major=${major}`,
    `version_minor=${minor}`,
  ];
  return lines.join('\n') + '\n';
}

export function helpText(plugin: Plugin | undefined): string {
  if (!plugin) return USAGE + '\n';
  const lines = [`${plugin.name}${plugin.longname ? ` (${plugin.longname})` : ''}`];
  if (plugin.description) lines.push(plugin.description);
  if (plugin.config_help) lines.push(plugin.config_help);
  return lines.join('\n') + '\n';
}

const CALLBACKS: ReadonlyArray<keyof Plugin> = [
  'load', 'unload', 'dump_plugin', 'config', 'config_complete', 'thread_model', 'get_ready', 'after_fork',
  'cleanup', 'preconnect', 'list_exports', 'default_export', 'open', 'close', 'export_description', 'get_size',
  'block_size', 'is_rotational', 'can_write', 'can_flush', 'can_trim', 'can_zero', 'can_fast_zero', 'can_fua',
  'can_multi_conn', 'can_extents', 'can_cache', 'pread', 'pwrite', 'flush', 'trim', 'zero', 'extents', 'cache',
];

/** nbdkit --dump-plugin: the host's lines about the plugin, then the plugin's own. */
export async function dumpPlugin(plugin: Plugin): Promise<string> {
  const lines = [
    `name=${plugin.name}`,
    `version=${plugin.version ?? packageVersion()}`,
    'api_version=2',
  ];
  if (plugin.longname) lines.push(`longname=${plugin.longname}`);
  if (plugin.magic_config_key) lines.push(`magic_config_key=${plugin.magic_config_key}`);
  const model = plugin.thread_model ? await plugin.thread_model() : undefined;
  if (model !== undefined) lines.push(`thread_model=${threadModelName(model)}`);
  for (const callback of CALLBACKS) if (plugin[callback] !== undefined) lines.push(`has_${callback}=1`);
  if (plugin.dump_plugin) lines.push(...(await plugin.dump_plugin()));
  return lines.join('\n') + '\n';
}
