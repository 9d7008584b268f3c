/** nbdkit_parse_bool for built-in plugins' key=value parameters. */
import { PluginError } from '../host/plugin.js';

const TRUE_WORDS = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'f', 'no', 'n', 'off']);

/** true/false for nbdkit's boolean words; a PluginError (EINVAL) in nbdkit's words otherwise. */
export function parseBool(value: string): boolean {
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new PluginError(`could not decipher boolean (${value})`, 'EINVAL');
}
