// The memory plugin's page store against a plain byte array: writes, zeroes and trims at any
// offset and length, pages freed when they become zero, and extents as nbdkit reports them.
import { describe, expect, it } from 'vitest';
import { ExtentType, type ExtentSink } from '../src/host/plugin.js';
import { PAGE_SIZE, SparsePages } from '../src/plugins/sparse-pages.js';
import { seededRandom } from './helpers/random.js';

const MiB = 1024 * 1024;

/** Bytes in runs of 97, some of them zero, so that written pages can also be all zero. */
function filled(length: number, random: (n: number) => number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 97) bytes.fill(random(4) === 0 ? 0 : random(256), i, i + 97);
  return bytes;
}

describe('SparsePages', () => {
  it('reads back exactly what random writes, zeroes and trims left, and frees what became zero', () => {
    const size = 8 * MiB;
    const random = seededRandom(7);
    const model = new Uint8Array(size);
    const pages = new SparsePages();
    for (let step = 0; step < 600; step++) {
      const kind = random(10);
      const length = 1 + random(kind < 3 ? 16 * PAGE_SIZE : 300_000);
      // A third of them at page boundaries, the rest anywhere.
      const offset = kind % 3 === 0 ? random((size - length) / PAGE_SIZE) * PAGE_SIZE : random(size - length);
      if (kind < 7) {
        const data = filled(length, random);
        pages.write(data, BigInt(offset));
        model.set(data, offset);
      } else {
        pages.zero(length, BigInt(offset));
        model.fill(0, offset, offset + length);
      }
    }
    const disk = new Uint8Array(size);
    pages.read(disk, 0n);
    expect(Buffer.from(disk).equals(Buffer.from(model))).toBe(true);

    // Every page that holds data is allocated; a zeroed page may stay allocated only if it was
    // not zeroed whole (nbdkit frees a page on zero only when the whole page is zero after it).
    let withData = 0;
    for (let page = 0; page < size / PAGE_SIZE; page++) {
      if (model.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE).some((b) => b !== 0)) withData++;
    }
    expect(pages.allocatedPages).toBeGreaterThanOrEqual(withData);

    // Extents: data exactly where the model has non-zero bytes in an allocated page.
    const seen: { offset: bigint; length: bigint; type: number }[] = [];
    const sink: ExtentSink = { add: (offset, length, type) => void seen.push({ offset, length, type }) };
    pages.extents(size, 0n, sink);
    for (const { offset, length, type } of seen) {
      const bytes = model.subarray(Number(offset), Number(offset + length));
      if (type === ExtentType.DATA) expect(bytes.some((b) => b !== 0)).toBe(true);
      else expect(bytes.every((b) => b === 0)).toBe(true);
    }
  });
});
