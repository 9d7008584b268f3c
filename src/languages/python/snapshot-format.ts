/**
 * The on-disk form of a pyodide memory snapshot: sparse, and restored straight into WASM memory.
 *
 * pyodide's snapshot is a small header followed by the whole WASM memory, about half of which is
 * zero pages. Stored as is, every start reads it all into a JS buffer and copies it into the fresh
 * WASM memory: twice its size in resident memory, and every page touched. Here only the non-zero
 * pages are stored, as runs, and on restore each run is read from the file directly into WASM
 * memory; the zero pages stay untouched (a fresh WebAssembly.Memory is zero-filled, and pages
 * never written cost no memory).
 *
 * Layout (little-endian):
 *   0   16 bytes  MAGIC
 *   16  u32       length of pyodide's header (its memory image starts after it)
 *   20  u32       number of runs
 *   24  f64       length of pyodide's whole snapshot (header + memory), which sizes the memory
 *   32            pyodide's header
 *   ...           runs: (u32 offset in memory, u32 length) each
 *   ...           the runs' bytes, in order
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const MAGIC = 'nbdkit-ts pysnp1';
const FIXED = 32;
const RUN_ENTRY = 8;
/** Zero pages are found at this granularity (the host's page size). */
const PAGE = 4096;

interface Run {
  offset: number;
  length: number;
}

/** pyodide's header length: the second u32 of its snapshot, where the memory image starts. */
function pyodideHeaderLength(snapshot: Uint8Array): number {
  if (snapshot.length < 12) throw new Error('snapshot too short');
  const length = new DataView(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength).getUint32(4, true);
  if (length < 12 || length > snapshot.length || length % 4 !== 0) throw new Error('snapshot header malformed');
  return length;
}

function isZero(words: Uint32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (words[i] !== 0) return false;
  return true;
}

/** The runs of non-zero pages of a memory image. */
function nonZeroRuns(memory: Uint8Array): Run[] {
  const runs: Run[] = [];
  // Whole 4-byte words cover all but the last few bytes, which count as non-zero (rare, harmless).
  const aligned = memory.byteOffset % 4 === 0 ? memory : memory.slice();
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, Math.floor(aligned.length / 4));
  let start = -1;
  for (let page = 0; page < memory.length; page += PAGE) {
    const end = Math.min(page + PAGE, memory.length);
    const zero = end % 4 === 0 && isZero(words, page / 4, end / 4);
    if (!zero && start < 0) start = page;
    if (zero && start >= 0) {
      runs.push({ offset: start, length: page - start });
      start = -1;
    }
  }
  if (start >= 0) runs.push({ offset: start, length: memory.length - start });
  return runs;
}

/** pyodide's snapshot (makeMemorySnapshot) in the sparse form, ready to be written to a file. */
export function encodeSnapshot(snapshot: Uint8Array): Uint8Array {
  const headerLength = pyodideHeaderLength(snapshot);
  const memory = snapshot.subarray(headerLength);
  const runs = nonZeroRuns(memory);
  const dataLength = runs.reduce((sum, run) => sum + run.length, 0);
  const tableOffset = FIXED + headerLength;
  const out = new Uint8Array(tableOffset + runs.length * RUN_ENTRY + dataLength);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(16, headerLength, true);
  view.setUint32(20, runs.length, true);
  view.setFloat64(24, snapshot.length, true);
  out.set(snapshot.subarray(0, headerLength), FIXED);
  let at = tableOffset + runs.length * RUN_ENTRY;
  runs.forEach((run, i) => {
    view.setUint32(tableOffset + i * RUN_ENTRY, run.offset, true);
    view.setUint32(tableOffset + i * RUN_ENTRY + 4, run.length, true);
    out.set(memory.subarray(run.offset, run.offset + run.length), at);
    at += run.length;
  });
  return out;
}

function readExactly(fd: number, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new Error('snapshot file truncated');
    done += n;
  }
}

/** An open sparse snapshot, validated, whose memory image is read on demand. */
export class SnapshotFile {
  private fd: number | undefined;

  private constructor(
    fd: number,
    /** pyodide's header, in a buffer of its own (pyodide reads it as 32-bit words). */
    readonly header: Uint8Array,
    /** The length of pyodide's whole snapshot: what it sizes the WASM memory from. */
    readonly snapshotLength: number,
    private readonly runs: readonly Run[],
    private readonly dataOffset: number,
  ) {
    this.fd = fd;
  }

  /** Open and check a snapshot file; throws when it is not one this version wrote whole. */
  static open(path: string): SnapshotFile {
    const fd = openSync(path, 'r');
    try {
      const fileSize = fstatSync(fd).size;
      const fixed = new Uint8Array(FIXED);
      readExactly(fd, fixed, 0);
      if (new TextDecoder().decode(fixed.subarray(0, 16)) !== MAGIC) throw new Error('not a sparse snapshot');
      const view = new DataView(fixed.buffer);
      const headerLength = view.getUint32(16, true);
      const count = view.getUint32(20, true);
      const snapshotLength = view.getFloat64(24, true);
      const tableOffset = FIXED + headerLength;
      const dataOffset = tableOffset + count * RUN_ENTRY;
      if (!Number.isSafeInteger(snapshotLength) || headerLength > snapshotLength || dataOffset > fileSize) {
        throw new Error('snapshot header malformed');
      }
      const header = new Uint8Array(headerLength);
      readExactly(fd, header, FIXED);
      const table = new Uint8Array(count * RUN_ENTRY);
      readExactly(fd, table, tableOffset);
      const entries = new DataView(table.buffer);
      const memoryLength = snapshotLength - headerLength;
      const runs: Run[] = [];
      let end = 0;
      let data = 0;
      for (let i = 0; i < count; i++) {
        const offset = entries.getUint32(i * RUN_ENTRY, true);
        const length = entries.getUint32(i * RUN_ENTRY + 4, true);
        if (offset < end || offset + length > memoryLength) throw new Error('snapshot runs malformed');
        runs.push({ offset, length });
        end = offset + length;
        data += length;
      }
      if (dataOffset + data !== fileSize) throw new Error('snapshot file has the wrong size');
      return new SnapshotFile(fd, header, snapshotLength, runs, dataOffset);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** Read the memory image into memory (a fresh, zero-filled WASM memory of the right size). */
  restoreInto(memory: Uint8Array): void {
    if (this.fd === undefined) throw new Error('snapshot file already closed');
    if (memory.length < this.snapshotLength - this.header.length) throw new Error('WASM memory smaller than the snapshot');
    let position = this.dataOffset;
    for (const run of this.runs) {
      readExactly(this.fd, memory.subarray(run.offset, run.offset + run.length), position);
      position += run.length;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
