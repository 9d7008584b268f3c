/**
 * --version, --dump-config, --help and --dump-plugin output, with nbdkit's keys and forms: tools
 * read these to tell which nbdkit they run and what it can do, so the version reported is the
 * nbdkit release nbdkit-ts follows, and nbdkit-ts's own version comes beside it, where nbdkit
 * puts a distribution's extra version string.
 */
import { realpathSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { dirname } from 'node:path';
import { threadModelName } from './backend.js';
import { fsNativeOrigin } from './fs-native.js';
import { usageText } from './options.js';
import { type Plugin, ThreadModel } from './plugin.js';
import { NBDKIT_VERSION, NBDKIT_VERSION_MAJOR, NBDKIT_VERSION_MINOR, nbdkitTsVersion, versionExtra } from './version.js';
import { zstdAvailable } from '../plugins/zstd.js';

/** A plugin's version: nbdkit's built-in plugins carry nbdkit's, and so do those nbdkit-ts follows. */
function pluginVersion(plugin: Plugin): string {
  return plugin.version ?? NBDKIT_VERSION;
}

/** --version: `nbdkit 1.32.5 (nbdkit-ts 0.1.0)`, then with a plugin `NAME VERSION`. */
export function versionText(plugin?: Plugin): string {
  let text = `nbdkit ${NBDKIT_VERSION} (${versionExtra()})\n`;
  if (plugin) text += `${plugin.name} ${pluginVersion(plugin)}\n`;
  return text;
}

/** The nbdkit-ts command as started (the npm bin link or dist/cli.js), with links resolved. */
function binaryPath(): string {
  try {
    return realpathSync(process.argv[1]);
  } catch {
    return process.argv[1];
  }
}

/** nbdkit's host_os is the build's GNU triplet system: linux-gnu on glibc. */
function hostOs(): string {
  if (platform() !== 'linux') return platform();
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'linux-gnu' : 'linux-musl';
}

const HOST_CPU: Readonly<Record<string, string>> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' };

/**
 * --dump-config: nbdkit's keys, sorted as nbdkit prints them. Its directories of plugins,
 * filters, libraries and manual pages have no counterpart (plugins are built in), so those keys
 * are left out rather than given paths that hold nothing; nbdkit_ts_version and node_version
 * are nbdkit-ts's own.
 */
export async function dumpConfig(): Promise<string> {
  const lines = [
    `binary=${binaryPath()}`,
    `bindir=${dirname(process.argv[1])}`,
    'exit_with_parent=yes',
    // The fs-native addon in use: the package's prebuilt binary, a local build, or none.
    `fs_native=${fsNativeOrigin}`,
    `host_cpu=${HOST_CPU[arch()] ?? arch()}`,
    `host_os=${hostOs()}`,
    'name=nbdkit-ts',
    `nbdkit_ts_version=${nbdkitTsVersion()}`,
    `node_version=${process.versions.node}`,
    'selinux=no',
    'tls=yes',
    `version=${NBDKIT_VERSION}`,
    `version_extra=${versionExtra()}`,
    `version_major=${NBDKIT_VERSION_MAJOR}`,
    `version_minor=${NBDKIT_VERSION_MINOR}`,
    `zstd=${zstdAvailable() ? 'yes' : 'no'}`,
  ];
  return lines.join('\n') + '\n';
}

/** --help: the usage, then with a plugin what it is and the parameters it takes. */
export function helpText(plugin: Plugin | undefined): string {
  if (!plugin) return usageText();
  const lines = ['', `plugin: ${plugin.name}`];
  if (plugin.longname) lines.push(plugin.longname);
  if (plugin.description) lines.push(plugin.description);
  if (plugin.config_help) lines.push(plugin.config_help);
  return usageText() + lines.join('\n') + '\n';
}

const CALLBACKS: ReadonlyArray<keyof Plugin> = [
  'load', 'unload', 'dump_plugin', 'config', 'config_complete', 'config_help', 'thread_model', 'get_ready',
  'after_fork', 'cleanup', 'preconnect', 'list_exports', 'default_export', 'open', 'close', 'export_description',
  'get_size', 'block_size', 'can_write', 'can_flush', 'is_rotational', 'can_trim', 'can_zero', 'can_fast_zero',
  'can_extents', 'can_fua', 'can_multi_conn', 'can_cache', 'pread', 'pwrite', 'flush', 'trim', 'zero', 'extents',
  'cache',
];

/**
 * --dump-plugin, as nbdkit prints it: where the plugin is, what it is, its thread models and
 * which callbacks it has, then the plugin's own lines. nbdkit's struct_size and
 * errno_is_preserved describe a C plugin's struct and have no counterpart here.
 */
export async function dumpPlugin(plugin: Plugin): Promise<string> {
  const lines = [`path=${binaryPath()}`, `name=${plugin.name}`];
  lines.push(`version=${pluginVersion(plugin)}`);
  lines.push('api_version=2');
  // nbdkit-ts serves any plugin in parallel; the plugin's thread_model narrows that.
  lines.push(`max_thread_model=${threadModelName(ThreadModel.PARALLEL)}`);
  const model = plugin.thread_model ? await plugin.thread_model() : ThreadModel.SERIALIZE_ALL_REQUESTS;
  lines.push(`thread_model=${threadModelName(model)}`);
  if (plugin.magic_config_key) lines.push(`magic_config_key=${plugin.magic_config_key}`);
  if (plugin.longname) lines.push('has_longname=1');
  if (plugin.description) lines.push('has_description=1');
  for (const callback of CALLBACKS) if (plugin[callback] !== undefined) lines.push(`has_${callback}=1`);
  if (plugin.dump_plugin) lines.push(...(await plugin.dump_plugin()));
  return lines.join('\n') + '\n';
}
