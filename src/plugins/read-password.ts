/**
 * nbdkit_read_password for built-in plugins (curl's password=, proxy-password=): the
 * implementation scripts use (script-api.ts), with nbdkit's check that stdin is free for `-`
 * (under -s it is the client's connection).
 */
import { type PluginHost, PluginError } from '../host/plugin.js';
import { readPassword as readPasswordValue } from '../host/script-api.js';

export function readPassword(value: string, host: PluginHost): string {
  if (value === '-' && !host.stdioSafe) throw new PluginError('stdin is not available for reading password', 'EINVAL');
  return readPasswordValue(value, 'password');
}
