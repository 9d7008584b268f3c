/**
 * What Node reads at its own start that nbdkit-ts never uses.
 *
 * Node loads every certificate named by NODE_EXTRA_CA_CERTS while the process starts, before any
 * JavaScript runs, whether or not the program ever makes a TLS connection. Where that variable
 * names the system bundle (common on managed machines: about 140 certificates) it costs about
 * 55 ms of every start, a third of a Lua plugin's time to its first answer. nbdkit-ts makes no
 * outgoing TLS connections and verifies clients only against `--tls-certificates`' own CA file,
 * so the certificates are never used. The command's `#!` line therefore starts Node without the
 * variable, keeping its value in SAVED_EXTRA_CA_CERTS, and the command puts it back first thing,
 * so `--run` commands, shell plugins and scripts see the caller's environment unchanged.
 */

/** Where the `#!` line of the command keeps NODE_EXTRA_CA_CERTS while Node starts. */
export const SAVED_EXTRA_CA_CERTS = 'NBDKIT_TS_NODE_EXTRA_CA_CERTS';

/**
 * Undo the `#!` line's move. An empty saved value means the variable was unset or empty; either
 * way Node ignores it, so it stays unset.
 */
export function restoreExtraCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const saved = env[SAVED_EXTRA_CA_CERTS];
  if (saved === undefined) return;
  delete env[SAVED_EXTRA_CA_CERTS];
  if (saved !== '') env.NODE_EXTRA_CA_CERTS = saved;
}

/** The environment for another nbdkit-ts started by this one: the same move as the `#!` line. */
export function withExtraCaCertsSaved(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_EXTRA_CA_CERTS: extra, ...rest } = env;
  return extra === undefined ? rest : { ...rest, [SAVED_EXTRA_CA_CERTS]: extra };
}
