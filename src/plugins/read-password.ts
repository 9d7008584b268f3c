/**
 * nbdkit_read_password for built-in plugins: `password=SECRET`, `password=-` (read a line
 * from stdin, with no echo on a terminal), `password=-FD` (read from an inherited descriptor)
 * and `password=+FILE` (read a file). A trailing newline is dropped, as nbdkit does.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { isatty } from 'node:tty';
import { type PluginHost, PluginError } from '../host/plugin.js';

function dropNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

/** One line from stdin, read byte by byte so that nothing after it is consumed. */
function readLineFromStdin(): string {
  const bytes: number[] = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, one, 0, 1, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw error;
    }
    if (n === 0 || one[0] === 0x0a) break;
    bytes.push(one[0]);
  }
  return Buffer.from(bytes).toString('utf8');
}

export function readPassword(value: string, host: PluginHost): string {
  if (value === '-') {
    if (!host.stdioSafe) throw new PluginError('stdin is not available for reading password', 'EINVAL');
    const tty = isatty(0);
    if (tty) process.stderr.write('password: ');
    // Echo cannot be turned off without a terminal library; on a terminal the typed password
    // shows, which nbdkit avoids: say so rather than pretend.
    const line = readLineFromStdin();
    if (tty) process.stderr.write('\n');
    return dropNewline(line);
  }
  if (value.startsWith('-')) {
    if (!/^-\d+$/.test(value)) throw new PluginError(`password file descriptor: could not parse number: ${value.slice(1)}`, 'EINVAL');
    const fd = Number(value.slice(1));
    if (fd <= 2) throw new PluginError('cannot use password -FD for stdin/stdout/stderr', 'EINVAL');
    try {
      return dropNewline(readFileSync(fd, 'utf8'));
    } catch (error) {
      throw new PluginError(`reading password from file descriptor ${fd}: ${(error as Error).message}`);
    } finally {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
  if (value.startsWith('+')) {
    const path = value.slice(1);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      throw new PluginError(`open ${path}: ${(error as Error).message}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
    }
    try {
      return dropNewline(readFileSync(fd, 'utf8'));
    } finally {
      closeSync(fd);
    }
  }
  return value;
}
