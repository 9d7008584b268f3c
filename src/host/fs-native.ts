/**
 * The fs-native addon (runtimes/fs-native): the Linux system calls Node does not expose, or null
 * when it could not be built at install time, in which case every user falls back.
 */
import { createRequire } from 'node:module';
import type FsNative from '@nbdkit-ts/fs-native';

export const fsNative = createRequire(import.meta.url)('@nbdkit-ts/fs-native') as typeof FsNative;

/** A socket the server reads or writes itself, and the addon that does it. */
export interface NativeSocket {
  fd: number;
  native: NonNullable<typeof FsNative>;
}

/** The socket with this descriptor as a NativeSocket; undefined without a descriptor or the addon. */
export function nativeSocket(fd: number | undefined): NativeSocket | undefined {
  return fd !== undefined && fsNative !== null ? { fd, native: fsNative } : undefined;
}

/** A connection's request-reader thread (startRequestReader). */
export type RequestReaderHandle = ReturnType<NonNullable<typeof FsNative>['startRequestReader']>;
