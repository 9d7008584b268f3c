/**
 * The `nbdkit` command a Tcl script can call: the nbdkit_* utility functions of
 * nbdkit-plugin(3) that make sense from Tcl.
 *
 *   nbdkit set_error ERRNO      the errno the client sees when this callback then fails
 *                               (a name such as ENOSPC, or its number)
 *   nbdkit debug MSG ...        a debug message (printed with -v)
 *   nbdkit parse_size TEXT      "1M" -> 1048576, as nbdkit_parse_size
 *   nbdkit parse_bool TEXT      1 or 0, as nbdkit_parse_bool
 *   nbdkit export_name          the export name the client asked for
 *   nbdkit is_tls               1 if the connection uses TLS
 *   nbdkit shutdown             ask the server to exit cleanly
 * and those of nbdkit 1.34 to 1.44 (script-api.ts):
 *   nbdkit disconnect FORCE     drop the client (FORCE true) or refuse its further requests
 *   nbdkit stdio_safe           1 unless stdin and stdout are the client's connection (-s)
 *   nbdkit nanosleep SEC NSEC   sleep
 *   nbdkit peer_pid|peer_uid|peer_gid|peer_security_context   the client process (Unix sockets)
 *   nbdkit peer_tls_dn|peer_tls_issuer_dn                    its certificate's names, or ""
 *   nbdkit read_password VALUE  a password given as itself, -, -FD or +FILE
 *   nbdkit parse_delay WHAT TEXT        {sec nsec}
 *   nbdkit parse_probability WHAT TEXT  a number between 0 and 1
 */
import type { TclInterp, TclObj } from '#wasm-tcl';
import { errnoName, errnoNumber } from '../../host/errno.js';
import type { ConnectionInfo, PluginHost } from '../../host/plugin.js';
import { callByName, type ScriptValue } from '../../host/script-api.js';

/** What the command needs from the adapter: the call in progress. */
export interface CallState {
  /** The connection of the callback being run, if it has one. */
  connection: ConnectionInfo | undefined;
  /** Set by `nbdkit set_error`, reset before every callback. */
  errno: string | undefined;
}

const SUBCOMMANDS = [
  'debug', 'disconnect', 'export_name', 'is_tls', 'nanosleep', 'parse_bool', 'parse_delay', 'parse_probability',
  'parse_size', 'peer_gid', 'peer_pid', 'peer_security_context', 'peer_tls_dn', 'peer_tls_issuer_dn', 'peer_uid',
  'read_password', 'set_error', 'shutdown', 'stdio_safe',
];

/** The subcommands script-api.ts answers, with their arguments (for the usage message). */
const SCRIPT_API: Record<string, string[]> = {
  disconnect: ['force'],
  stdio_safe: [],
  nanosleep: ['sec', 'nsec'],
  peer_pid: [],
  peer_uid: [],
  peer_gid: [],
  peer_security_context: [],
  peer_tls_dn: [],
  peer_tls_issuer_dn: [],
  read_password: ['value'],
  parse_delay: ['what', 'string'],
  parse_probability: ['what', 'string'],
};

const TRUE_WORDS = new Set(['1', 'true', 't', 'yes', 'y', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'f', 'no', 'n', 'off']);

class TclCommandError extends Error {
  constructor(message: string, readonly tclErrorCode = 'NBDKIT') {
    super(message);
  }
}

function expectArgs(args: string[], n: number, usage: string): void {
  if (args.length !== n) throw new TclCommandError(`wrong # args: should be "nbdkit ${usage}"`, 'TCL WRONGARGS');
}

/** The errno name for `nbdkit set_error`'s argument: a name (ENOSPC) or a number (28). */
function errnoArgument(text: string): string {
  const word = text.trim();
  if (/^\d+$/.test(word)) {
    const name = errnoName(Number(word));
    if (name) return name;
  } else if (errnoNumber(word.toUpperCase()) !== undefined) {
    return word.toUpperCase();
  }
  throw new TclCommandError(`nbdkit set_error: unknown errno "${text}"`);
}

export function installNbdkitCommand(interp: TclInterp, host: PluginHost, state: CallState): void {
  interp.createCommand('nbdkit', (objs: TclObj[], tcl: TclInterp) => {
    const args = objs.map((o) => tcl.objString(o));
    const sub = args.shift();
    switch (sub) {
      case 'set_error':
        expectArgs(args, 1, 'set_error errno');
        state.errno = errnoArgument(args[0]);
        return undefined;
      case 'debug':
        host.debug(args.join(' '));
        return undefined;
      case 'parse_size':
        expectArgs(args, 1, 'parse_size string');
        try {
          return host.parseSize(args[0]);
        } catch (error) {
          throw new TclCommandError((error as Error).message);
        }
      case 'parse_bool': {
        expectArgs(args, 1, 'parse_bool string');
        const word = args[0].trim().toLowerCase();
        if (TRUE_WORDS.has(word)) return 1;
        if (FALSE_WORDS.has(word)) return 0;
        throw new TclCommandError(`could not decipher boolean (${args[0]})`);
      }
      case 'export_name':
        expectArgs(args, 0, 'export_name');
        if (!state.connection) throw new TclCommandError('nbdkit export_name: no connection in this callback');
        return state.connection.exportName;
      case 'is_tls':
        expectArgs(args, 0, 'is_tls');
        if (!state.connection) throw new TclCommandError('nbdkit is_tls: no connection in this callback');
        return state.connection.tls ? 1 : 0;
      case 'shutdown':
        expectArgs(args, 0, 'shutdown');
        host.shutdown();
        return undefined;
      default:
        if (sub !== undefined && Object.hasOwn(SCRIPT_API, sub)) {
          const params = SCRIPT_API[sub];
          expectArgs(args, params.length, [sub, ...params].join(' '));
          let values: unknown[] = args;
          if (sub === 'disconnect') values = [TRUE_WORDS.has(args[0].trim().toLowerCase()) || Number(args[0]) > 0];
          if (sub === 'nanosleep') {
            if (!args.every((a) => /^\s*\d+\s*$/.test(a))) throw new TclCommandError('nbdkit nanosleep: expected non-negative integers');
            values = args.map(Number);
          }
          let result: ScriptValue;
          try {
            result = callByName(sub, state.connection, host, values);
          } catch (error) {
            throw new TclCommandError((error as Error).message);
          }
          if (sub === 'disconnect' || sub === 'nanosleep') return undefined;
          return typeof result === 'boolean' ? (result ? 1 : 0) : result;
        }
        throw new TclCommandError(
          sub === undefined
            ? 'wrong # args: should be "nbdkit subcommand ?arg ...?"'
            : `unknown or ambiguous subcommand "${sub}": must be ${SUBCOMMANDS.slice(0, -1).join(', ')}, or ${SUBCOMMANDS.at(-1)}`,
        );
    }
  });
}
