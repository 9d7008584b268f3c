/**
 * Size parsing with exactly the grammar of nbdkit_parse_size: an optionally signed decimal
 * integer followed by at most one scale letter, b (1), s (512-byte sectors), or k, m, g, t, p, e
 * (powers of 1024), in either case. "10KiB", "1.5M" and hex are refused, as nbdkit refuses them.
 */
import { PluginError } from './plugin.js';

const SCALE: Readonly<Record<string, bigint>> = {
  '': 1n,
  b: 1n,
  s: 512n,
  k: 1n << 10n,
  m: 1n << 20n,
  g: 1n << 30n,
  t: 1n << 40n,
  p: 1n << 50n,
  e: 1n << 60n,
};

/** The largest size nbdkit accepts: INT64_MAX. */
export const MAX_SIZE = (1n << 63n) - 1n;

// strtoimax's view of a number: leading white space, an optional sign, decimal digits.
const NUMBER_PATTERN = /^[ \t\n\v\f\r]*([+-]?\d+)(.*)$/s;

/** Parse a size, throwing PluginError(EINVAL) with nbdkit's wording when it is not one. */
export function parseSize(text: string): bigint {
  const match = NUMBER_PATTERN.exec(text);
  if (!match) throw new PluginError(`could not parse size string (${text})`, 'EINVAL');
  const [, digits, suffix] = match;
  const value = BigInt(digits);
  if (value < 0n) throw new PluginError(`size cannot be negative (${text})`, 'EINVAL');
  if (value > MAX_SIZE) throw new PluginError(`size (${text}) exceeds maximum value`, 'ERANGE');
  const scale = suffix.length <= 1 ? SCALE[suffix.toLowerCase()] : undefined;
  if (scale === undefined) throw new PluginError(`could not parse size: unknown suffix '${suffix}'`, 'EINVAL');
  if (value * scale > MAX_SIZE) throw new PluginError(`overflow computing size (${text})`, 'ERANGE');
  return value * scale;
}
