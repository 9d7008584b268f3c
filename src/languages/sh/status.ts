/**
 * What a script's exit status means (nbdkit-sh-plugin(3) "Exit codes"), and how its stderr
 * chooses the errno the client sees.
 */
import { PluginError } from '../../host/plugin.js';
import type { RunResult } from './run.js';

/** The statuses with a meaning; every other status (1, 4-255) is an error. */
export const ExitCode = { OK: 0, ERROR: 1, MISSING: 2, FALSE: 3 } as const;

/** The highest status with a meaning, shown by --dump-plugin as max_known_status. */
export const MAX_KNOWN_STATUS = ExitCode.FALSE;

export type Outcome = 'ok' | 'missing' | 'false';

/**
 * The errno names a script may print first on stderr: those with an NBD equivalent, plus the
 * ones the server folds onto one (EROFS, EDQUOT, EFBIG). Anything else is EIO, as in nbdkit.
 */
const KNOWN_ERRNOS = [
  'EPERM', 'EIO', 'ENOMEM', 'EINVAL', 'ENOSPC', 'EOVERFLOW', 'ESHUTDOWN',
  'EOPNOTSUPP', 'ENOTSUP', 'EROFS', 'EDQUOT', 'EFBIG',
] as const;

export interface ParsedError {
  readonly errno: string;
  /** The first line of the message, after the errno name. */
  readonly message: string;
  /** The whole stderr when it had more than one line (for the debug log). */
  readonly full?: string;
}

/** Parse "ENOSPC Out of space\n..." the way nbdkit does (case-insensitive, whole word). */
export function parseErrorText(stderr: string): ParsedError {
  let errno = 'EIO';
  let rest = stderr;
  const upper = stderr.slice(0, 10).toUpperCase();
  const name = KNOWN_ERRNOS.find((n) => upper.startsWith(n));
  if (name !== undefined) {
    const after = stderr.slice(name.length);
    // "EINVALID" is not EINVAL: the name must end the text or be followed by whitespace.
    if (after === '' || /^\s/.test(after)) {
      errno = name;
      rest = after.replace(/^\s+/, '');
    }
  }
  const trimmed = rest.replace(/\n+$/, '');
  const newline = trimmed.indexOf('\n');
  if (newline < 0) return { errno, message: trimmed };
  return { errno, message: trimmed.slice(0, newline), full: stderr.replace(/\n+$/, '') };
}

/**
 * Turn a finished run into an outcome, or throw the PluginError the client should see.
 * `debug` receives the full text of multi-line error output, as nbdkit logs it.
 */
export function interpretResult(
  argv0: string,
  result: RunResult,
  debug: (message: string) => void,
): Outcome {
  if (result.failure !== undefined) {
    throw new PluginError(`${argv0}: ${result.failure}`, 'EIO');
  }
  if (result.signal !== undefined) {
    throw new PluginError(`${argv0}: script terminated by signal ${result.signal}`, 'EIO');
  }
  switch (result.status) {
    case ExitCode.OK:
      return 'ok';
    case ExitCode.MISSING:
      return 'missing';
    case ExitCode.FALSE:
      return 'false';
    default:
      break;
  }
  const text = result.stderr.toString('utf8');
  if (text.replace(/\n+$/, '') === '') {
    throw new PluginError(
      `${argv0}: script exited with error, but did not print an error message on stderr`,
      'EIO',
    );
  }
  const parsed = parseErrorText(text);
  if (parsed.full !== undefined) debug(`${argv0}: ${parsed.full}`);
  // A bare "ENOSPC" leaves no message; name the errno rather than print an empty line.
  throw new PluginError(`${argv0}: ${parsed.message || parsed.errno}`, parsed.errno);
}
