/**
 * Where pyodide memory snapshots live between runs, and how they get there.
 *
 * A snapshot is the WASM memory of a freshly booted interpreter with a few standard modules
 * imported: it holds no plugin state, so one file serves every script. It lives in the user's
 * cache directory, named after the pyodide version, the file format (snapshot-format.ts) and a
 * hash of what went into it, so a different pyodide, format or prelude never picks up a stale
 * one. Writes go to a temporary file that is renamed into place, so a reader sees either a whole
 * snapshot or none.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Bumped whenever the file's layout changes. */
const FORMAT = 'sparse-1';

/** The cache directory for nbdkit-ts: $XDG_CACHE_HOME/nbdkit-ts or ~/.cache/nbdkit-ts. */
export function cacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && xdg.startsWith('/') ? xdg : join(env.HOME || homedir(), '.cache');
  return join(base, 'nbdkit-ts');
}

/** The snapshot file for this pyodide version and this prelude. */
export function snapshotPath(pyodideVersion: string, prelude: string, env: NodeJS.ProcessEnv = process.env): string {
  const digest = createHash('sha256')
    .update(`${FORMAT}\0${pyodideVersion}\0${process.arch}\0${prelude}`)
    .digest('hex')
    .slice(0, 16);
  return join(cacheDirectory(env), `pyodide-${pyodideVersion}-${digest}.snapshot`);
}

/** Store a snapshot atomically. Failure only costs the next start its speed, so it is not fatal. */
export function writeSnapshot(path: string, data: Uint8Array): string | undefined {
  const dir = join(path, '..');
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(temporary, data, { mode: 0o600 });
    renameSync(temporary, path);
    return undefined;
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // Never created.
    }
    return error instanceof Error ? error.message : String(error);
  }
}

/** Remove a snapshot that failed to load, so the next start rebuilds it. */
export function discardSnapshot(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
