/**
 * The two versions nbdkit-ts has: the nbdkit release whose behaviour it follows (what tools that
 * gate features on nbdkit's version must see: `--version`, `--dump-config`'s `version_major` and
 * `version_minor`, the built-in plugins' versions), and its own package version (reported beside
 * it, as nbdkit reports a distribution's extra version string).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The nbdkit release whose command line, plugins and protocol nbdkit-ts follows. */
export const NBDKIT_VERSION = '1.32.5';

const [major, minor] = NBDKIT_VERSION.split('.');
export const NBDKIT_VERSION_MAJOR = Number(major);
export const NBDKIT_VERSION_MINOR = Number(minor);

let ownVersion: string | undefined;

/** nbdkit-ts's own version: its package.json, the nearest one up from this module, bundled or not. */
export function nbdkitTsVersion(): string {
  if (ownVersion !== undefined) return ownVersion;
  for (let url = new URL('package.json', import.meta.url); ; url = new URL('../package.json', url)) {
    try {
      const found = JSON.parse(readFileSync(fileURLToPath(url), 'utf8')) as { name?: string; version: string };
      if (found.name === 'nbdkit-ts') return (ownVersion = found.version);
    } catch {
      // none here
    }
    if (url.pathname === '/package.json') return (ownVersion = 'unknown');
  }
}

/** What nbdkit calls its extra version string, shown in parentheses after the version. */
export function versionExtra(): string {
  return `nbdkit-ts ${nbdkitTsVersion()}`;
}
