// The package's install step: nothing to do where the prebuilt addon (or an earlier local
// build) loads. Elsewhere (another CPU, another libc) it tries to build the addon from its
// sources with node-gyp, which needs a C compiler. It never fails the install: without the
// addon nbdkit-ts still runs, only slower for large requests and without the file plugin's
// trim, fast zero and extents.
'use strict';
const { spawnSync } = require('node:child_process');

const loaded = require('./index.cjs');
if (loaded.origin !== 'none' || process.env.NBDKIT_TS_NATIVE === '0') process.exit(0);

for (const failure of loaded.failures) console.error(`nbdkit-ts: the fs-native addon did not load: ${failure}`);
// npm tells its scripts where its own node-gyp is; run by hand, node-gyp must be on PATH.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, { cwd: __dirname, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('nbdkit-ts: the fs-native addon could not be built here; nbdkit-ts runs without it');
}
