/** The thread of one connection, as startRequestReader returns it. */
declare const requestReaderBrand: unique symbol;
type RequestReader = { readonly [requestReaderBrand]: true };

/** A memory file, as createMemoryFile returns it. */
declare const memoryFileBrand: unique symbol;
type MemoryFile = { readonly [memoryFileBrand]: true };

/**
 * fallocate, SEEK_DATA/SEEK_HOLE, SO_SNDBUF, sendfile and sendmsg, the request-reader thread and
 * memory files.
 */
type Binding = {
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
  /** mlock(2) the memory of `buffer`; throws an Error with `code` (say EPERM or ENOMEM) on failure. */
  lockMemory(buffer: Uint8Array): void;
  /** posix_fadvise(2): advice 0 normal, 1 random, 2 sequential, 4 dontneed. */
  fadvise(fd: number, offset: bigint, length: bigint, advice: number): void;
  /** sync_file_range(2): flags 1 wait before, 2 write, 4 wait after. */
  syncFileRange(fd: number, offset: bigint, length: bigint, flags: number): void;
  /**
   * Receive NBD requests on the socket on a thread of the addon (request_reader.c); the event
   * loop must no longer read the socket. `deliver` is called in stream order with `bytes`:
   * - the headers of requests; or a write's header followed by its payload, unless the payload
   *   is in lent buffer `slot` (then `payloadLength` bytes of it);
   * - with `slot` -3 (and null): the thread wrote requests to `target` itself, whose headers
   *   takeWrittenRequests() hands out. It does so for each write that needs no checking: flags
   *   at most FUA when `fua`, within `size` and `maxLength`; FUA is an fdatasync. With a
   *   target, the thread sends the successful replies itself whenever the event loop has not
   *   claimed the socket's output (claimReplyOutput), which it has at the start; only the
   *   others are told of this way;
   *   When `reads`, reads with no flags within `size` and `maxLength` are sent by the thread
   *   itself from `target` (a simple reply, or a structured one when `structured`) while it has
   *   the output; they never reach `deliver`;
   * - with `slot` -2, the header of one such write, with `errorCode` and `message` if it failed;
   * - with `slot` -4 (and null): the output a claim was refused is free;
   * - at the end null, with the errno name after a failure.
   */
  startRequestReader(
    socketFd: number,
    deliver: (
      bytes: Buffer | null,
      slot: number,
      payloadLength: number,
      errorCode: string | undefined,
      message: string | undefined,
    ) => void,
    target?: { fd: number; size: bigint; fua: boolean; maxLength: number; reads: boolean; structured: boolean },
  ): RequestReader;
  /** Let payloads be received into `buffer`; returns its slot, or -1 when there are enough. */
  lendRequestBuffer(reader: RequestReader, buffer: Uint8Array): number;
  /** The payload delivered in `slot` is no longer used: the slot may be filled again. */
  returnRequestBuffer(reader: RequestReader, slot: number): void;
  /** The headers of the writes the thread did since the last call, or null when there are none. */
  takeWrittenRequests(reader: RequestReader): Buffer | null;
  /**
   * Whether the event loop may queue bytes on the socket now (with a write target): if so, it
   * holds the output until releaseReplyOutput, and the thread leaves its replies to it. If not,
   * the thread has reply bytes the socket has not taken yet, and delivers slot -4 once it has none.
   */
  claimReplyOutput(reader: RequestReader): boolean;
  /** The event loop has nothing queued on the socket any more: the thread may send its replies. */
  releaseReplyOutput(reader: RequestReader): void;
  /**
   * A memfd of `size` bytes, all holes, mapped shared for as long as `file` (or a request
   * reader writing to it) lives: the memory plugin's disk. A request reader given `fd` as its
   * write target copies payloads into the mapping, and sendReply sends from it. `fd` is for
   * pread and punchHole; it is closed with the file.
   */
  createMemoryFile(name: string, size: bigint): { file: MemoryFile; fd: number };
  /** Copy `data` into the memory file at `offset`, through its mapping; ENOSPC past its end. */
  writeMemoryFile(file: MemoryFile, data: Uint8Array, offset: bigint): void;
  /**
   * The memory file's pages of `pageSize` bytes (a multiple of 4 KiB), from the one holding
   * `offset`, into `states`, one per page: 0 when no part of the page holds data; else 1 when it
   * is zero from `offset` (the first page) or its start (the others) to its end; else 2.
   */
  memoryFilePages(file: MemoryFile, offset: bigint, pageSize: number, states: Uint8Array): void;
  /** Receive no further request until resumed. */
  pauseRequestReader(reader: RequestReader): void;
  resumeRequestReader(reader: RequestReader): void;
  /**
   * End the thread: it delivers nothing it has not already queued, not even the end. Returns how
   * many reads it sent itself.
   */
  stopRequestReader(reader: RequestReader): number;
  /**
   * SO_PEERCRED of a Unix socket: the peer's [pid, uid, gid]. Throws an Error with `code`
   * EAFNOSUPPORT for a socket that is not AF_UNIX (TCP cannot tell), ENOTSOCK for a non-socket.
   */
  peerCredentials(socketFd: number): [number, number, number];
  /** SO_PEERSEC: the peer's security label; throws (code ENOPROTOOPT) where no security module gives one. */
  peerSecurityContext(socketFd: number): string;
};

/** What index.cjs found: the addon, or null (origin 'none') when none loads. */
declare const loaded: {
  binding: Binding | null;
  /** The prebuilt binary of the package, a local node-gyp build, or none. */
  origin: 'prebuilt' | 'built' | 'none';
  /** The file loaded. */
  path: string | undefined;
  /** The candidates that were there but did not load, with why. */
  failures: string[];
};
declare namespace loaded {
  export type { Binding, MemoryFile, RequestReader };
}
export = loaded;
