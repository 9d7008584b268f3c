// Placeholder while the plugin is being written; replaced by its real implementation.
import type { PluginFactory } from '../host/plugin.js';
const factory: PluginFactory = () => {
  throw new Error('this plugin is not implemented yet');
};
export default factory;
