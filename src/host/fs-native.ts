/**
 * The fs-native addon (runtimes/fs-native): the Linux system calls Node does not expose, or null
 * when it could not be built at install time, in which case every user falls back.
 */
import { createRequire } from 'node:module';
import type FsNative from '@nbdkit-ts/fs-native';

export const fsNative = createRequire(import.meta.url)('@nbdkit-ts/fs-native') as typeof FsNative;
