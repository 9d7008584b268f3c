/**
 * Where a Python plugin's imports come from besides pyodide's own standard library: the host's
 * Python packages, as a host `python3` would find them.
 *
 * - `PYTHONPATH`, ahead of everything else (as CPython puts it ahead of the standard library);
 * - a virtualenv: `NBDKIT_TS_PYTHON_VENV`, else `VIRTUAL_ENV` (set by `activate`); its
 *   site-packages replace the system's unless its pyvenv.cfg includes them;
 * - otherwise the user's site-packages (~/.local, unless PYTHONNOUSERSITE) and the system's:
 *   /usr/local/lib/python3.X/{dist,site}-packages, /usr/lib/python3/dist-packages,
 *   /usr/lib/python3.X/{dist,site}-packages (pip and apt);
 * - last, the directory of the script, so that modules beside it import without shadowing any
 *   other module.
 *
 * Only pure-Python packages can run: a module whose only form is a compiled extension (a `.so`
 * built for the host's CPU) fails with one line saying so (COMPILED_EXTENSION_FINDER).
 * `.pth` files in site directories add their directories; their `import` lines are not run.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export interface ImportPaths {
  /** Before pyodide's standard library. */
  front: string[];
  /** After it. */
  back: string[];
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** python3.X directories under lib, newest first. */
function pythonVersions(lib: string): string[] {
  let names: string[];
  try {
    names = readdirSync(lib);
  } catch {
    return [];
  }
  return names
    .filter((name) => /^python3\.\d+$/.test(name))
    .sort((a, b) => Number(b.slice(8)) - Number(a.slice(8)))
    .map((name) => join(lib, name));
}

/** The directories a site directory's .pth files add (path lines only). */
function pthDirectories(site: string): string[] {
  let names: string[];
  try {
    names = readdirSync(site).filter((name) => name.endsWith('.pth')).sort();
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(join(site, name), 'utf8');
    } catch {
      continue;
    }
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || /^import[ \t]/.test(line)) continue;
      const dir = isAbsolute(line) ? line : join(site, line);
      if (isDirectory(dir)) out.push(dir);
    }
  }
  return out;
}

function virtualenvSites(venv: string): { sites: string[]; withSystem: boolean } {
  const sites = pythonVersions(join(venv, 'lib')).map((dir) => join(dir, 'site-packages')).filter(isDirectory);
  let withSystem = false;
  try {
    const cfg = readFileSync(join(venv, 'pyvenv.cfg'), 'utf8');
    withSystem = /^\s*include-system-site-packages\s*=\s*true\s*$/im.test(cfg);
  } catch {
    // Not a venv made by python -m venv (virtualenv writes the same file); take it as it is.
  }
  return { sites, withSystem };
}

function systemSites(env: NodeJS.ProcessEnv): string[] {
  const sites: string[] = [];
  if (!env.PYTHONNOUSERSITE) {
    const home = env.HOME || homedir();
    sites.push(...pythonVersions(join(home, '.local', 'lib')).map((dir) => join(dir, 'site-packages')));
  }
  for (const dir of pythonVersions('/usr/local/lib')) sites.push(join(dir, 'dist-packages'), join(dir, 'site-packages'));
  sites.push('/usr/lib/python3/dist-packages');
  for (const dir of pythonVersions('/usr/lib')) sites.push(join(dir, 'dist-packages'), join(dir, 'site-packages'));
  return sites.filter(isDirectory);
}

/** The host's import directories for a script at scriptPath (relative to cwd). */
export function hostImportPaths(scriptPath: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ImportPaths {
  const front = (env.PYTHONPATH ?? '')
    .split(':')
    .filter((entry) => entry !== '')
    .map((entry) => resolve(cwd, entry));
  const venv = env.NBDKIT_TS_PYTHON_VENV || env.VIRTUAL_ENV;
  let sites: string[];
  if (venv && existsSync(venv)) {
    const found = virtualenvSites(resolve(cwd, venv));
    sites = found.withSystem ? [...found.sites, ...systemSites(env)] : found.sites;
  } else {
    sites = systemSites(env);
  }
  const back: string[] = [];
  for (const site of sites) back.push(site, ...pthDirectories(site));
  back.push(dirname(resolve(cwd, scriptPath)));
  const seen = new Set<string>();
  const unique = (dirs: string[]) => dirs.filter((dir) => !seen.has(dir) && (seen.add(dir), true));
  return { front: unique(front), back: unique(back) };
}

/**
 * The last finder on sys.meta_path: when no other finder found a module, and a host directory
 * holds it as a compiled extension, say so in one line instead of "No module named ...".
 * Python source, the module _nbdkit_imports, part of the snapshot; its set_paths puts
 * hostImportPaths' directories on sys.path.
 */
export const COMPILED_EXTENSION_FINDER = String.raw`
import sys as _sys, os as _os


class _CompiledExtensionFinder:
    """Turns 'No module named X' into why X cannot load, when X exists as a host .so file."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        last = fullname.rpartition('.')[2]
        prefix = last + '.'
        for entry in (path if path is not None else _sys.path):
            if not isinstance(entry, str) or not entry.startswith('/') or entry.startswith('/lib/'):
                continue
            try:
                names = _os.listdir(entry)
            except OSError:
                continue
            for name in names:
                if name.startswith(prefix) and (name.endswith('.so') or name.endswith('.pyd')):
                    where = _os.path.join(entry, name)
                    raise ImportError(
                        "nbdkit-ts: python: cannot import '%s': it is a compiled extension (%s) built for "
                        "the host's CPython; scripts run in pyodide (Python in WebAssembly), which loads "
                        "pure-Python packages only" % (fullname, where), name=fullname, path=where)
        return None

    @classmethod
    def invalidate_caches(cls):
        pass


_sys.meta_path.append(_CompiledExtensionFinder)


def set_paths(front, back):
    # Called once, before the script runs (see hostImportPaths).
    _sys.path[0:0] = [p for p in front if p not in _sys.path]
    _sys.path.extend(p for p in back if p not in _sys.path)
`;
