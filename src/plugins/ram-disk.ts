/**
 * What the memory plugin keeps its disk in, and the page rules both kinds share. nbdkit's sparse
 * allocator works in 32 KiB pages: a page is allocated by any write to it and freed when a zero
 * or trim leaves it all zero, and extents are reported page by page. Both kinds follow those
 * rules so that extents maps come out as native nbdkit's do.
 */
import type { ExtentSink } from '../host/plugin.js';

export const PAGE_SIZE = 32768;

export interface RamDisk {
  /** Fill all of buf with the bytes at offset. */
  read(buf: Uint8Array, offset: bigint): void;
  /** The bytes at offset as views (Plugin.pread_view), valid until the next call: JavaScript pages only. */
  views?(count: number, offset: bigint): Uint8Array[];
  write(buf: Uint8Array, offset: bigint): void;
  /** Zero a range, freeing every page that is then entirely zero. */
  zero(length: number, offset: bigint): void;
  /** Report each page piece as data, zero (allocated but zero from here on), or a hole. */
  extents(length: number, offset: bigint, sink: ExtentSink): void;
  /** A file holding the disk at the same offsets, to send read replies from and for the request thread to write. */
  readonly fd: number | undefined;
}

/** Page index and offset within the page. Offsets past 2^53 take the exact BigInt route. */
export function locate(offset: bigint): [page: number, inPage: number] {
  if (offset <= BigInt(Number.MAX_SAFE_INTEGER)) {
    const n = Number(offset);
    return [Math.floor(n / PAGE_SIZE), n % PAGE_SIZE];
  }
  const size = BigInt(PAGE_SIZE);
  return [Number(offset / size), Number(offset % size)];
}
