/** Synchronous whole reads of host files, for the plugins whose disk is a file. */
import { readSync } from 'node:fs';

/** Fill all of `buf` from `fd` at `position`; past the end of the file it reads as zeroes (NBD has no short reads). */
export function readFullySync(fd: number, buf: Uint8Array, position: bigint): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + BigInt(done));
    if (n === 0) {
      buf.fill(0, done);
      return;
    }
    done += n;
  }
}
