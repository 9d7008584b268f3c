/**
 * errno names and numbers, and their mapping onto the NBD protocol's error values.
 *
 * Plugins name errors the way their language does: Python and Tcl scripts pass a number
 * (errno.ENOSPC), shell scripts print a name (ENOSPC). Node's os.constants.errno is the
 * platform's own table, so both directions agree with what the C library would say.
 */
import { constants } from 'node:os';

const errnoByName: Readonly<Record<string, number>> = constants.errno;
const nameByErrno = new Map<number, string>();
for (const [name, value] of Object.entries(errnoByName)) {
  // Several names can share a number (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP); keep the first.
  if (!nameByErrno.has(value)) nameByErrno.set(value, name);
}

/** The NBD error values of the specification (doc/proto.md, "Error values"). */
export const NbdError = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;
export type NbdError = (typeof NbdError)[keyof typeof NbdError];

export function isErrnoName(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(errnoByName, name);
}

export function errnoNumber(name: string): number | undefined {
  return isErrnoName(name) ? errnoByName[name] : undefined;
}

export function errnoName(value: number): string | undefined {
  return nameByErrno.get(value);
}

/**
 * The NBD error a client sees for a plugin's errno, the way nbdkit maps them: errors with an
 * NBD equivalent pass through, a few are folded onto their nearest NBD value, and anything else
 * becomes EINVAL (nbdkit's default). EOVERFLOW exists on the wire only with structured replies.
 */
export function nbdErrorFor(errno: string, structuredReplies: boolean): NbdError {
  switch (errno) {
    case 'EPERM':
    case 'EROFS':
      return NbdError.EPERM;
    case 'EIO':
      return NbdError.EIO;
    case 'ENOMEM':
      return NbdError.ENOMEM;
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return NbdError.ENOSPC;
    case 'ESHUTDOWN':
      return NbdError.ESHUTDOWN;
    case 'ENOTSUP':
    case 'EOPNOTSUPP':
      return NbdError.ENOTSUP;
    case 'EOVERFLOW':
      return structuredReplies ? NbdError.EOVERFLOW : NbdError.EINVAL;
    default:
      return NbdError.EINVAL;
  }
}

/** errno number and strerror-like text of a failed node:fs call. */
export function describeFsError(e: unknown): { errno: number; text: string } {
  const err = e as NodeJS.ErrnoException;
  const errno = typeof err.errno === 'number' ? Math.abs(err.errno) : 5;
  // node's messages read "ENOENT: no such file or directory, open 'x'"; keep the middle part,
  // capitalised as the C library's strerror() spells it.
  const match = /^[A-Z0-9_]+: ([^,]+)/.exec(err.message ?? '');
  const raw = match ? match[1] : String(err.message ?? e);
  return { errno, text: raw.charAt(0).toUpperCase() + raw.slice(1) };
}
