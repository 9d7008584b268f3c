/**
 * Where a Lua script's standard output goes.
 *
 * Under `-s` the process's stdout is the NBD socket, so a script's print() or io.write() must
 * never reach it: output goes to stderr, except while dump_plugin runs, when it is captured and
 * becomes the plugin's extra --dump-plugin lines (example.lua prints them with print()).
 */
import { writeSync } from 'node:fs';

export class ScriptStdout {
  private captured: Buffer[] | undefined;

  write(bytes: Uint8Array): void {
    if (this.captured) {
      this.captured.push(Buffer.from(bytes));
      return;
    }
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(2, bytes, done, bytes.length - done);
    } catch {
      // stderr is gone: nowhere left to print to.
    }
  }

  /** Run fn with output captured, and return what it printed, split into lines. */
  capture(fn: () => void): string[] {
    const saved = this.captured;
    this.captured = [];
    let text: string;
    try {
      fn();
    } finally {
      text = Buffer.concat(this.captured).toString('utf8');
      this.captured = saved;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  }
}
