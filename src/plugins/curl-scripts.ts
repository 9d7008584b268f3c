/**
 * The curl plugin's header-script and cookie-script: shell scripts whose output gives the HTTP
 * headers (one a line) or the cookie (the first line) to send, run before the first request
 * and again once their -renew period has passed, as nbdkit-curl-plugin(1) describes.
 */
import { spawn } from 'node:child_process';
import { PluginError, type PluginHost } from '../host/plugin.js';
import { shellQuote } from './disk-command.js';

interface ScriptOutput {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runScript(script: string): Promise<ScriptOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** One script (header or cookie), its renewal period and its latest output. */
class RenewedScript {
  private iteration = 0;
  private lastRun: number | undefined;
  lines: string[] = [];

  constructor(
    readonly what: 'header-script' | 'cookie-script',
    private readonly script: string,
    private readonly renewSeconds: number,
  ) {}

  due(now: number): boolean {
    return this.lastRun === undefined || (this.renewSeconds > 0 && now - this.lastRun >= this.renewSeconds * 1000);
  }

  async run(url: string, host: PluginHost): Promise<void> {
    host.debug(`curl: running ${this.what}`);
    const full = `url=${shellQuote(url)}\niteration=${this.iteration++}\n\n${this.script}`;
    const out = await runScript(full);
    if (out.status !== 0) {
      const first = out.stderr.split('\n')[0];
      throw new PluginError(first ? `${this.what} failed: ${first}` : `${this.what} failed`);
    }
    this.lines = out.stdout
      .split('\n')
      .map((line) => line.trimEnd())
      .filter((line) => line !== '');
    this.lastRun = Date.now();
  }
}

export class CurlScripts {
  private header: RenewedScript | undefined;
  private cookie: RenewedScript | undefined;
  /** Scripts run one at a time, as nbdkit runs them under a lock. */
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: PluginHost,
    settings: { headerScript?: string; headerRenew: number; cookieScript?: string; cookieRenew: number },
  ) {
    if (settings.headerScript !== undefined) this.header = new RenewedScript('header-script', settings.headerScript, settings.headerRenew);
    if (settings.cookieScript !== undefined) this.cookie = new RenewedScript('cookie-script', settings.cookieScript, settings.cookieRenew);
  }

  get active(): boolean {
    return this.header !== undefined || this.cookie !== undefined;
  }

  /** Run whichever scripts are due; then the headers and cookie they last gave. */
  refresh(url: string): Promise<{ headers: string[]; cookie: string | undefined }> {
    const work = this.running.then(async () => {
      const now = Date.now();
      if (this.header?.due(now)) await this.header.run(url, this.host);
      if (this.cookie?.due(now)) await this.cookie.run(url, this.host);
      return { headers: this.header?.lines ?? [], cookie: this.cookie?.lines[0] };
    });
    this.running = work.then(
      () => undefined,
      () => undefined,
    );
    return work;
  }
}
