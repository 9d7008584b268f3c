/**
 * The name the command was run by. As `nbdkit` (a link named so, or the package's shim/nbdkit,
 * which sets NBDKIT_TS_PROGRAM) it is a drop-in for nbdkit: its messages say `nbdkit:`.
 */

/** Set by shim/nbdkit, and passed on to the server a detaching command restarts (daemon.ts). */
export const PROGRAM_VARIABLE = 'NBDKIT_TS_PROGRAM';

/** `nbdkit` or `nbdkit-ts`, from the script's file name or the shim's variable (then unset). */
export function invokedAs(scriptName: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromShim = env[PROGRAM_VARIABLE];
  delete env[PROGRAM_VARIABLE];
  return fromShim === 'nbdkit' || scriptName === 'nbdkit' ? 'nbdkit' : 'nbdkit-ts';
}
