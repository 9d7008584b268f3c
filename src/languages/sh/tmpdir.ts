/**
 * The $tmpdir of nbdkit-sh-plugin(3): a fresh private directory that lives as long as the
 * server and is removed at exit, even when the server leaves without unloading the plugin.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir as systemTmpdir } from 'node:os';
import { join } from 'node:path';

export class ScriptTmpdir {
  readonly path: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly removeAtExit = (): void => this.remove();

  constructor() {
    this.path = mkdtempSync(join(systemTmpdir(), 'nbdkit'));
    // Copied once, as nbdkit copies environ at load: reading process.env on every call costs.
    this.env = { ...process.env, tmpdir: this.path };
    process.once('exit', this.removeAtExit);
  }

  /** The environment scripts run with: ours plus $tmpdir (never set in our own environment). */
  environment(): NodeJS.ProcessEnv {
    return this.env;
  }

  remove(): void {
    process.removeListener('exit', this.removeAtExit);
    try {
      rmSync(this.path, { recursive: true, force: true });
    } catch {
      // Best effort, as nbdkit's `rm -rf`: nothing useful to do if it fails at exit.
    }
  }
}
