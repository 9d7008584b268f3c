// Where the python plugin keeps its pyodide memory snapshot, how it writes it, and its sparse
// file format (zero pages left out, restored straight into a memory).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheDirectory, discardSnapshot, snapshotPath, writeSnapshot } from '../src/languages/python/snapshot-cache.js';
import { encodeSnapshot, SnapshotFile } from '../src/languages/python/snapshot-format.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('python snapshot cache', () => {
  it('lives in $XDG_CACHE_HOME/nbdkit-ts, else ~/.cache/nbdkit-ts', () => {
    expect(cacheDirectory({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/u' })).toBe('/x/cache/nbdkit-ts');
    expect(cacheDirectory({ HOME: '/home/u' })).toBe('/home/u/.cache/nbdkit-ts');
    // A relative XDG_CACHE_HOME is invalid by the specification and ignored.
    expect(cacheDirectory({ XDG_CACHE_HOME: 'rel', HOME: '/home/u' })).toBe('/home/u/.cache/nbdkit-ts');
  });

  it('is keyed to the pyodide version, the file format and what the snapshot contains', () => {
    const env = { XDG_CACHE_HOME: '/c' };
    const a = snapshotPath('314.0.7', 'import os', env);
    expect(a).toMatch(/^\/c\/nbdkit-ts\/pyodide-314\.0\.7-[0-9a-f]{16}\.snapshot$/);
    expect(snapshotPath('314.0.7', 'import os', env)).toBe(a);
    expect(snapshotPath('314.0.8', 'import os', env)).not.toBe(a);
    expect(snapshotPath('314.0.7', 'import sys', env)).not.toBe(a);
  });

  it('writes atomically into a created directory and reads back; leaves no temporary files', async () => {
    const base = mkdtempSync(join(tmpdir(), 'snapshot-test-'));
    dirs.push(base);
    const path = snapshotPath('1.0', 'x', { XDG_CACHE_HOME: base });
    expect(existsSync(path)).toBe(false);
    expect(writeSnapshot(path, new Uint8Array([1, 2, 3]))).toBeUndefined();
    expect(Array.from(readFileSync(path))).toEqual([1, 2, 3]);
    expect(readdirSync(join(base, 'nbdkit-ts'))).toHaveLength(1);
    discardSnapshot(path);
    expect(existsSync(path)).toBe(false);
  });

  it('reports a failed write instead of throwing, and cleans up', () => {
    const base = mkdtempSync(join(tmpdir(), 'snapshot-test-'));
    dirs.push(base);
    // A file where the directory should be: mkdir fails.
    const blocker = join(base, 'nbdkit-ts');
    rmSync(blocker, { force: true });
    writeFileSync(blocker, 'not a directory');
    const path = snapshotPath('1.0', 'x', { XDG_CACHE_HOME: base });
    expect(writeSnapshot(path, new Uint8Array([1]))).toMatch(/EEXIST|ENOTDIR/);
    expect(readFileSync(blocker, 'utf8')).toBe('not a directory');
  });
});


const PAGE = 4096;

/** A pyodide-like snapshot: a header (magic, header length, JSON length, build id, JSON), then memory. */
function fakeSnapshot(memory: Uint8Array): Uint8Array {
  const headerLength = 128;
  const snapshot = new Uint8Array(headerLength + memory.length);
  const words = new DataView(snapshot.buffer);
  words.setUint32(0, 0x706e7300, true);
  words.setUint32(4, headerLength, true);
  words.setUint32(8, 2, true);
  snapshot.set(new TextEncoder().encode('{}'), 64);
  snapshot.set(memory, headerLength);
  return snapshot;
}

/** Memory with data in a few scattered places, including its first and last bytes. */
function scatteredMemory(pages: number): Uint8Array {
  const memory = new Uint8Array(pages * PAGE);
  memory[0] = 1;
  memory.fill(0xab, 3 * PAGE + 100, 5 * PAGE + 7);
  memory[9 * PAGE + PAGE - 1] = 0xff;
  memory[memory.length - 1] = 0x42;
  return memory;
}

describe('python snapshot file format', () => {
  it('stores only the non-zero pages, and restores the exact memory from the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapshot-test-'));
    dirs.push(dir);
    const memory = scatteredMemory(64);
    const snapshot = fakeSnapshot(memory);
    const encoded = encodeSnapshot(snapshot);
    // Pages 0, 3-5, 9 and 63 hold data: 6 of 64.
    expect(encoded.length).toBeLessThan(8 * PAGE);
    const path = join(dir, 's');
    writeFileSync(path, encoded);

    const file = SnapshotFile.open(path);
    try {
      expect(file.snapshotLength).toBe(snapshot.length);
      expect(Array.from(file.header)).toEqual(Array.from(snapshot.subarray(0, 128)));
      expect(file.header.byteOffset).toBe(0);
      const restored = new Uint8Array(memory.length);
      file.restoreInto(restored);
      expect(Buffer.compare(restored, memory)).toBe(0);
      expect(() => file.restoreInto(new Uint8Array(memory.length - PAGE))).toThrow(/smaller/);
    } finally {
      file.close();
    }
  });

  it('encodes an all-zero memory as no runs at all', () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapshot-test-'));
    dirs.push(dir);
    const snapshot = fakeSnapshot(new Uint8Array(16 * PAGE));
    const path = join(dir, 's');
    writeFileSync(path, encodeSnapshot(snapshot));
    expect(readFileSync(path).length).toBe(32 + 128);
    const file = SnapshotFile.open(path);
    const restored = new Uint8Array(16 * PAGE).fill(7);
    file.restoreInto(restored);
    file.close();
    expect(restored.every((byte) => byte === 7)).toBe(true);
  });

  it('rejects files it did not write whole: another format, truncated, grown, or bad runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapshot-test-'));
    dirs.push(dir);
    const encoded = encodeSnapshot(fakeSnapshot(scatteredMemory(16)));
    const path = join(dir, 's');

    // pyodide's own (dense) snapshot, as earlier versions stored it.
    writeFileSync(path, fakeSnapshot(scatteredMemory(16)));
    expect(() => SnapshotFile.open(path)).toThrow(/not a sparse snapshot/);

    writeFileSync(path, encoded);
    truncateSync(path, encoded.length - 1);
    expect(() => SnapshotFile.open(path)).toThrow(/wrong size/);

    writeFileSync(path, Buffer.concat([encoded, Buffer.alloc(1)]));
    expect(() => SnapshotFile.open(path)).toThrow(/wrong size/);

    truncateSync(path, 20);
    expect(() => SnapshotFile.open(path)).toThrow(/truncated/);

    // A run reaching past the end of the memory.
    const bad = Buffer.from(encoded);
    bad.writeUInt32LE(16 * PAGE, 32 + 128);
    writeFileSync(path, bad);
    expect(() => SnapshotFile.open(path)).toThrow(/runs malformed/);
  });
});
