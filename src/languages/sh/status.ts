/**
 * What a script's exit status means (nbdkit-sh-plugin(3) "Exit codes"), and how its stderr
 * chooses the errno the client sees.
 */
import { PluginError } from '../../host/plugin.js';
import type { RunResult } from './run.js';

/**
 * The statuses with a meaning, as of nbdkit 1.34; every other status (1, 9-15 which are
 * reserved, 16-255) is an error. Before 1.34, 4-8 were errors too: a script that wants the old
 * meaning can check max_known_status in --dump-plugin, as nbdkit-sh-plugin(3) says.
 */
export const ExitCode = {
  OK: 0,
  ERROR: 1,
  MISSING: 2,
  FALSE: 3,
  /** nbdkit_shutdown, then success. */
  SHUTDOWN_OK: 4,
  /** nbdkit_shutdown, then an error (ESHUTDOWN unless stderr names another). */
  SHUTDOWN_ERR: 5,
  /** nbdkit_disconnect(force): the client gets no reply. */
  DISC_FORCE: 6,
  /** nbdkit_disconnect(soft), then success. */
  DISC_SOFT_OK: 7,
  /** nbdkit_disconnect(soft), then an error (ESHUTDOWN unless stderr names another). */
  DISC_SOFT_ERR: 8,
} as const;

/** The highest status with a meaning, shown by --dump-plugin as max_known_status. */
export const MAX_KNOWN_STATUS = ExitCode.DISC_SOFT_ERR;

/** What statuses 4 to 8 ask of the server; `disconnect` applies to the current connection. */
export interface StatusEffects {
  shutdown(): void;
  disconnect(force: boolean): void;
}

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
export function parseErrorText(stderr: string, fallback = 'EIO'): ParsedError {
  let errno = fallback;
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
  effects?: StatusEffects,
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
    case ExitCode.SHUTDOWN_OK:
      effects?.shutdown();
      return 'ok';
    case ExitCode.DISC_FORCE:
      // The client will not see a reply: what the method "returned" does not matter.
      effects?.disconnect(true);
      return 'missing';
    case ExitCode.DISC_SOFT_OK:
      effects?.disconnect(false);
      return 'ok';
    default:
      break;
  }
  let fallback = 'EIO';
  if (result.status === ExitCode.SHUTDOWN_ERR) {
    effects?.shutdown();
    fallback = 'ESHUTDOWN';
  } else if (result.status === ExitCode.DISC_SOFT_ERR) {
    effects?.disconnect(false);
    fallback = 'ESHUTDOWN';
  }
  const text = result.stderr.toString('utf8');
  if (text.replace(/\n+$/, '') === '') {
    throw new PluginError(
      `${argv0}: script exited with error, but did not print an error message on stderr`,
      fallback,
    );
  }
  const parsed = parseErrorText(text, fallback);
  if (parsed.full !== undefined) debug(`${argv0}: ${parsed.full}`);
  // A bare "ENOSPC" leaves no message; name the errno rather than print an empty line.
  throw new PluginError(`${argv0}: ${parsed.message || parsed.errno}`, parsed.errno);
}
