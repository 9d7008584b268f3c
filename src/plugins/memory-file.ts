/**
 * The memory plugin's disk as a memory file of the fs-native addon: a memfd mapped once for the
 * server's life (memory_file.c). Its descriptor serves as the plugin's read source and write
 * target, so that reads are sent from the mapping in one system call and the thread receiving a
 * connection's requests copies write payloads into it and replies itself, where the event loop
 * would otherwise copy each one into pages and reply.
 *
 * The kernel allocates the file 4 KiB at a time; nbdkit's rules are in 32 KiB pages
 * (ram-disk.ts). So a 32 KiB page counts as allocated when any part of it holds file data, and a
 * zero that leaves a page all zero punches out the whole page.
 */
import { fsNative } from '../host/fs-native.js';
import { ExtentType, type ExtentSink } from '../host/plugin.js';
import { locate, PAGE_SIZE, type RamDisk } from './ram-disk.js';
import { readFullySync } from './read-fully.js';

type Native = NonNullable<typeof fsNative>;
type MemoryFileHandle = ReturnType<Native['createMemoryFile']>['file'];

/**
 * The largest disk mapped. Mapping reserves only address space (128 TiB in all on x86-64), but
 * a disk larger than this is a sparse test disk, where the mapping buys nothing.
 */
const MAPPED_MAX = 2n ** 44n;

/** memoryFilePages' states, as extents. */
const EXTENT_OF_STATE = [ExtentType.HOLE | ExtentType.ZERO, ExtentType.ZERO, ExtentType.DATA];
const PAGE_ZERO = 1;

/** The disk as a memory file, or undefined when it cannot be one (then use SparsePages). */
export function openMemoryFile(size: bigint): MemoryFile | undefined {
  if (fsNative === null || size > MAPPED_MAX) return undefined;
  try {
    const { file, fd } = fsNative.createMemoryFile('nbdkit-ts memory', size);
    return new MemoryFile(fsNative, file, fd);
  } catch {
    // Say, no memfd in this kernel, or no address space left: the pages in JavaScript do.
    return undefined;
  }
}

export class MemoryFile implements RamDisk {
  private readonly onePage = new Uint8Array(1);

  constructor(
    private readonly native: Native,
    private readonly file: MemoryFileHandle,
    readonly fd: number,
  ) {}

  read(buf: Uint8Array, offset: bigint): void {
    // pread, not the mapping: reading a hole through a shared mapping would allocate a page.
    // (The file is exactly the disk's size, so reads never reach its end.)
    readFullySync(this.fd, buf, offset);
  }

  write(buf: Uint8Array, offset: bigint): void {
    this.native.writeMemoryFile(this.file, buf, offset);
  }

  zero(length: number, offset: bigint): void {
    // Disks are at most MAPPED_MAX, so offsets are exact as numbers.
    const start = Number(offset);
    const end = start + length;
    const firstWhole = Math.ceil(start / PAGE_SIZE) * PAGE_SIZE;
    const lastWhole = Math.floor(end / PAGE_SIZE) * PAGE_SIZE;
    if (firstWhole > lastWhole) {
      this.zeroInPage(start, end);
      return;
    }
    if (start < firstWhole) this.zeroInPage(start, firstWhole);
    if (firstWhole < lastWhole) this.punch(firstWhole, lastWhole - firstWhole);
    if (lastWhole < end) this.zeroInPage(lastWhole, end);
  }

  extents(length: number, offset: bigint, sink: ExtentSink): void {
    const inPage = locate(offset)[1];
    const states = new Uint8Array(Math.ceil((inPage + length) / PAGE_SIZE));
    this.native.memoryFilePages(this.file, offset, PAGE_SIZE, states);
    let position = offset;
    for (let i = 0; i < states.length; i++) {
      // nbdkit reports from the offset to the end of the page, even past the request.
      const n = BigInt(PAGE_SIZE - (i === 0 ? inPage : 0));
      sink.add(position, n, EXTENT_OF_STATE[states[i]]);
      position += n;
    }
  }

  /** Zero [start, end) within one page; free the page if that leaves it all zero. */
  private zeroInPage(start: number, end: number): void {
    this.punch(start, end - start);
    const pageStart = start - (start % PAGE_SIZE);
    this.native.memoryFilePages(this.file, BigInt(pageStart), PAGE_SIZE, this.onePage);
    if (this.onePage[0] === PAGE_ZERO) this.punch(pageStart, PAGE_SIZE);
  }

  /** Punching a hole zeroes the range and frees the kernel's pages wholly inside it. */
  private punch(start: number, length: number): void {
    this.native.punchHole(this.fd, BigInt(start), BigInt(length));
  }
}
