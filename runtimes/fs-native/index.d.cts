/** fallocate, SEEK_DATA/SEEK_HOLE and SO_SNDBUF, or null when the addon could not be built. */
declare const binding: {
  punchHole(fd: number, offset: bigint, length: bigint): void;
  zeroRange(fd: number, offset: bigint, length: bigint): void;
  /** The next data offset at or after offset, or -1n when there is none. */
  seekData(fd: number, offset: bigint): bigint;
  /** The next hole offset at or after offset (end of file counts), or -1n past the end. */
  seekHole(fd: number, offset: bigint): bigint;
  /** Ask for a socket send buffer of `bytes`; returns what the kernel granted (it doubles it). */
  setSendBuffer(fd: number, bytes: number): number;
} | null;
export = binding;
