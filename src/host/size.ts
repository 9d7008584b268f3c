/**
 * Size parsing with the grammar of nbdkit_parse_size: a decimal number (optionally in
 * exponent-free floating form is NOT accepted, as in nbdkit) followed by an optional scale
 * suffix. Suffixes are powers of 1024: b (1), k/K, m/M, g/G, t/T, p/P, e/E, optionally followed
 * by "iB" or "B" for the binary-prefix spellings, plus the SI forms kB/KB... which nbdkit also
 * treats as powers of 1024. A bare "s" is a 512-byte sector, and "%" is not a size.
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

const SIZE_PATTERN = /^\s*(\d+)\s*([bBsSkKmMgGtTpPeE]?)(iB|B)?\s*$/;

/** Parse a size, throwing PluginError(EINVAL) with nbdkit's wording when it is not one. */
export function parseSize(text: string, what = 'size'): bigint {
  const match = SIZE_PATTERN.exec(text);
  if (!match) throw new PluginError(`could not parse ${what} string (${text})`, 'EINVAL');
  const [, digits, suffix, tail] = match;
  // "512B" is bytes, "1iB" is meaningless: nbdkit only allows iB/B after a real scale.
  if (tail !== undefined && (suffix === '' || /[bBsS]/.test(suffix))) {
    throw new PluginError(`could not parse ${what} string (${text})`, 'EINVAL');
  }
  const value = BigInt(digits) * SCALE[suffix.toLowerCase()];
  if (value > MAX_SIZE) {
    throw new PluginError(`${what} (${text}) too large`, 'ERANGE');
  }
  return value;
}
