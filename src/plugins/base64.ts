/**
 * Base64 decoding as strict as GnuTLS's gnutls_base64_decode2, which nbdkit's data and info
 * plugins use: white space is skipped, but groups must be whole and padded, with `=` only at
 * the very end. (Node's Buffer decoder silently accepts and drops anything.)
 */
import { PluginError } from '../host/plugin.js';

const VALID = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64Strict(text: string): Buffer {
  const compact = text.replace(/[ \t\n\v\f\r]/g, '');
  if (!VALID.test(compact)) throw new PluginError('base64: Base64 decoding error.', 'EINVAL');
  return Buffer.from(compact, 'base64');
}
