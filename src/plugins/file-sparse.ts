/**
 * The sparse-file half of the file plugin: trim by punching holes, zero by fallocate, and
 * extents from SEEK_DATA/SEEK_HOLE, through runtimes/fs-native (Node has none of these).
 * Each handle remembers which fallocate modes its file system refused, so that it asks once.
 */
import { fsNative } from '../host/fs-native.js';
import { ExtentType, Flag, type ExtentSink, PluginError } from '../host/plugin.js';

/** Whether the addon is there: without it trim and extents are not offered. */
export const sparseSupported = fsNative !== null;

function code(error: unknown): string {
  return (error as { code?: string }).code ?? 'EIO';
}

function isNotSupported(error: unknown): boolean {
  const c = code(error);
  return c === 'EOPNOTSUPP' || c === 'ENOTSUP' || c === 'ENODEV';
}

export class SparseFile {
  private canPunchHole = sparseSupported;
  private canZeroRange = sparseSupported;

  constructor(private readonly fd: number) {}

  /** Trim is advisory: only EIO and EPERM are failures, as in nbdkit's file plugin. */
  trim(count: number, offset: bigint): void {
    if (!this.canPunchHole || !fsNative) return;
    try {
      fsNative.punchHole(this.fd, offset, BigInt(count));
    } catch (error) {
      if (code(error) === 'EIO' || code(error) === 'EPERM') throw new PluginError((error as Error).message, code(error));
      if (isNotSupported(error)) this.canPunchHole = false;
    }
  }

  /**
   * Zero with a hole when trimming is allowed, else with ZERO_RANGE. ENOTSUP asks the backend
   * to fall back to writing zeroes (or to fail a fast zero), as nbdkit's EOPNOTSUPP does.
   */
  zero(count: number, offset: bigint, flags: number): void {
    const length = BigInt(count);
    if (fsNative && this.canPunchHole && flags & Flag.MAY_TRIM) {
      try {
        return fsNative.punchHole(this.fd, offset, length);
      } catch (error) {
        if (!isNotSupported(error)) throw new PluginError(`zero: ${(error as Error).message}`, code(error));
        this.canPunchHole = false;
      }
    }
    if (fsNative && this.canZeroRange) {
      try {
        return fsNative.zeroRange(this.fd, offset, length);
      } catch (error) {
        if (!isNotSupported(error)) throw new PluginError(`zero: ${(error as Error).message}`, code(error));
        this.canZeroRange = false;
      }
    }
    throw new PluginError('zero: not supported by this file system', 'ENOTSUP');
  }

  /** Whether SEEK_HOLE works on this file (nbdkit's test in can_extents). */
  canExtents(): boolean {
    if (!fsNative) return false;
    try {
      fsNative.seekHole(this.fd, 0n);
      return true;
    } catch {
      return false;
    }
  }

  /** Holes and data in [offset, offset+count), stopping after one extent for REQ_ONE. */
  extents(count: number, offset: bigint, flags: number, sink: ExtentSink): void {
    if (!fsNative) throw new PluginError('extents: not supported', 'ENOTSUP');
    const end = offset + BigInt(count);
    const reqOne = (flags & Flag.REQ_ONE) !== 0;
    try {
      while (offset < end) {
        const data = fsNative.seekData(this.fd, offset);
        if (data === -1n) {
          // No data after offset: the rest of the file, and anything past its end, reads as zeroes.
          sink.add(offset, end - offset, ExtentType.HOLE | ExtentType.ZERO);
          return;
        }
        if (data > offset) {
          sink.add(offset, data - offset, ExtentType.HOLE | ExtentType.ZERO);
          offset = data;
        } else {
          const hole = fsNative.seekHole(this.fd, offset);
          const next = hole === -1n ? end : hole;
          sink.add(offset, next - offset, ExtentType.DATA);
          offset = next;
        }
        if (reqOne) return;
      }
    } catch (error) {
      throw new PluginError(`extents: ${(error as Error).message}`, code(error));
    }
  }
}
