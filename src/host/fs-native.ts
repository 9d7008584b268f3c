/**
 * The fs-native addon (runtimes/fs-native): the Linux system calls Node does not expose, or null
 * when none loads (no prebuilt binary for this platform and no local build, or NBDKIT_TS_NATIVE=0),
 * in which case every user falls back.
 */
import { createRequire } from 'node:module';
import type FsNative from '#fs-native';

// '#fs-native' is the package's own import map (package.json "imports"): it resolves the same
// from dist/, from the bundled command and from the sources under test.
const loaded = createRequire(import.meta.url)('#fs-native') as typeof FsNative;

export const fsNative: FsNative.Binding | null = loaded.binding;

/** Which addon is in use, for --dump-config: the package's prebuilt binary, a local build, or none. */
export const fsNativeOrigin: typeof loaded.origin = loaded.origin;

/** A socket the server reads or writes itself, and the addon that does it. */
export interface NativeSocket {
  fd: number;
  native: NonNullable<typeof fsNative>;
}

/** The socket with this descriptor as a NativeSocket; undefined without a descriptor or the addon. */
export function nativeSocket(fd: number | undefined): NativeSocket | undefined {
  return fd !== undefined && fsNative !== null ? { fd, native: fsNative } : undefined;
}

/** A connection's request-reader thread (startRequestReader). */
export type RequestReaderHandle = FsNative.RequestReader;
