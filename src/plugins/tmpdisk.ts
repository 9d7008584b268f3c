/**
 * tmpdisk: a fresh disk for each connection, made by a command (mkfs -t ext4 by default) in a
 * temporary directory and deleted as soon as it is open, as nbdkit-tmpdisk-plugin(1).
 * `nbdkit-ts tmpdisk 1G [type=xfs] [label=L] [command='...'] [VAR=VALUE ...]`.
 */
import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Plugin, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { DEFAULT_MKFS_COMMAND, type DiskHandle, type ShellVariables, fileDataPath, openDisk, runDiskCommand } from './disk-command.js';

const createTmpdiskPlugin: PluginFactory = async (host) => {
  let size: bigint | undefined;
  let command = DEFAULT_MKFS_COMMAND;
  const vars: ShellVariables = [];
  // As nbdkit: TMPDIR, else /var/tmp (large enough for disks, unlike a tmpfs /tmp).
  const tmpdir = process.env.TMPDIR || '/var/tmp';

  const plugin: Plugin = {
    name: 'tmpdisk',
    longname: 'nbdkit temporary disk plugin',
    description: 'A fresh temporary disk (by default an ext4 filesystem) for each connection.',
    magic_config_key: 'size',
    config_help: `size=<SIZE>      (required) Virtual filesystem size.
label=<LABEL>               The filesystem label.
type=ext4|...               The filesystem type.
command=<COMMAND>           Alternate command instead of mkfs.`,

    config(key, value) {
      if (key === 'command') command = value;
      else if (key === 'size') size = host.parseSize(value);
      else if (key === 'disk') throw new PluginError("'disk' parameter cannot be set on the command line", 'EINVAL');
      else vars.push([key, value]);
    },
    config_complete() {
      if (size === undefined) throw new PluginError('size parameter is required', 'EINVAL');
    },
    thread_model: () => ThreadModel.PARALLEL,

    async open(readonly): Promise<DiskHandle> {
      let dir: string;
      try {
        dir = mkdtempSync(join(tmpdir, 'tmpdisk'));
      } catch (error) {
        throw new PluginError(`${join(tmpdir, 'tmpdiskXXXXXX')}: ${(error as Error).message}`);
      }
      const disk = join(dir, 'disk');
      try {
        await runDiskCommand(command, disk, size!, vars);
        const handle = openDisk(disk, readonly);
        host.debug(`tmpdisk: requested_size = ${size}, size = ${await plugin.get_size(handle)}`);
        return handle;
      } finally {
        // The open descriptor keeps the disk alive; nothing else may reach it.
        rmSync(dir, { recursive: true, force: true });
      }
    },
    close(h) {
      closeSync((h as DiskHandle).fd);
    },
    can_multi_conn: () => false,
    ...(await fileDataPath(host)),
  };
  return plugin;
};

export default createTmpdiskPlugin;
