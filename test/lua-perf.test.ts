/**
 * The Lua adapter's performance settings must never change what a plugin computes: the
 * interpreter starts on V8's baseline WebAssembly compiler and is re-compiled by the optimising
 * one only once a plugin runs enough Lua (see WASM_TIERING_BUDGET in lua-vm.ts). A plugin that
 * computes its bytes in Lua crosses that point while serving; every request, before, during
 * and after, must return the same bytes.
 */
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import luaFactory from '../src/languages/lua/index.js';
import type { Plugin, PluginHost } from '../src/host/plugin.js';
import { parseSize } from '../src/host/size.js';

const COMPUTE = resolve(__dirname, 'fixtures', 'lua', 'compute.lua');

const host: PluginHost = {
  debug: () => undefined,
  error: () => undefined,
  parseSize: (t) => parseSize(t),
  shutdown: () => undefined,
  readonly: false,
  verbose: false,
  stdioSafe: true,
};

let plugin: Plugin | undefined;
afterEach(async () => {
  await plugin?.unload?.();
  plugin = undefined;
});

/** What compute.lua serves at offset: its LCG, in 32-bit arithmetic (mod 2^31 needs no more). */
function expected(count: number, offset: number): Uint8Array {
  const out = new Uint8Array(count);
  let x = offset;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
    out[i] = (x >>> 16) & 0xff;
  }
  return out;
}

describe('lua adapter: V8 tiering', () => {
  it('serves the same bytes while the interpreter is re-compiled under load', async () => {
    plugin = await luaFactory(host);
    await plugin.config!('script', COMPUTE);
    await plugin.config_complete!();
    const h = await plugin.open(true, { exportName: '', tls: false, readonly: true });
    // About two million Lua loop iterations: far past the point where V8 optimises the loop.
    const count = 65536;
    for (let i = 0; i < 32; i++) {
      const offset = i * 12345;
      const buf = new Uint8Array(count);
      await plugin.pread(h, buf, BigInt(offset), 0);
      expect(Buffer.from(buf).equals(expected(count, offset)), `read ${i} at ${offset}`).toBe(true);
    }
    await plugin.close!(h);
  });
});
