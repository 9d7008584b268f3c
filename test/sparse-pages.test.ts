// The memory plugin's disks, pages in JavaScript (SparsePages) and the addon's memory file
// (MemoryFile), against a plain byte array and against each other: writes, zeroes and trims at
// any offset and length, pages freed when they become zero, and extents as nbdkit reports them.
// Also the other allocators': compressed pages (allocator=zstd) and one allocation (malloc).
import { describe, expect, it } from 'vitest';
import { ExtentType, type ExtentSink } from '../src/host/plugin.js';
import { openMemoryFile } from '../src/plugins/memory-file.js';
import { PAGE_SIZE, type RamDisk } from '../src/plugins/ram-disk.js';
import { MallocDisk } from '../src/plugins/malloc-disk.js';
import { SparsePages } from '../src/plugins/sparse-pages.js';
import { openZstd } from '../src/plugins/zstd.js';
import { ZstdPages } from '../src/plugins/zstd-pages.js';
import { seededRandom } from './helpers/random.js';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;

interface Extent {
  offset: bigint;
  length: bigint;
  type: number;
}

/** Bytes in runs of 97, some of them zero, so that written pages can also be all zero. */
function filled(length: number, random: (n: number) => number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 97) bytes.fill(random(4) === 0 ? 0 : random(256), i, i + 97);
  return bytes;
}

/** The same seeded random writes, zeroes and trims on `disk` and on the returned model. */
function exercise(disk: RamDisk): Uint8Array {
  const random = seededRandom(7);
  const model = new Uint8Array(SIZE);
  for (let step = 0; step < 600; step++) {
    const kind = random(10);
    const length = 1 + random(kind < 3 ? 16 * PAGE_SIZE : 300_000);
    // A third of them at page boundaries, the rest anywhere.
    const offset = kind % 3 === 0 ? random((SIZE - length) / PAGE_SIZE) * PAGE_SIZE : random(SIZE - length);
    if (kind < 7) {
      const data = filled(length, random);
      disk.write(data, BigInt(offset));
      model.set(data, offset);
    } else {
      disk.zero(length, BigInt(offset));
      model.fill(0, offset, offset + length);
    }
  }
  return model;
}

function extentsOf(disk: RamDisk, length: number, offset: bigint): Extent[] {
  const seen: Extent[] = [];
  const sink: ExtentSink = { add: (offset, length, type) => void seen.push({ offset, length, type }) };
  disk.extents(length, offset, sink);
  return seen;
}

function contents(disk: RamDisk): Buffer {
  const bytes = Buffer.alloc(SIZE);
  disk.read(bytes, 0n);
  return bytes;
}

describe('the memory plugin’s disks', () => {
  it('SparsePages reads back exactly what random writes, zeroes and trims left, and frees what became zero', () => {
    const pages = new SparsePages();
    const model = exercise(pages);
    expect(contents(pages).equals(Buffer.from(model))).toBe(true);

    // Every page that holds data is allocated; a zeroed page may stay allocated only if it was
    // not zeroed whole (nbdkit frees a page on zero only when the whole page is zero after it).
    let withData = 0;
    for (let page = 0; page < SIZE / PAGE_SIZE; page++) {
      if (model.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).some((b) => b !== 0)) withData++;
    }
    expect(pages.allocatedPages).toBeGreaterThanOrEqual(withData);

    // Extents: data exactly where the model has non-zero bytes in an allocated page.
    const extents = extentsOf(pages, SIZE, 0n);
    expect(extents.some((e) => e.type === ExtentType.ZERO)).toBe(true);
    expect(extents.some((e) => e.type === (ExtentType.HOLE | ExtentType.ZERO))).toBe(true);
    for (const { offset, length, type } of extents) {
      const bytes = model.subarray(Number(offset), Number(offset + length));
      if (type === ExtentType.DATA) expect(bytes.some((b) => b !== 0)).toBe(true);
      else expect(bytes.every((b) => b === 0)).toBe(true);
    }
  });

  it('the memory file holds the same bytes and reports the same pages as SparsePages', () => {
    const file = openMemoryFile(BigInt(SIZE));
    expect(file, 'the fs-native addon makes memory files').toBeDefined();
    const pages = new SparsePages();
    const model = exercise(file!);
    exercise(pages);
    expect(contents(file!).equals(Buffer.from(model))).toBe(true);
    // Whole, and from offsets inside pages (nbdkit reports to the end of the page).
    for (const [length, offset] of [[SIZE, 0n], [100_000, 12345n], [1, BigInt(SIZE - 1)]] as const) {
      expect(extentsOf(file!, length, offset)).toEqual(extentsOf(pages, length, offset));
    }
  });

  it('allocator=zstd: the same bytes, pages and extents as SparsePages', () => {
    const zstd = openZstd(PAGE_SIZE);
    expect(zstd, 'the zstd-napi package is installed').toBeDefined();
    const compressed = new ZstdPages(zstd!);
    const pages = new SparsePages();
    const model = exercise(compressed);
    exercise(pages);
    expect(contents(compressed).equals(Buffer.from(model))).toBe(true);
    expect(compressed.allocatedPages).toBe(pages.allocatedPages);
    for (const [length, offset] of [[SIZE, 0n], [100_000, 12345n], [1, BigInt(SIZE - 1)]] as const) {
      expect(extentsOf(compressed, length, offset)).toEqual(extentsOf(pages, length, offset));
    }
  });

  it('allocator=malloc: the same bytes, all of it data, across chunks', () => {
    // Chunks of 1 MiB + 1 byte, so that requests cross chunk boundaries at odd offsets.
    const disk = new MallocDisk(BigInt(SIZE), undefined, MiB + 1);
    const model = exercise(disk);
    expect(contents(disk).equals(Buffer.from(model))).toBe(true);
    expect(extentsOf(disk, 100_000, 12345n)).toEqual([{ offset: 12345n, length: 100_000n, type: ExtentType.DATA }]);
    const across = BigInt(MiB - 1000);
    expect(Buffer.concat(disk.views(3000, across)).equals(Buffer.from(model.subarray(MiB - 1000, MiB + 2000)))).toBe(true);
  });
});
