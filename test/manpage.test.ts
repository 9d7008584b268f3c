/**
 * The manual page (dist/nbdkit-ts.1, built by scripts/build-man.mjs) agrees with --help and the
 * README's option table: built from the tree as it is, its synopsis is --help's text, and the
 * three name the same options, every one of which the command accepts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../src/host/options.js';
import { readmeSection } from '../scripts/build-man.mjs';
import { ROOT, run, runNbdkitTs } from './helpers/server.js';

const PAGE = join(ROOT, 'dist', 'nbdkit-ts.1');

/** Every option spelling (-x, --long) in a text. */
function optionsIn(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w/.-])(--?[A-Za-z][\w-]*)/g)].map((match) => match[1]));
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

  it('has --help as its synopsis', async () => {
    const help = (await runNbdkitTs(['--help'])).stdout.toString();
    const text = pageText();
    const synopsis = text.slice(text.indexOf('.SH SYNOPSIS\n.nf\n') + 17, text.indexOf('\n.fi'));
    expect(synopsis).toBe(help.trimEnd());
  });

  it('names the same options as --help and the README table, and the command accepts each', async () => {
    const help = optionsIn((await runNbdkitTs(['--help'])).stdout.toString());
    const table = readmeTableOptions();
    expect([...table].sort()).toEqual([...help].sort());
    const text = pageText();
    const options = text.slice(text.indexOf('.SH OPTIONS'), text.indexOf('.SH ENVIRONMENT'));
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
