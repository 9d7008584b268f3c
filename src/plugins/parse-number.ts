/**
 * nbdkit's nbdkit_parse_uint*_t and nbdkit_parse_bool for built-in plugins, with nbdkit's
 * wording: numbers as C's strtoul with base 0 reads them (decimal, 0x hex, 0 octal, leading
 * white space), nothing after them, and within the type's range.
 */
import { PluginError } from '../host/plugin.js';

const UNSIGNED = /^[ \t\n\v\f\r]*\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(.*)$/s;

/** nbdkit_parse_uint{8,16,32,64}_t: `what` names the parameter in the error message. */
export function parseUnsigned(what: string, text: string, bits: 8 | 16 | 32 | 64): bigint {
  if (/^[ \t\n\v\f\r]*-/.test(text)) throw new PluginError(`${what}: negative numbers are not allowed`, 'EINVAL');
  const match = UNSIGNED.exec(text);
  if (!match) throw new PluginError(`${what}: empty string where we expected a number`, 'EINVAL');
  const [, digits, rest] = match;
  let value: bigint;
  if (/^0[xX]/.test(digits)) value = BigInt(digits);
  else if (digits.length > 1 && digits.startsWith('0')) value = BigInt(`0o${digits.slice(1)}`);
  else value = BigInt(digits);
  // strtoul fails with ERANGE before it looks at what follows.
  if (value >= 1n << BigInt(bits)) {
    throw new PluginError(`${what}: could not parse number: "${text}": Numerical result out of range`, 'ERANGE');
  }
  if (rest !== '') throw new PluginError(`${what}: could not parse number: "${text}": trailing garbage`, 'EINVAL');
  return value;
}

const TRUE_WORDS = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'f', 'no', 'n', 'off']);

/** nbdkit_parse_bool. */
export function parseBool(text: string): boolean {
  const word = text.toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new PluginError(`could not decipher boolean (${text})`, 'EINVAL');
}

/** The error every built-in plugin gives for a key it does not know. */
export function unknownParameter(key: string): PluginError {
  return new PluginError(`unknown parameter '${key}'`, 'EINVAL');
}
