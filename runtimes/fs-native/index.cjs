// Loads the addon if it was built; exports null otherwise, so callers can fall back.
'use strict';
let binding = null;
try {
  binding = require('./build/Release/fs_native.node');
} catch {
  binding = null;
}
module.exports = binding;
