/** fallocate, SEEK_DATA/SEEK_HOLE, SO_SNDBUF, sendfile and sendmsg, or null when the addon could not be built. */
declare const binding: {
  punchHole(fd: number, offset: bigint, length: bigint): void;
  zeroRange(fd: number, offset: bigint, length: bigint): void;
  /** The next data offset at or after offset, or -1n when there is none. */
  seekData(fd: number, offset: bigint): bigint;
  /** The next hole offset at or after offset (end of file counts), or -1n past the end. */
  seekHole(fd: number, offset: bigint): bigint;
  /** Ask for a socket send buffer of `bytes`; returns what the kernel granted (it doubles it). */
  setSendBuffer(fd: number, bytes: number): number;
  /**
   * Send `header` then `count` bytes of fileFd from `offset` on a non-blocking socket. Returns
   * the bytes of header and data sent; when that is short, the unsent data is in `spill` (from
   * its start). Throws an Error with `code` and `sent` (bytes that left before the failure).
   */
  sendReply(socketFd: number, header: Buffer, fileFd: number, offset: bigint, count: number, spill: Buffer): number;
  /**
   * Send `header` then the `parts` (at most 64) on a non-blocking socket, as far as it takes
   * them now. Returns the bytes sent; throws an Error with `code` and `sent` (bytes that left
   * before the failure).
   */
  sendBuffers(socketFd: number, header: Uint8Array, parts: Uint8Array[]): number;
  /**
   * Read what arrives on a non-blocking socket into `buffer`: polling without sleeping for up
   * to `spinMicros`, then sleeping in a blocking recv for up to `timeoutMicros` more. Returns the
   * bytes read, or 0 when none came in time or the socket ended or failed (the event loop's own
   * read then sees the end or the error).
   */
  receiveWithin(socketFd: number, buffer: Uint8Array, spinMicros: number, timeoutMicros: number): number;
} | null;
export = binding;
