// Loads the fs-native addon (a Node-API module, so one binary serves every Node version):
// the prebuilt binary shipped for this platform, else a local build (node-gyp, made by the
// package's install script where no prebuilt one loads, or by hand), else none, and callers
// fall back to plain Node. Each candidate is really loaded, so a prebuilt binary that does not
// fit (another libc, say) gives way to the next one instead of failing the server.
//
// NBDKIT_TS_NATIVE=0 runs without the addon; =prebuilt or =built allows only that one.
'use strict';
const { join } = require('node:path');

const candidates = [
  ['prebuilt', join(__dirname, 'prebuilds', `${process.platform}-${process.arch}`, 'fs_native.napi.glibc.node')],
  ['built', join(__dirname, 'build', 'Release', 'fs_native.node')],
];

function load() {
  const wanted = process.env.NBDKIT_TS_NATIVE;
  const failures = [];
  if (wanted === '0') return { binding: null, origin: 'none', path: undefined, failures };
  for (const [origin, path] of candidates) {
    if (wanted && wanted !== '1' && wanted !== origin) continue;
    try {
      return { binding: require(path), origin, path, failures };
    } catch (error) {
      // A candidate that is not there is no failure; one that is there and does not load is.
      if (error.code !== 'MODULE_NOT_FOUND') failures.push(`${path}: ${error.message}`);
    }
  }
  return { binding: null, origin: 'none', path: undefined, failures };
}

module.exports = load();
