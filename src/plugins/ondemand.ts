/**
 * ondemand: one persistent disk per export name, made on first use by a command (mkfs -t ext4
 * by default) in dir=, as nbdkit-ondemand-plugin(1). A disk in use by one connection is
 * refused to others (or, with wait=true, waited for).
 *
 * nbdkit locks with F_OFD_SETLK, which Node cannot reach; the lock here is held in this
 * process, so it keeps two clients of this server apart but not two servers sharing a dir.
 */
import { closeSync, existsSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { type Plugin, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { DEFAULT_MKFS_COMMAND, type DiskHandle, type ShellVariables, fileDataPath, openDisk, runDiskCommand } from './disk-command.js';
import { parseBool } from './parse-bool.js';

/** NAME_MAX on Linux: the longest file name, so the longest export name. */
const NAME_MAX = 255;

interface OndemandHandle extends DiskHandle {
  exportName: string;
}

const createOndemandPlugin: PluginFactory = async (host) => {
  let dir: string | undefined;
  let size: bigint | undefined;
  let command = DEFAULT_MKFS_COMMAND;
  let waitForLock = false;
  const vars: ShellVariables = [];

  /** Export names in use, and the connections waiting for each (wait=true). */
  const inUse = new Set<string>();
  const waiters = new Map<string, Array<() => void>>();
  /** Disks being made, so that two first connections run the command once. */
  const making = new Map<string, Promise<void>>();

  async function lock(name: string): Promise<void> {
    while (inUse.has(name)) {
      if (!waitForLock) {
        host.error(`${name}: filesystem is locked by another client`);
        throw new PluginError(`${name}: filesystem is locked by another client`, 'EINVAL');
      }
      await new Promise<void>((resolve) => waiters.set(name, [...(waiters.get(name) ?? []), resolve]));
    }
    inUse.add(name);
  }

  function unlock(name: string): void {
    inUse.delete(name);
    const next = waiters.get(name)?.shift();
    if (next) next();
  }

  const plugin: Plugin = {
    name: 'ondemand',
    longname: 'nbdkit ondemand plugin',
    description: 'Persistent disks, one per export name, made on demand.',
    magic_config_key: 'size',
    config_help: `dir=<EXPORTSDIR> (required) Directory containing filesystems.
size=<SIZE>      (required) Virtual filesystem size.
label=<LABEL>               The filesystem label.
type=ext4|...               The filesystem type.
command=<COMMAND>           Alternate command instead of mkfs.`,

    config(key, value) {
      if (key === 'command') command = value;
      else if (key === 'size') size = host.parseSize(value);
      else if (key === 'dir') {
        try {
          dir = realpathSync(value);
        } catch (error) {
          throw new PluginError(`realpath: ${value}: ${(error as Error).message}`, 'ENOENT');
        }
      } else if (key === 'wait') waitForLock = parseBool(value);
      else if (key === 'disk') throw new PluginError("'disk' parameter cannot be set on the command line", 'EINVAL');
      else vars.push([key, value]);
    },
    config_complete() {
      if (dir === undefined || size === undefined) throw new PluginError('dir and size parameters are required', 'EINVAL');
    },
    thread_model: () => ThreadModel.PARALLEL,

    list_exports() {
      // "" (the file "default") first, then every file whose name could be an export name.
      const names = readdirSync(dir!).filter((n) => !n.includes('.') && !n.includes(':') && n !== 'default');
      return [{ name: '' }, ...names.map((name) => ({ name }))];
    },
    default_export: () => 'default',

    async open(readonly, connection): Promise<OndemandHandle> {
      const name = connection.exportName;
      if (name === '' || Buffer.byteLength(name) > NAME_MAX || /[./:]/.test(name)) {
        throw new PluginError(`invalid exportname ‘${name}’ rejected`, 'EINVAL');
      }
      const disk = join(dir!, name);
      if (!existsSync(disk)) {
        let made = making.get(name);
        if (!made) {
          made = runDiskCommand(command, disk, size!, vars).finally(() => making.delete(name));
          making.set(name, made);
        }
        await made;
      }
      await lock(name);
      try {
        return { ...openDisk(disk, readonly), exportName: name };
      } catch (error) {
        unlock(name);
        throw error;
      }
    },
    close(h) {
      closeSync((h as OndemandHandle).fd);
      unlock((h as OndemandHandle).exportName);
    },
    // nbdkit's lock admits one connection per export, so multi-conn cannot be offered.
    can_multi_conn: () => false,
    ...(await fileDataPath(host)),
  };
  return plugin;
};

export default createOndemandPlugin;
