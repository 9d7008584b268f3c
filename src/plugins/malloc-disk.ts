/**
 * The memory plugin's `allocator=malloc`: the whole disk in memory allocated at start, as
 * nbdkit's malloc allocator reserves it, with no holes (every extent reads as data). With
 * `mlock=true` the memory is locked (mlock(2)) so that it is never swapped out.
 *
 * A typed array holds at most 4 GiB in Node 20, so the disk is cut into chunks of 1 GiB.
 */
import { ExtentType, type ExtentSink } from '../host/plugin.js';
import type { RamDisk } from './ram-disk.js';

const CHUNK_SIZE = 2 ** 30;

export class MallocDisk implements RamDisk {
  readonly fd = undefined;
  private readonly chunks: Uint8Array[] = [];

  /**
   * Allocate `size` bytes (zeroed); `lock` locks each chunk in memory. Throws a one-line reason
   * when the memory cannot be had.
   */
  constructor(
    size: bigint,
    lock?: (chunk: Uint8Array) => void,
  ) {
    for (let left = size; left > 0n; left -= BigInt(CHUNK_SIZE)) {
      const length = left < BigInt(CHUNK_SIZE) ? Number(left) : CHUNK_SIZE;
      let chunk: Uint8Array;
      try {
        chunk = new Uint8Array(length);
      } catch (error) {
        throw new Error(`allocator=malloc: cannot allocate ${size} bytes: ${(error as Error).message}`);
      }
      lock?.(chunk);
      this.chunks.push(chunk);
    }
  }

  /** Call `each(chunk, offsetInChunk, doneSoFar, n)` for the pieces of a range, in order. */
  private pieces(count: number, offset: bigint, each: (chunk: Uint8Array, at: number, done: number, n: number) => void): void {
    let index = Number(offset / BigInt(CHUNK_SIZE));
    let at = Number(offset % BigInt(CHUNK_SIZE));
    for (let done = 0; done < count; index++, at = 0) {
      const chunk = this.chunks[index];
      const n = Math.min(chunk.length - at, count - done);
      each(chunk, at, done, n);
      done += n;
    }
  }

  read(buf: Uint8Array, offset: bigint): void {
    this.pieces(buf.length, offset, (chunk, at, done, n) => buf.set(chunk.subarray(at, at + n), done));
  }

  views(count: number, offset: bigint): Uint8Array[] {
    const parts: Uint8Array[] = [];
    this.pieces(count, offset, (chunk, at, _done, n) => parts.push(chunk.subarray(at, at + n)));
    return parts;
  }

  write(buf: Uint8Array, offset: bigint): void {
    this.pieces(buf.length, offset, (chunk, at, done, n) => chunk.set(buf.subarray(done, done + n), at));
  }

  zero(length: number, offset: bigint): void {
    this.pieces(length, offset, (chunk, at, _done, n) => chunk.fill(0, at, at + n));
  }

  /** No holes: the whole disk is allocated, so all of it is data. */
  extents(length: number, offset: bigint, sink: ExtentSink): void {
    sink.add(offset, BigInt(length), ExtentType.DATA);
  }
}
