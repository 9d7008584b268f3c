/**
 * The manual page (dist/nbdkit-ts.1, built by scripts/build-man.mjs) agrees with --help and the
 * README's option table: built from the tree as it is, it carries --help's text whole, and the
 * README's table (which the page's OPTIONS are) names exactly the options of the command's
 * option table (src/host/options.ts, which --help is made from).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine, SPECS } from '../src/host/options.js';
import { readmeSection } from '../scripts/build-man.mjs';
import { ROOT, run, runNbdkitTs } from './helpers/server.js';

const PAGE = join(ROOT, 'dist', 'nbdkit-ts.1');

/** Every option spelling (-x, --long) in a text. */
function optionsIn(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w/.-])(--?[A-Za-z0-9][\w-]*)/g)].map((match) => match[1]));
}

/** The first cells of the README's option table. */
function readmeTableOptions(): Set<string> {
  const section = readmeSection(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## Command line', /^### /);
  const rows = section.split('\n').filter((line) => line.startsWith('| `'));
  return optionsIn(rows.map((row) => row.split(/(?<!\\)\|/)[1]).join(' '));
}

/** The man page as text, with roff's escapes for hyphens and backslashes undone. */
function pageText(): string {
  return readFileSync(PAGE, 'utf8').replace(/\\-/g, '-').replace(/\\e/g, '\\').replace(/\\f[BRI]/g, '');
}

describe('the manual page', () => {
  it('is what the generator makes of the README and --help as they are now', async () => {
    const fresh = await run(process.execPath, [join(ROOT, 'scripts', 'build-man.mjs'), '--stdout']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(readFileSync(PAGE, 'utf8')).toBe(fresh.stdout.toString());
  });

  it('carries --help whole: its usage lines as the synopsis, its option list in OPTIONS', async () => {
    const help = (await runNbdkitTs(['--help'])).stdout.toString();
    const blocks = [...pageText().matchAll(/^\.nf\n([\s\S]*?)\n\.fi$/gm)].map((match) => match[1]);
    const synopsis = blocks[0];
    const summary = blocks.find((block) => block.startsWith('Options:'));
    expect(`${synopsis}\n\n${summary}`).toBe(help.trimEnd());
  });

  it("names in the README's option table (the page's OPTIONS) exactly the options --help lists", async () => {
    // The options the command has (what --help lists with what each does), without nbdkit's
    // other spellings and the refused ones, which the README names in its text.
    const own = new Set(SPECS.filter((spec) => !spec.unsupported).flatMap((spec) => [`--${spec.long}`, ...(spec.short ? [`-${spec.short}`] : [])]));
    const help = optionsIn((await runNbdkitTs(['--help'])).stdout.toString());
    for (const option of own) expect(help.has(option), option).toBe(true);
    const table = readmeTableOptions();
    expect([...table].sort()).toEqual([...own].sort());
    const text = pageText();
    const options = text.slice(text.indexOf('.SH OPTIONS'), text.indexOf('.SS Summary'));
    const tags = options.split('\n').filter((_, i, lines) => lines[i - 1] === '.TP');
    expect([...optionsIn(tags.join(' '))].sort()).toEqual([...table].sort());
    for (const option of table) {
      let message = '';
      try {
        parseCommandLine([option]);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, option).not.toMatch(/unrecognized option|invalid option/);
    }
  });

  it('is valid roff: groff renders it without a warning', async () => {
    const result = await run('groff', ['-man', '-Tutf8', '-ww', '-z', PAGE]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });
});
