/**
 * A sparse byte array in fixed-size pages, allocated on first write and freed again when they
 * become all zeroes: the memory plugin's disk when there is no memory file (memory-file.ts), as
 * without the addon or for a disk too large to map. Pages follow nbdkit's rules (ram-disk.ts).
 *
 * Pages are carved out of larger slabs and recycled through a free list: one ArrayBuffer per
 * 32 KiB page made major garbage collections slow on a disk of many thousand pages.
 */
import { ExtentType, type ExtentSink } from '../host/plugin.js';
import { locate, PAGE_SIZE, type RamDisk } from './ram-disk.js';

const PAGES_PER_SLAB = 64;
/** What a page never written reads as (never written to itself). */
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

function isZero(bytes: Uint8Array): boolean {
  // memcmp against zeroes, a page at a time, beats any loop in JavaScript.
  for (let done = 0; done < bytes.length; done += PAGE_SIZE) {
    const piece = bytes.subarray(done, done + PAGE_SIZE);
    if (Buffer.compare(piece, ZERO_PAGE.subarray(0, piece.length)) !== 0) return false;
  }
  return true;
}

/**
 * When pages are freed. nbdkit's sparse allocator frees a page whenever it becomes all zero by
 * a zero, or by a blit (the data plugin's copy of one disk into another); its zstd allocator
 * frees only pages that a zero covers whole, and never after a blit.
 */
export interface PageRules {
  freePartlyZeroedPages: boolean;
  freeZeroPagesAfterBlit: boolean;
}

const SPARSE_RULES: PageRules = { freePartlyZeroedPages: true, freeZeroPagesAfterBlit: true };

export class SparsePages implements RamDisk {
  readonly fd = undefined;

  private readonly pages = new Map<number, Uint8Array>();
  private readonly freePages: Uint8Array[] = [];

  constructor(private readonly rules: PageRules = SPARSE_RULES) {}

  /** Number of pages holding data (for debugging and tests). */
  get allocatedPages(): number {
    return this.pages.size;
  }

  private newPage(): Uint8Array {
    const recycled = this.freePages.pop();
    if (recycled) return recycled.fill(0);
    const slab = new ArrayBuffer(PAGE_SIZE * PAGES_PER_SLAB);
    for (let i = PAGES_PER_SLAB - 1; i > 0; i--) this.freePages.push(new Uint8Array(slab, i * PAGE_SIZE, PAGE_SIZE));
    return new Uint8Array(slab, 0, PAGE_SIZE);
  }

  private freePage(page: number, data: Uint8Array): void {
    this.pages.delete(page);
    this.freePages.push(data);
  }

  read(buf: Uint8Array, offset: bigint): void {
    let [page, inPage] = locate(offset);
    for (let done = 0; done < buf.length; page++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, buf.length - done);
      const data = this.pages.get(page);
      if (data) buf.set(data.subarray(inPage, inPage + n), done);
      else buf.fill(0, done, done + n);
      done += n;
    }
  }

  /**
   * The bytes at offset as views of the pages (zeroes for pages never written), valid until the
   * next write, zero or trim.
   */
  views(count: number, offset: bigint): Uint8Array[] {
    const parts: Uint8Array[] = [];
    let [page, inPage] = locate(offset);
    for (let done = 0; done < count; page++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, count - done);
      parts.push((this.pages.get(page) ?? ZERO_PAGE).subarray(inPage, inPage + n));
      done += n;
    }
    return parts;
  }

  write(buf: Uint8Array, offset: bigint): void {
    let [page, inPage] = locate(offset);
    for (let done = 0; done < buf.length; page++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, buf.length - done);
      let data = this.pages.get(page);
      if (!data) {
        data = this.newPage();
        this.pages.set(page, data);
      }
      data.set(buf.subarray(done, done + n), inPage);
      done += n;
    }
  }

  zero(length: number, offset: bigint): void {
    let [page, inPage] = locate(offset);
    for (let done = 0; done < length; page++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      const data = this.pages.get(page);
      if (data) {
        if (n < PAGE_SIZE) data.fill(0, inPage, inPage + n);
        if (n === PAGE_SIZE || (this.rules.freePartlyZeroedPages && isZero(data))) this.freePage(page, data);
      }
      done += n;
    }
  }

  /** Whether no page in [offset, offset+length) is allocated. */
  isHole(length: number, offset: bigint): boolean {
    let [page, inPage] = locate(offset);
    for (let done = 0; done < length; page++, inPage = 0) {
      if (this.pages.has(page)) return false;
      done += PAGE_SIZE - inPage;
    }
    return true;
  }

  /** Set length bytes to `byte`: zero (freeing pages) for 0, else a write that allocates. */
  fill(byte: number, length: number, offset: bigint): void {
    if (byte === 0) return this.zero(length, offset);
    let [page, inPage] = locate(offset);
    for (let done = 0; done < length; page++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      let data = this.pages.get(page);
      if (!data) {
        data = this.newPage();
        this.pages.set(page, data);
      }
      data.fill(byte, inPage, inPage + n);
      done += n;
    }
  }

  /**
   * Copy length bytes of `source` at sourceOffset to destOffset, page by page of this disk,
   * freeing (or not allocating) a page that ends up all zero, as the rules say.
   */
  blit(source: SparsePages, length: number, sourceOffset: bigint, destOffset: bigint): void {
    let [page, inPage] = locate(destOffset);
    let from = sourceOffset;
    for (let done = 0; done < length; page++, inPage = 0) {
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      let data = this.pages.get(page);
      // A hole copied onto a hole leaves a hole: the page would be allocated and freed at once.
      if (!(data === undefined && this.rules.freeZeroPagesAfterBlit && source.isHole(n, from))) {
        if (!data) {
          data = this.newPage();
          this.pages.set(page, data);
        }
        const piece = data.subarray(inPage, inPage + n);
        source.read(piece, from);
        if (this.rules.freeZeroPagesAfterBlit && isZero(piece) && isZero(data)) this.freePage(page, data);
      }
      from += BigInt(n);
      done += n;
    }
  }

  extents(length: number, offset: bigint, sink: ExtentSink): void {
    let [page, inPage] = locate(offset);
    let position = offset;
    for (let done = 0; done < length; page++, inPage = 0) {
      // nbdkit reports from the offset to the end of the page, even past the request.
      const n = PAGE_SIZE - inPage;
      const data = this.pages.get(page);
      let type: number = ExtentType.HOLE | ExtentType.ZERO;
      if (data) type = isZero(data.subarray(inPage)) ? ExtentType.ZERO : ExtentType.DATA;
      sink.add(position, BigInt(n), type);
      position += BigInt(n);
      done += n;
    }
  }
}
