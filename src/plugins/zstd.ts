/**
 * Zstandard for the memory plugin's `allocator=zstd`. Node 20's zlib has no zstd, so this is the
 * optional npm package zstd-napi (bindings to libzstd, built at install time like fs-native).
 * When it did not install, allocator=zstd is refused with a one-line error and
 * `--dump-config` says zstd=no.
 */
import { createRequire } from 'node:module';

type Binding = typeof import('zstd-napi/binding.js');

/** One compression and one decompression context, reused for every page. */
export interface Zstd {
  /** The compressed bytes of `data` (a copy the caller may keep). */
  compress(data: Uint8Array): Uint8Array;
  /** Decompress `frame` into all of `into`. */
  decompress(frame: Uint8Array, into: Uint8Array): void;
}

/** nbdkit's zstd allocator compresses pages at zstd's default level. */
const LEVEL = 3;

let loaded: Binding | null | undefined;

function binding(): Binding | null {
  if (loaded !== undefined) return loaded;
  try {
    loaded = createRequire(import.meta.url)('zstd-napi/binding.js') as Binding;
  } catch {
    loaded = null;
  }
  return loaded;
}

/** Whether allocator=zstd can work here. */
export function zstdAvailable(): boolean {
  return binding() !== null;
}

/** A compressor for pages of at most `pageSize` bytes, or undefined without zstd-napi. */
export function openZstd(pageSize: number): Zstd | undefined {
  const z = binding();
  if (!z) return undefined;
  const cctx = new z.CCtx();
  const dctx = new z.DCtx();
  const scratch = Buffer.allocUnsafe(z.compressBound(pageSize));
  return {
    compress(data) {
      const n = cctx.compress(scratch, data, LEVEL);
      return Uint8Array.prototype.slice.call(scratch, 0, n);
    },
    decompress(frame, into) {
      const n = dctx.decompress(into, frame);
      if (n !== into.length) throw new Error(`zstd: a page decompressed to ${n} bytes, not ${into.length}`);
    },
  };
}
