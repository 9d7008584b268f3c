/**
 * The memory plugin's `allocator=` parameter, as nbdkit's: `TYPE[,KEY=VALUE...]` where TYPE is
 * `sparse` (the default: 32 KiB pages allocated on write), `malloc` (the whole disk allocated at
 * start; `mlock=true` locks it in memory) or `zstd` (sparse pages kept compressed).
 */
import { fsNative } from '../host/fs-native.js';
import { PluginError } from '../host/plugin.js';
import { MallocDisk } from './malloc-disk.js';
import { openMemoryFile } from './memory-file.js';
import type { RamDisk } from './ram-disk.js';
import { SparsePages } from './sparse-pages.js';
import { openZstd } from './zstd.js';
import { ZstdPages } from './zstd-pages.js';
import { PAGE_SIZE } from './ram-disk.js';

export interface AllocatorChoice {
  type: 'sparse' | 'malloc' | 'zstd';
  mlock: boolean;
}

const TRUE_WORDS = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'f', 'no', 'n', 'off']);

function parseBool(text: string): boolean {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new PluginError(`could not decipher boolean (${text})`, 'EINVAL');
}

/** Parse `allocator=...`; a mistake is a one-line PluginError. */
export function parseAllocator(text: string): AllocatorChoice {
  const [type, ...rest] = text.split(',');
  const params: Array<[string, string]> = [];
  for (const item of rest) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq === 0) throw new PluginError('invalid allocator parameter', 'EINVAL');
    params.push(eq === -1 ? [item, '1'] : [item.slice(0, eq), item.slice(eq + 1)]);
  }
  if (type !== 'sparse' && type !== 'malloc' && type !== 'zstd') throw new PluginError(`unknown allocator "${text}"`, 'EINVAL');
  const choice: AllocatorChoice = { type, mlock: false };
  for (const [key, value] of params) {
    if (type !== 'malloc') throw new PluginError(`allocator=${type} does not take extra parameters`, 'EINVAL');
    if (key !== 'mlock') throw new PluginError(`allocator=malloc: unknown parameter ${key}`, 'EINVAL');
    choice.mlock = parseBool(value);
  }
  if (choice.mlock && fsNative === null) {
    throw new PluginError('allocator=malloc,mlock=true needs the fs-native addon, which did not build', 'EINVAL');
  }
  if (type === 'zstd' && !openZstd(PAGE_SIZE)) {
    throw new PluginError('allocator=zstd needs the zstd-napi package, which did not install', 'EINVAL');
  }
  return choice;
}

/** The disk for a configured size. Throws a one-line PluginError when the memory cannot be had. */
export function createRamDisk(choice: AllocatorChoice, size: bigint): RamDisk {
  switch (choice.type) {
    case 'sparse':
      // A memory file where the addon can make one (the fast paths read and write it), else pages.
      return openMemoryFile(size) ?? new SparsePages();
    case 'zstd':
      return new ZstdPages(openZstd(PAGE_SIZE)!);
    case 'malloc': {
      const lock = choice.mlock
        ? (chunk: Uint8Array): void => {
            try {
              fsNative!.lockMemory(chunk);
            } catch (error) {
              // The addon's message is "mlock: <strerror>".
              throw new PluginError(`allocator=malloc: ${(error as Error).message}`, 'ENOMEM');
            }
          }
        : undefined;
      try {
        return new MallocDisk(size, lock);
      } catch (error) {
        if (error instanceof PluginError) throw error;
        throw new PluginError((error as Error).message, 'ENOMEM');
      }
    }
  }
}
