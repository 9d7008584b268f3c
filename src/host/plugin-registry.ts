/**
 * Where each plugin name is implemented, and how a script path picks its language.
 * Modules are imported lazily so that serving a memory disk never loads pyodide.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import type { PluginFactory } from './plugin.js';

interface PluginModule {
  default: PluginFactory;
}

const PLUGIN_MODULES: Readonly<Record<string, () => Promise<PluginModule>>> = {
  memory: () => import('../plugins/memory.js'),
  file: () => import('../plugins/file.js'),
  null: () => import('../plugins/null.js'),
  js: () => import('../languages/js/index.js'),
  lua: () => import('../languages/lua/index.js'),
  python: () => import('../languages/python/index.js'),
  tcl: () => import('../languages/tcl/index.js'),
  sh: () => import('../languages/sh/sh.js'),
  eval: () => import('../languages/sh/eval.js'),
  streaming: () => import('../plugins/streaming.js'),
  nbd: () => import('../plugins/nbd/plugin.js'),
  ondemand: () => import('../plugins/ondemand.js'),
  tmpdisk: () => import('../plugins/tmpdisk.js'),
  curl: () => import('../plugins/curl.js'),
  S3: () => import('../plugins/s3.js'),
};

export function pluginNames(): string[] {
  return Object.keys(PLUGIN_MODULES);
}

export function isPluginName(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(PLUGIN_MODULES, name);
}

export async function loadPluginFactory(name: string): Promise<PluginFactory> {
  const module = await PLUGIN_MODULES[name]();
  return module.default;
}

/** The first bytes of a file (scripts can be large; the #! line is all that matters). */
function readHead(path: string, length: number): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    return buffer.toString('latin1', 0, readSync(fd, buffer, 0, length, 0));
  } finally {
    closeSync(fd);
  }
}

const LANGUAGE_BY_EXTENSION: Readonly<Record<string, string>> = {
  '.lua': 'lua',
  '.py': 'python',
  '.tcl': 'tcl',
  '.sh': 'sh',
  '.js': 'js',
  '.mjs': 'js',
};

/**
 * The plugin that runs a script given in place of a plugin name, as `nbdkit ./plugin.py` does
 * for executable scripts: a `#!... nbdkit LANGUAGE` line wins, then the file extension.
 * Returns undefined when neither says.
 */
export function languageOfScript(path: string): string | undefined {
  let head: string;
  try {
    head = readHead(path, 256);
  } catch {
    return undefined;
  }
  const shebang = /^#!\s*\S*nbdkit(?:-ts)?\s+(\w+)/.exec(head);
  if (shebang && isPluginName(shebang[1])) return shebang[1];
  return LANGUAGE_BY_EXTENSION[extname(path).toLowerCase()];
}
