/**
 * The memory plugin's `allocator=zstd`: the sparse allocator's pages (ram-disk.ts), each kept
 * compressed with Zstandard, as nbdkit's zstd allocator does. A disk of compressible data takes
 * a fraction of its size in memory; every read and write of a page pays for (de)compressing it.
 */
import { ExtentType, type ExtentSink } from '../host/plugin.js';
import { locate, PAGE_SIZE, type RamDisk } from './ram-disk.js';
import type { Zstd } from './zstd.js';

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

function isZero(bytes: Uint8Array): boolean {
  return Buffer.compare(bytes, ZERO_PAGE.subarray(0, bytes.length)) === 0;
}

export class ZstdPages implements RamDisk {
  readonly fd = undefined;

  /** Compressed pages by index; a page not here is all zero and unallocated. */
  private readonly pages = new Map<number, Uint8Array>();
  /** Where one page is decompressed while it is read or changed. */
  private readonly page = new Uint8Array(PAGE_SIZE);

  constructor(private readonly zstd: Zstd) {}

  /** Number of pages holding data (for tests). */
  get allocatedPages(): number {
    return this.pages.size;
  }

  /** Page `index` decompressed into this.page, or undefined when it is not allocated. */
  private load(index: number): Uint8Array | undefined {
    const frame = this.pages.get(index);
    if (!frame) return undefined;
    this.zstd.decompress(frame, this.page);
    return this.page;
  }

  read(buf: Uint8Array, offset: bigint): void {
    let [index, inPage] = locate(offset);
    for (let done = 0; done < buf.length; index++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, buf.length - done);
      const data = this.load(index);
      if (data) buf.set(data.subarray(inPage, inPage + n), done);
      else buf.fill(0, done, done + n);
      done += n;
    }
  }

  write(buf: Uint8Array, offset: bigint): void {
    let [index, inPage] = locate(offset);
    for (let done = 0; done < buf.length; index++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, buf.length - done);
      const piece = buf.subarray(done, done + n);
      if (n === PAGE_SIZE) {
        this.pages.set(index, this.zstd.compress(piece));
      } else {
        if (!this.load(index)) this.page.fill(0);
        this.page.set(piece, inPage);
        this.pages.set(index, this.zstd.compress(this.page));
      }
      done += n;
    }
  }

  zero(length: number, offset: bigint): void {
    let [index, inPage] = locate(offset);
    for (let done = 0; done < length; index++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      if (n === PAGE_SIZE) {
        this.pages.delete(index);
      } else {
        const data = this.load(index);
        if (data) {
          data.fill(0, inPage, inPage + n);
          if (isZero(data)) this.pages.delete(index);
          else this.pages.set(index, this.zstd.compress(data));
        }
      }
      done += n;
    }
  }

  extents(length: number, offset: bigint, sink: ExtentSink): void {
    let [index, inPage] = locate(offset);
    let position = offset;
    for (let done = 0; done < length; index++, inPage = 0) {
      // As the sparse pages: from the offset to the end of its page, even past the request.
      const n = PAGE_SIZE - inPage;
      const data = this.load(index);
      let type: number = ExtentType.HOLE | ExtentType.ZERO;
      if (data) type = isZero(data.subarray(inPage)) ? ExtentType.ZERO : ExtentType.DATA;
      sink.add(position, BigInt(n), type);
      position += BigInt(n);
      done += n;
    }
  }
}
