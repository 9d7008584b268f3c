/** Setting V8's tuning flags from inside the server. */
import { setFlagsFromString } from 'node:v8';

/**
 * Set the V8 flag `--name=value`, unless the user chose a value for it (on node's command line or
 * in NODE_OPTIONS), or V8 is a version not known to have the tiering flags set here (an unknown
 * flag prints an error).
 */
export function setV8FlagUnlessChosen(name: string, value: number): void {
  const major = Number(process.versions.v8.split('.')[0]);
  if (!(major >= 10 && major <= 14)) return;
  const chosen = new RegExp(`^--${name.replace(/-/g, '[-_]')}(=|$)`);
  const userFlags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (userFlags.some((flag) => chosen.test(flag))) return;
  setFlagsFromString(`--${name}=${value}`);
}
