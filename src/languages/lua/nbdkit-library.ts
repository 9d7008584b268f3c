/**
 * The global `nbdkit` table a Lua script sees: nbdkit's utility functions (set_error, debug,
 * parse_size, export_name, is_tls, shutdown, and those of nbdkit 1.34 to 1.44: disconnect,
 * stdio_safe, nanosleep, peer_*, read_password, parse_delay, parse_probability) and the
 * constants of nbdkit-plugin(3).
 */
import { errnoName, isErrnoName } from '../../host/errno.js';
import { CacheMode, ExtentType, Flag, FuaMode, ThreadModel, type ConnectionInfo, type PluginHost } from '../../host/plugin.js';
import { callByName, type ScriptValue } from '../../host/script-api.js';
import { LuaType, type LuaState, type LuaVm } from './lua-vm.js';

/** What the current callback is running for; the library functions read it. */
export class CallContext {
  /** Set by nbdkit.set_error during a callback; the errno the client sees if it then fails. */
  pendingErrno: string | undefined;
  /** The connection the current callback serves, if any (export_name, is_tls). */
  connection: ConnectionInfo | undefined;

  begin(connection: ConnectionInfo | undefined): void {
    this.pendingErrno = undefined;
    this.connection = connection;
  }
}

const CONSTANTS: ReadonlyArray<readonly [string, number]> = [
  ['THREAD_MODEL_SERIALIZE_CONNECTIONS', ThreadModel.SERIALIZE_CONNECTIONS],
  ['THREAD_MODEL_SERIALIZE_ALL_REQUESTS', ThreadModel.SERIALIZE_ALL_REQUESTS],
  ['THREAD_MODEL_SERIALIZE_REQUESTS', ThreadModel.SERIALIZE_REQUESTS],
  ['THREAD_MODEL_PARALLEL', ThreadModel.PARALLEL],
  ['FLAG_MAY_TRIM', Flag.MAY_TRIM],
  ['FLAG_FUA', Flag.FUA],
  ['FLAG_REQ_ONE', Flag.REQ_ONE],
  ['FLAG_FAST_ZERO', Flag.FAST_ZERO],
  ['FUA_NONE', FuaMode.NONE],
  ['FUA_EMULATE', FuaMode.EMULATE],
  ['FUA_NATIVE', FuaMode.NATIVE],
  ['CACHE_NONE', CacheMode.NONE],
  ['CACHE_EMULATE', CacheMode.EMULATE],
  ['CACHE_NATIVE', CacheMode.NATIVE],
  ['EXTENT_DATA', ExtentType.DATA],
  ['EXTENT_HOLE', ExtentType.HOLE],
  ['EXTENT_ZERO', ExtentType.ZERO],
];

export function installNbdkitLibrary(vm: LuaVm, host: PluginHost, context: CallContext): void {
  const { api } = vm;
  const L = vm.L;
  api._lua_createtable(L, 0, 32);
  const table = api._lua_gettop(L);

  vm.setFunction(L, table, 'set_error', (S: LuaState) => {
    let name: string | undefined;
    if (api._lua_type(S, 1) === LuaType.NUMBER) {
      const n = vm.toInteger(S, 1);
      name = n === undefined ? undefined : errnoName(Number(n));
    } else if (api._lua_type(S, 1) === LuaType.STRING) {
      const text = vm.toText(S, 1);
      name = text !== undefined && isErrnoName(text) ? text : undefined;
    } else {
      return vm.argError(S, 1, 'errno number or name expected');
    }
    if (name === undefined) return vm.argError(S, 1, 'unknown errno');
    context.pendingErrno = name;
    return 0;
  });

  vm.setFunction(L, table, 'debug', (S: LuaState) => {
    vm.checkString(S, 1);
    host.debug(vm.toText(S, 1) ?? '');
    return 0;
  });

  vm.setFunction(L, table, 'parse_size', (S: LuaState) => {
    vm.checkString(S, 1);
    // parseSize throws with nbdkit's wording; cfunction() turns that into a Lua error.
    api._lua_pushinteger(S, host.parseSize(vm.toText(S, 1) ?? ''));
    return 1;
  });

  vm.setFunction(L, table, 'export_name', (S: LuaState) => {
    if (context.connection === undefined) api._lua_pushnil(S);
    else vm.pushString(S, context.connection.exportName);
    return 1;
  });

  vm.setFunction(L, table, 'is_tls', (S: LuaState) => {
    api._lua_pushboolean(S, context.connection?.tls ? 1 : 0);
    return 1;
  });

  vm.setFunction(L, table, 'shutdown', () => {
    host.shutdown();
    return 0;
  });

  // nbdkit 1.34 to 1.44 (script-api.ts). A failure raises a Lua error with nbdkit's reason.
  const text = (S: LuaState, arg: number): string => {
    vm.checkString(S, arg);
    return vm.toText(S, arg) ?? '';
  };
  const integer = (S: LuaState, arg: number): number => {
    const n = vm.toInteger(S, arg);
    if (n === undefined || n < 0n) vm.argError(S, arg, 'non-negative integer expected');
    return Number(n);
  };
  const call = (name: string, args: unknown[]): ScriptValue => callByName(name, context.connection, host, args);
  vm.setFunction(L, table, 'disconnect', (S: LuaState) => {
    call('disconnect', [api._lua_toboolean(S, 1) !== 0]);
    return 0;
  });
  vm.setFunction(L, table, 'stdio_safe', (S: LuaState) => {
    api._lua_pushboolean(S, host.stdioSafe ? 1 : 0);
    return 1;
  });
  vm.setFunction(L, table, 'nanosleep', (S: LuaState) => {
    call('nanosleep', [integer(S, 1), integer(S, 2)]);
    return 0;
  });
  for (const name of ['peer_pid', 'peer_uid', 'peer_gid']) {
    vm.setFunction(L, table, name, (S: LuaState) => {
      api._lua_pushinteger(S, BigInt(call(name, []) as number));
      return 1;
    });
  }
  for (const name of ['peer_security_context', 'peer_tls_dn', 'peer_tls_issuer_dn']) {
    vm.setFunction(L, table, name, (S: LuaState) => {
      vm.pushString(S, String(call(name, [])));
      return 1;
    });
  }
  vm.setFunction(L, table, 'read_password', (S: LuaState) => {
    vm.pushString(S, String(call('read_password', [text(S, 1)])));
    return 1;
  });
  vm.setFunction(L, table, 'parse_delay', (S: LuaState) => {
    const [sec, nsec] = String(call('parse_delay', [text(S, 1), text(S, 2)])).split(' ');
    api._lua_pushinteger(S, BigInt(sec));
    api._lua_pushinteger(S, BigInt(nsec));
    return 2;
  });
  vm.setFunction(L, table, 'parse_probability', (S: LuaState) => {
    api._lua_pushnumber(S, call('parse_probability', [text(S, 1), text(S, 2)]) as number);
    return 1;
  });

  for (const [name, value] of CONSTANTS) {
    api._lua_pushinteger(L, BigInt(value));
    api._lua_setfield(L, table, vm.cstr(name));
  }
  api._lua_setglobal(L, vm.cstr('nbdkit'));
}
