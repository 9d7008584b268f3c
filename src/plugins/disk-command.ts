/**
 * What the ondemand and tmpdisk plugins share: the shell command that makes a disk (mkfs by
 * default, or command=), run with the plugin's parameters as shell variables, and serving the
 * disk it made through the file plugin's data path (it is a host file from then on).
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { type Plugin, type PluginHost, PluginError } from '../host/plugin.js';
import createFilePlugin from './file.js';
import { SparseFile } from './file-sparse.js';

/**
 * The default command: a sparse file of $size formatted as $type (ext4) with optional $label,
 * as nbdkit's default-command.sh does.
 */
export const DEFAULT_MKFS_COMMAND = `type="\${type:-ext4}"
labelopt='-L'
case "$type" in
    ext?) extra='-F' ;;
    *fat|msdos) extra='-I' ;;
    ntfs) extra='-Q -F'; labelopt='-n' ;;
    xfs) extra='-f' ;;
esac
truncate -s $size "$disk"
if [ "x$label" = "x" ]; then
    mkfs -t "$type" $extra "$disk"
else
    mkfs -t "$type" $extra $labelopt "$label" "$disk"
fi
`;

/**
 * A string as one /bin/sh word: as it is when it has only safe characters (so that a
 * parameter key stays a variable assignment), else single-quoted.
 */
export function shellQuote(text: string): string {
  if (/^[A-Za-z0-9_.,:/@%+=-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The parameters the plugins pass through to the command as shell variables, in order. */
export type ShellVariables = Array<[string, string]>;

/**
 * Run `command` to make the disk at `disk`: stdin and stdout closed (stdout may be the NBD
 * socket under -s), $disk and $size set, then each parameter as a variable. Rejects with
 * nbdkit's message on a non-zero exit.
 */
export function runDiskCommand(command: string, disk: string, size: bigint, vars: ShellVariables): Promise<void> {
  const script = [
    'exec </dev/null >/dev/null',
    `disk=${shellQuote(disk)}`,
    `size=${size}`,
    '',
    ...vars.map(([key, value]) => `${shellQuote(key)}=${shellQuote(value)}`),
    '',
    command,
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', (error) => reject(new PluginError(`failed to execute command: ${error.message}`)));
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else if (signal) reject(new PluginError(`command killed by signal ${signal}`));
      else reject(new PluginError(`command exited with code ${code}`));
    });
  });
}

/** The file plugin's handle shape: the disk's descriptor, writability and sparse helpers. */
export interface DiskHandle {
  fd: number;
  writable: boolean;
  sparse: SparseFile;
}

/** Open a made disk the way the file plugin opens its file, or throw nbdkit's message. */
export function openDisk(path: string, readonly: boolean): DiskHandle {
  let fd: number;
  try {
    fd = openSync(path, readonly ? constants.O_RDONLY : constants.O_RDWR);
  } catch (error) {
    throw new PluginError(`open: ${path}: ${(error as Error).message}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
  }
  try {
    fstatSync(fd);
  } catch (error) {
    closeSync(fd);
    throw new PluginError(`fstat: ${path}: ${(error as Error).message}`);
  }
  return { fd, writable: !readonly, sparse: new SparseFile(fd) };
}

/**
 * The data callbacks of the file plugin, for handles made by openDisk: the disk is served
 * exactly as `nbdkit-ts file` would serve it (sendfile reads, fallocate trims, extents).
 */
export async function fileDataPath(
  host: PluginHost,
): Promise<
  Pick<
    Plugin,
    | 'get_size' | 'can_write' | 'can_fua' | 'can_cache' | 'pread' | 'pwrite' | 'flush' | 'trim' | 'zero'
    | 'can_extents' | 'extents' | 'read_source_fd' | 'write_target_fd'
  >
> {
  const file = await createFilePlugin(host);
  const { get_size, can_write, can_fua, can_cache, pread, pwrite, flush, trim, zero, can_extents, extents, read_source_fd, write_target_fd } =
    file;
  return { get_size, can_write, can_fua, can_cache, pread, pwrite, flush, trim, zero, can_extents, extents, read_source_fd, write_target_fd };
}
