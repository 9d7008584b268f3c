// Where the python plugin keeps its pyodide memory snapshot, and how it writes it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheDirectory, discardSnapshot, readSnapshot, snapshotPath, writeSnapshot } from '../src/languages/python/snapshot-cache.js';

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

  it('is keyed to the pyodide version and to what the snapshot contains', () => {
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
    expect(await readSnapshot(path)).toBeUndefined();
    expect(writeSnapshot(path, new Uint8Array([1, 2, 3]))).toBeUndefined();
    expect(Array.from((await readSnapshot(path))!)).toEqual([1, 2, 3]);
    expect(readdirSync(join(base, 'nbdkit-ts'))).toHaveLength(1);
    discardSnapshot(path);
    expect(await readSnapshot(path)).toBeUndefined();
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

