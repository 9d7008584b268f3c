/**
 * zero: a read-only disk of size 0 (nbdkit-zero-plugin(1), kept by nbdkit for old scripts;
 * `null` is its modern form). It takes no parameters (no config callback: the server refuses
 * any, as nbdkit does).
 */
import { CacheMode, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';

const createZeroPlugin: PluginFactory = () => ({
  name: 'zero',
  longname: 'nbdkit zero plugin',
  description: 'A read-only disk of size 0.',
  thread_model: () => ThreadModel.PARALLEL,
  open: () => ({}),
  get_size: () => 0n,
  can_multi_conn: () => true,
  can_cache: () => CacheMode.NATIVE,
  pread: () => {
    // A disk of size 0 has no byte to read: the backend refuses every read before this.
    throw new PluginError('unexpected call to pread');
  },
});

export default createZeroPlugin;
