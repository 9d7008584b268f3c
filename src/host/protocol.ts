/**
 * Wire constants of the NBD protocol (fixed newstyle), as named in the specification
 * (NetworkBlockDevice/nbd doc/proto.md). Only values; encoding lives with its user.
 */

export const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const REPLY_MAGIC_OPTION = 0x3e889045565a9n;

export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags sent by the server. */
export const HandshakeFlag = { FIXED_NEWSTYLE: 1 << 0, NO_ZEROES: 1 << 1 } as const;
/** Client flags. */
export const ClientFlag = { FIXED_NEWSTYLE: 1 << 0, NO_ZEROES: 1 << 1 } as const;

/** Transmission flags (16 bits, sent with the export size). */
export const TransmissionFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_RESIZE: 1 << 9,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

export const Option = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  PEEK_EXPORT: 4,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
} as const;

const ERR = 0x80000000;
export const OptionReply = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: (ERR | 1) >>> 0,
  ERR_POLICY: (ERR | 2) >>> 0,
  ERR_INVALID: (ERR | 3) >>> 0,
  ERR_PLATFORM: (ERR | 4) >>> 0,
  ERR_TLS_REQD: (ERR | 5) >>> 0,
  ERR_UNKNOWN: (ERR | 6) >>> 0,
  ERR_SHUTDOWN: (ERR | 7) >>> 0,
  ERR_BLOCK_SIZE_REQD: (ERR | 8) >>> 0,
  ERR_TOO_BIG: (ERR | 9) >>> 0,
} as const;

export const Info = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

export const Command = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
} as const;

export const CommandFlag = {
  FUA: 1 << 0,
  NO_HOLE: 1 << 1,
  DF: 1 << 2,
  REQ_ONE: 1 << 3,
  FAST_ZERO: 1 << 4,
} as const;

export const ReplyType = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  ERROR: (1 << 15) + 1,
  ERROR_OFFSET: (1 << 15) + 2,
} as const;

export const ReplyFlag = { DONE: 1 << 0 } as const;

/** The meta context this server offers, and the id it is given on the wire. */
export const BASE_ALLOCATION = 'base:allocation';
export const BASE_ALLOCATION_ID = 1;

/** nbdkit's limits: the largest read or write, and the largest option payload accepted. */
export const MAX_REQUEST_SIZE = 64 * 1024 * 1024;
export const MAX_OPTION_SIZE = MAX_REQUEST_SIZE;
/** How many options a client may send before it must choose an export (nbdkit: 32). */
export const MAX_OPTIONS = 32;
/** Export names and other strings are limited to 4096 bytes by the specification. */
export const MAX_STRING = 4096;

/** A command's name as nbdkit logs it (name_of_nbd_cmd): NBD_CMD_READ, ... */
export function commandName(command: number): string {
  for (const [name, value] of Object.entries(Command)) if (value === command) return `NBD_CMD_${name}`;
  return `unknown command ${command}`;
}
