/**
 * A sparse byte array in fixed-size pages, allocated on first write and freed again when they
 * become all zeroes: the storage behind the memory plugin. Page size and the rules for freeing
 * and reporting pages follow nbdkit's sparse allocator, so that extents maps come out the same.
 */
import { ExtentType, type ExtentSink } from '../host/plugin.js';

export const PAGE_SIZE = 32768;
const PAGE_BIG = BigInt(PAGE_SIZE);

function isZero(bytes: Uint8Array): boolean {
  // Compare eight bytes at a time where alignment allows; pages are always 8-byte aligned.
  if (bytes.byteOffset % 8 === 0 && bytes.length % 8 === 0) {
    const words = new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
    for (let i = 0; i < words.length; i++) if (words[i] !== 0n) return false;
    return true;
  }
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

export class SparsePages {
  private readonly pages = new Map<number, Uint8Array>();

  /** Number of pages holding data (for debugging and tests). */
  get allocatedPages(): number {
    return this.pages.size;
  }

  /** Visit [offset, offset+length) page by page: (page index, offset in page, length, position in request). */
  private static forEachPiece(
    offset: bigint,
    length: number,
    visit: (page: number, inPage: number, n: number, done: number) => void,
  ): void {
    let page = Number(offset / PAGE_BIG);
    let inPage = Number(offset % PAGE_BIG);
    let done = 0;
    while (done < length) {
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      visit(page, inPage, n, done);
      done += n;
      page++;
      inPage = 0;
    }
  }

  read(buf: Uint8Array, offset: bigint): void {
    SparsePages.forEachPiece(offset, buf.length, (page, inPage, n, done) => {
      const data = this.pages.get(page);
      if (data) buf.set(data.subarray(inPage, inPage + n), done);
      else buf.fill(0, done, done + n);
    });
  }

  write(buf: Uint8Array, offset: bigint): void {
    SparsePages.forEachPiece(offset, buf.length, (page, inPage, n, done) => {
      let data = this.pages.get(page);
      if (!data) {
        data = new Uint8Array(PAGE_SIZE);
        this.pages.set(page, data);
      }
      data.set(buf.subarray(done, done + n), inPage);
    });
  }

  /** Zero a range, freeing every page that is then entirely zero. */
  zero(length: number, offset: bigint): void {
    SparsePages.forEachPiece(offset, length, (page, inPage, n) => {
      const data = this.pages.get(page);
      if (!data) return;
      if (n < PAGE_SIZE) data.fill(0, inPage, inPage + n);
      if (n === PAGE_SIZE || isZero(data)) this.pages.delete(page);
    });
  }

  /** Report each page piece as data, zero (allocated but zero from here on), or a hole. */
  extents(length: number, offset: bigint, sink: ExtentSink): void {
    let position = offset;
    SparsePages.forEachPiece(offset, length, (page, inPage) => {
      // nbdkit reports from the offset to the end of the page, even past the request.
      const n = PAGE_SIZE - inPage;
      const data = this.pages.get(page);
      let type: number = ExtentType.HOLE | ExtentType.ZERO;
      if (data) type = isZero(data.subarray(inPage)) ? ExtentType.ZERO : ExtentType.DATA;
      sink.add(position, BigInt(n), type);
      position += BigInt(n);
    });
  }
}
