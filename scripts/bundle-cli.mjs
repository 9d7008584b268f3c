// Bundles the command (dist/cli.js, built by tsc) into one module plus one chunk per lazily
// loaded plugin, replacing dist/cli.js. Node's ES module loader spends ~0.6 ms on each of the
// ~40 modules otherwise: start-up to the first answer, Tcl 0.156 -> 0.145 s, Lua 0.135 -> 0.123
// s. dist/ keeps tsc's separate modules for the library entry point (dist/index.js).
import { chmodSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

// Chunks of an earlier build have other hashes; tsc's source map is for the module replaced.
rmSync('dist/bundle', { recursive: true, force: true });
rmSync('dist/cli.js.map', { force: true });

await build({
  entryPoints: { cli: 'src/cli.ts' },
  outdir: 'dist',
  chunkNames: 'bundle/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // npm packages (pyodide, wasmoon) stay where npm put them, and the runtimes where the package
  // has them (its "imports" map: #fs-native, #wasm-tcl).
  packages: 'external',
  external: ['#*'],
  allowOverwrite: true,
  logLevel: 'warning',
});

// Runnable as it is, with its #! line, as npm's bin link runs it (the line matters: see
// src/host/node-start.ts).
chmodSync('dist/cli.js', 0o755);
