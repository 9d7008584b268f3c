/**
 * Lua's `io` library (and os.remove/os.rename/os.tmpname, print) over the host filesystem.
 *
 * wasmoon's build only has emscripten's in-memory filesystem, so the C `io` library cannot see
 * the disk a plugin serves. This module replaces it: a file object is a full userdata with
 * metatable "FILE*" holding an id into a table of host file descriptors, and read/write/seek
 * work with positional node:fs calls straight between the descriptor and the WASM heap: a read
 * of 4 KiB or more is one pread(2) into the Lua string it returns, and no file is loaded whole.
 *
 * The hot methods (read, write, seek, close) are TypeScript; compositions (lines, io.read,
 * io.lines, io.input, loadfile, require's searcher, ...) are Lua, in io-prelude.ts.
 */
import {
  closeSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFsError } from '../../host/errno.js';
import { IO_PRELUDE } from './io-prelude.js';
import {
  FILL_IN_PLACE_MIN,
  isLuaUnwind,
  LUA_REGISTRYINDEX,
  LuaType,
  type LuaState,
  type LuaVm,
} from './lua-vm.js';
import type { ScriptStdout } from './stdout.js';

type FileKind = 'file' | 'stdin' | 'stdout' | 'stderr';

interface HostFile {
  fd: number;
  kind: FileKind;
  /** The position of the next read or write; every transfer is positional. */
  pos: number;
  append: boolean;
  closed: boolean;
}

const FILE_META = 'FILE*';
const LINE_CHUNK = 4096;
const NUMBER_MAX_LEN = 200;

/** C's "%.14g", which Lua's io.write uses for floats. */
function formatFloat(x: number): string {
  if (Number.isNaN(x)) return x < 0 ? '-nan' : 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const exp = Math.floor(Math.log10(Math.abs(x)));
  let text: string;
  if (exp < -4 || exp >= 14) {
    const [mant, e] = x.toExponential(13).split('e');
    const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
    const n = Number(e);
    text = `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  } else {
    text = x.toPrecision(14);
    if (text.includes('e')) return formatFloat(Number(text));
    if (text.includes('.')) text = text.replace(/0+$/, '').replace(/\.$/, '');
  }
  return text;
}

export class HostIo {
  private readonly files = new Map<number, HostFile>();
  private nextId = 1;
  private readonly vm: LuaVm;
  private readonly stdout: ScriptStdout;

  constructor(vm: LuaVm, stdout: ScriptStdout) {
    this.vm = vm;
    this.stdout = stdout;
  }

  /** Replace io (and the file functions of os and base) in the interpreter. */
  install(): void {
    const { vm } = this;
    const { api } = vm;
    const L = vm.L;
    const top = api._lua_gettop(L);

    // The C io library registered "FILE*" already; start a fresh metatable under that name so
    // that luaL_checkudata and tostring() see ours.
    api._lua_pushnil(L);
    api._lua_setfield(L, LUA_REGISTRYINDEX, vm.cstr(FILE_META));
    api._luaL_newmetatable(L, vm.cstr(FILE_META));
    const meta = api._lua_gettop(L);
    api._lua_createtable(L, 0, 8);
    const methods = api._lua_gettop(L);
    vm.setFunction(L, methods, 'read', (S) => this.read(S));
    vm.setFunction(L, methods, 'write', (S) => this.write(S));
    vm.setFunction(L, methods, 'seek', (S) => this.seek(S));
    vm.setFunction(L, methods, 'close', (S) => this.close(S));
    vm.setFunction(L, methods, 'flush', (S) => {
      this.checkOpenFile(S);
      api._lua_pushvalue(S, 1);
      return 1;
    });
    vm.setFunction(L, methods, 'setvbuf', (S) => {
      this.checkOpenFile(S);
      api._lua_pushboolean(S, 1);
      return 1;
    });
    api._lua_pushvalue(L, methods);
    api._lua_setfield(L, meta, vm.cstr('__index'));
    vm.setFunction(L, meta, '__gc', (S) => this.collect(S));
    vm.setFunction(L, meta, '__close', (S) => this.collect(S));
    vm.setFunction(L, meta, '__tostring', (S) => this.toString(S));

    // The new io table, also under package.loaded so that require("io") returns it.
    api._lua_createtable(L, 0, 16);
    const io = api._lua_gettop(L);
    vm.setFunction(L, io, 'open', (S) => this.open(S));
    vm.setFunction(L, io, 'type', (S) => this.type(S));
    vm.setFunction(L, io, 'tmpfile', (S) => this.tmpfile(S));
    this.pushNewFile(L, { fd: 0, kind: 'stdin', pos: 0, append: false, closed: false });
    api._lua_setfield(L, io, vm.cstr('stdin'));
    this.pushNewFile(L, { fd: 1, kind: 'stdout', pos: 0, append: true, closed: false });
    api._lua_setfield(L, io, vm.cstr('stdout'));
    this.pushNewFile(L, { fd: 2, kind: 'stderr', pos: 0, append: true, closed: false });
    api._lua_setfield(L, io, vm.cstr('stderr'));

    vm.pushGlobal(L, 'os');
    const os = api._lua_gettop(L);
    if (api._lua_type(L, os) === LuaType.TABLE) {
      vm.setFunction(L, os, 'remove', (S) => this.remove(S));
      vm.setFunction(L, os, 'rename', (S) => this.rename(S));
      vm.setFunction(L, os, 'tmpname', (S) => this.tmpname(S));
      vm.setFunction(L, os, 'execute', (S) => this.execute(S));
      vm.setFunction(L, os, 'exit', (S) => this.exit(S));
    }
    api._lua_settop(L, os - 1);

    api._lua_pushcclosure(L, vm.cfunction((S) => this.print(S)), 0);
    api._lua_setglobal(L, vm.cstr('print'));

    // Run the Lua half with (io, methods) as its arguments.
    const error = vm.load(L, new TextEncoder().encode(IO_PRELUDE), '=[nbdkit-ts io]');
    if (error !== undefined) throw new Error(`internal error in the io prelude: ${error}`);
    api._lua_pushvalue(L, io);
    api._lua_pushvalue(L, methods);
    if (api._lua_pcallk(L, 2, 0, 0, 0, 0) !== 0) {
      const message = vm.errorText(L, -1);
      api._lua_settop(L, top);
      throw new Error(`internal error in the io prelude: ${message}`);
    }
    api._lua_settop(L, top);
  }

  // ---- file objects --------------------------------------------------------------------

  private pushNewFile(L: LuaState, file: HostFile): void {
    const { api } = this.vm;
    const id = this.nextId++;
    const ud = api._lua_newuserdatauv(L, 4, 0);
    api.HEAP32[ud >> 2] = id;
    this.files.set(id, file);
    api._lua_getfield(L, LUA_REGISTRYINDEX, this.vm.cstr(FILE_META));
    api._lua_setmetatable(L, -2);
  }

  /** The file at argument 1, raising Lua's errors for a non-file or a closed file. */
  private checkOpenFile(L: LuaState): HostFile {
    const { api } = this.vm;
    const ud = api._luaL_checkudata(L, 1, this.vm.cstr(FILE_META));
    const file = this.files.get(api.HEAP32[ud >> 2]);
    if (!file || file.closed) {
      this.vm.raise(L, 'attempt to use a closed file');
      throw new Error('unreachable');
    }
    return file;
  }

  private fileResult(L: LuaState, e: unknown, filename?: string): number {
    const { api } = this.vm;
    const { errno, text } = describeFsError(e);
    api._lua_pushnil(L);
    this.vm.pushString(L, filename === undefined ? text : `${filename}: ${text}`);
    api._lua_pushinteger(L, BigInt(errno));
    return 3;
  }

  private fail(L: LuaState, text: string, errno: number): number {
    const { api } = this.vm;
    api._lua_pushnil(L);
    this.vm.pushString(L, text);
    api._lua_pushinteger(L, BigInt(errno));
    return 3;
  }

  private open(L: LuaState): number {
    const { vm } = this;
    const { api } = vm;
    const name = vm.checkString(L, 1);
    const path = Buffer.from(api.HEAPU8.subarray(name.ptr, name.ptr + name.len));
    let mode = 'r';
    if (api._lua_type(L, 2) > LuaType.NIL) mode = vm.toText(L, 2) ?? vm.typeName(L, 2);
    const m = /^([rwa])(\+?)b*$/.exec(mode);
    if (!m) return vm.argError(L, 2, 'invalid mode');
    const flags = m[1] + m[2];
    let fd: number;
    try {
      fd = openSync(path, flags, 0o666);
    } catch (e) {
      if (isLuaUnwind(e)) throw e;
      return this.fileResult(L, e, path.toString('utf8'));
    }
    this.pushNewFile(L, { fd, kind: 'file', pos: 0, append: m[1] === 'a', closed: false });
    return 1;
  }

  private tmpfile(L: LuaState): number {
    const path = join(tmpdir(), `nbdkit-ts-lua-${process.pid}-${this.nextId}-${Date.now()}`);
    let fd: number;
    try {
      fd = openSync(path, 'wx+', 0o600);
      unlinkSync(path);
    } catch (e) {
      if (isLuaUnwind(e)) throw e;
      return this.fileResult(L, e);
    }
    this.pushNewFile(L, { fd, kind: 'file', pos: 0, append: false, closed: false });
    return 1;
  }

  private type(L: LuaState): number {
    const { vm } = this;
    const { api } = vm;
    if (api._lua_type(L, 1) === LuaType.NONE) return vm.argError(L, 1, 'value expected');
    const ud = api._luaL_testudata(L, 1, vm.cstr(FILE_META));
    if (ud === 0) {
      api._lua_pushnil(L);
    } else {
      const file = this.files.get(api.HEAP32[ud >> 2]);
      vm.pushString(L, !file || file.closed ? 'closed file' : 'file');
    }
    return 1;
  }

  private close(L: LuaState): number {
    const file = this.checkOpenFile(L);
    if (file.kind !== 'file') return this.fail(L, 'cannot close standard file', 0);
    file.closed = true;
    try {
      closeSync(file.fd);
    } catch (e) {
      if (isLuaUnwind(e)) throw e;
      return this.fileResult(L, e);
    }
    this.vm.api._lua_pushboolean(L, 1);
    return 1;
  }

  /** __gc and __close: release the descriptor of a file the script never closed. */
  private collect(L: LuaState): number {
    const { api } = this.vm;
    const ud = api._luaL_testudata(L, 1, this.vm.cstr(FILE_META));
    if (ud === 0) return 0;
    const id = api.HEAP32[ud >> 2];
    const file = this.files.get(id);
    if (file && !file.closed && file.kind === 'file') {
      file.closed = true;
      try {
        closeSync(file.fd);
      } catch {
        // Nothing to report to from a finaliser.
      }
    }
    // A to-be-closed variable keeps the object alive after __close; only __gc forgets it.
    if (file?.closed) this.files.delete(id);
    return 0;
  }

  private toString(L: LuaState): number {
    const { vm } = this;
    const ud = vm.api._luaL_checkudata(L, 1, vm.cstr(FILE_META));
    const file = this.files.get(vm.api.HEAP32[ud >> 2]);
    vm.pushString(L, !file || file.closed ? 'file (closed)' : `file (0x${ud.toString(16)})`);
    return 1;
  }

  // ---- transfers -----------------------------------------------------------------------

  /** Read up to len bytes at pos into the heap at ptr, retrying short reads; returns the count. */
  private readAt(file: HostFile, ptr: number, len: number, pos: number): number {
    if (file.kind !== 'file') return 0;
    const heap = this.vm.api.HEAPU8;
    let got = 0;
    while (got < len) {
      const n = readSync(file.fd, heap, ptr + got, len - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }

  private writeAt(file: HostFile, ptr: number, len: number): void {
    if (file.kind === 'stdout') {
      this.stdout.write(this.vm.api.HEAPU8.subarray(ptr, ptr + len));
      return;
    }
    if (file.kind === 'stdin') throw Object.assign(new Error('EBADF: bad file descriptor'), { errno: 9 });
    const heap = this.vm.api.HEAPU8;
    let done = 0;
    while (done < len) {
      // O_APPEND makes the kernel ignore the position; stderr has none.
      const position = file.kind === 'file' && !file.append ? file.pos + done : null;
      done += writeSync(file.fd, heap, ptr + done, len - done, position);
    }
    if (file.kind === 'file') file.pos = file.append ? fstatSync(file.fd).size : file.pos + len;
  }

  private read(L: LuaState): number {
    const { vm } = this;
    const { api } = vm;
    const file = this.checkOpenFile(L);
    const nargs = api._lua_gettop(L) - 1;
    try {
      if (nargs === 0) return this.readLine(L, file, false) ? 1 : this.pushFail(L, 1);
      api._luaL_checkstack(L, nargs + 20, 0);
      let results = 0;
      for (let arg = 2; arg <= nargs + 1; arg++) {
        // Lua's answer for a format that finds nothing is nil in its place, after the values
        // read before it.
        const top = api._lua_gettop(L);
        let ok: boolean;
        if (api._lua_type(L, arg) === LuaType.NUMBER) {
          ok = this.readCount(L, file, Number(api._luaL_checkinteger(L, arg)));
        } else {
          const fmt = vm.toText(L, arg);
          if (fmt === undefined) return vm.argError(L, arg, 'invalid format');
          switch (fmt.startsWith('*') ? fmt.charAt(1) : fmt.charAt(0)) {
            case 'n':
              ok = this.readNumber(L, file);
              break;
            case 'l':
              ok = this.readLine(L, file, false);
              break;
            case 'L':
              ok = this.readLine(L, file, true);
              break;
            case 'a':
              this.readAll(L, file);
              ok = true;
              break;
            default:
              return vm.argError(L, arg, 'invalid format');
          }
        }
        results++;
        if (!ok) {
          api._lua_settop(L, top);
          api._lua_pushnil(L);
          break;
        }
      }
      return results;
    } catch (e) {
      if (isLuaUnwind(e)) throw e;
      return this.fileResult(L, e);
    }
  }

  /** Push nil (Lua's "fail") for a read that found nothing; returns the result count. */
  private pushFail(L: LuaState, results: number): number {
    this.vm.api._lua_pushnil(L);
    return results;
  }

  private readCount(L: LuaState, file: HostFile, count: number): boolean {
    const { vm } = this;
    const { api } = vm;
    if (count <= 0) {
      // read(0) answers "" unless at end of file.
      const ptr = vm.ensureScratch(1);
      if (this.readAt(file, ptr, 1, file.pos) === 0) return false;
      api._lua_pushlstring(L, ptr, 0);
      return true;
    }
    if (count >= FILL_IN_PLACE_MIN && file.kind === 'file') return this.readCountInPlace(L, file, count);
    const ptr = vm.ensureScratch(count);
    const got = this.readAt(file, ptr, count, file.pos);
    if (got === 0) return false;
    file.pos += got;
    api._lua_pushlstring(L, ptr, got);
    return true;
  }

  /**
   * readCount for large counts: the file is read straight into the string that is returned, so
   * a plugin's `fh:read(count)` costs one copy. A short read (the end of the file) is copied
   * into a string of the right length, pushed before the first is dropped so that it is still
   * reachable while Lua allocates.
   */
  private readCountInPlace(L: LuaState, file: HostFile, count: number): boolean {
    const { api } = this.vm;
    const ptr = this.vm.pushStringToFill(L, count);
    const got = this.readAt(file, ptr, count, file.pos);
    file.pos += got;
    if (got === count) return true;
    if (got > 0) {
      api._lua_pushlstring(L, ptr, got);
      api._lua_rotate(L, -2, 1);
    }
    api._lua_settop(L, -2);
    return got > 0;
  }

  private readLine(L: LuaState, file: HostFile, keepNewline: boolean): boolean {
    const { vm } = this;
    const { api } = vm;
    const ptr = vm.ensureScratch(LINE_CHUNK);
    const parts: Buffer[] = [];
    for (;;) {
      const got = this.readAt(file, ptr, LINE_CHUNK, file.pos);
      const chunk = api.HEAPU8.subarray(ptr, ptr + got);
      const nl = chunk.indexOf(10);
      if (nl >= 0) {
        const keep = keepNewline ? nl + 1 : nl;
        file.pos += nl + 1;
        if (parts.length === 0) {
          // The common case, one chunk: straight from the heap into a Lua string.
          api._lua_pushlstring(L, ptr, keep);
        } else {
          parts.push(Buffer.from(chunk.subarray(0, keep)));
          vm.pushBytes(L, Buffer.concat(parts));
        }
        return true;
      }
      if (got === 0) break;
      parts.push(Buffer.from(chunk));
      file.pos += got;
    }
    if (parts.length === 0) return false;
    vm.pushBytes(L, Buffer.concat(parts));
    return true;
  }

  private readAll(L: LuaState, file: HostFile): void {
    const { vm } = this;
    let size = 0;
    if (file.kind === 'file') {
      try {
        size = Math.max(0, fstatSync(file.fd).size - file.pos);
      } catch {
        size = 0;
      }
    }
    let capacity = Math.max(size + 1, LINE_CHUNK);
    let ptr = vm.ensureScratch(capacity);
    let got = 0;
    for (;;) {
      const n = this.readAt(file, ptr + got, capacity - got, file.pos + got);
      got += n;
      if (got < capacity) break;
      // The file grew (or is not a regular file): keep what we have and double the area.
      const saved = Buffer.from(vm.api.HEAPU8.subarray(ptr, ptr + got));
      capacity *= 2;
      ptr = vm.ensureScratch(capacity);
      vm.api.HEAPU8.set(saved, ptr);
    }
    file.pos += got;
    vm.api._lua_pushlstring(L, ptr, got);
  }

  private readNumber(L: LuaState, file: HostFile): boolean {
    const { vm } = this;
    const { api } = vm;
    const ptr = vm.ensureScratch(NUMBER_MAX_LEN + 2);
    const got = this.readAt(file, ptr, NUMBER_MAX_LEN + 1, file.pos);
    const text = Buffer.from(api.HEAPU8.subarray(ptr, ptr + got)).toString('latin1');
    const m = /^[ \t\n\v\f\r]*([+-]?(?:0[xX][0-9a-fA-F]*(?:\.[0-9a-fA-F]*)?(?:[pP][+-]?[0-9]+)?|[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?))/.exec(
      text,
    );
    const whole = m ? m[0] : '';
    const numeral = m ? m[1] : '';
    file.pos += whole.length;
    api.HEAPU8.set(Buffer.from(numeral, 'latin1'), ptr);
    api.HEAPU8[ptr + numeral.length] = 0;
    // lua_stringtonumber pushes the number and returns the size it consumed (+1), or 0.
    if (numeral.length > 0 && api._lua_stringtonumber(L, ptr) !== 0) return true;
    return false;
  }

  private write(L: LuaState): number {
    const { vm } = this;
    const { api } = vm;
    const file = this.checkOpenFile(L);
    const top = api._lua_gettop(L);
    try {
      for (let arg = 2; arg <= top; arg++) {
        if (api._lua_type(L, arg) === LuaType.NUMBER && api._lua_isinteger(L, arg) === 0) {
          const text = formatFloat(vm.toNumber(L, arg) ?? 0);
          vm.pushString(L, text);
          const { ptr, len } = vm.checkString(L, -1);
          this.writeAt(file, ptr, len);
          api._lua_settop(L, -2);
          continue;
        }
        const { ptr, len } = vm.checkString(L, arg);
        this.writeAt(file, ptr, len);
      }
    } catch (e) {
      if (isLuaUnwind(e)) throw e;
      return this.fileResult(L, e);
    }
    api._lua_pushvalue(L, 1);
    return 1;
  }

  private seek(L: LuaState): number {
    const { vm } = this;
    const { api } = vm;
    const file = this.checkOpenFile(L);
    let whence = 'cur';
    if (api._lua_type(L, 2) > LuaType.NIL) {
      const view = vm.toBytesView(L, 2);
      whence = view && view.length === 3 ? String.fromCharCode(view[0], view[1], view[2]) : '';
      if (whence !== 'set' && whence !== 'cur' && whence !== 'end') {
        return vm.argError(L, 2, `invalid option '${vm.toText(L, 2) ?? vm.typeName(L, 2)}'`);
      }
    }
    const offset = Number(api._luaL_optinteger(L, 3, 0n));
    if (file.kind !== 'file') return this.fail(L, 'Illegal seek', 29);
    let base = file.pos;
    if (whence === 'set') base = 0;
    else if (whence === 'end') {
      try {
        base = fstatSync(file.fd).size;
      } catch (e) {
        if (isLuaUnwind(e)) throw e;
        return this.fileResult(L, e);
      }
    }
    const pos = base + offset;
    if (pos < 0 || !Number.isSafeInteger(pos)) return this.fail(L, 'Invalid argument', 22);
    file.pos = pos;
    api._lua_pushinteger(L, BigInt(pos));
    return 1;
  }

  // ---- os and base functions -----------------------------------------------------------

  private pathArg(L: LuaState, arg: number): Buffer {
    const { ptr, len } = this.vm.checkString(L, arg);
    return Buffer.from(this.vm.api.HEAPU8.subarray(ptr, ptr + len));
  }

  private remove(L: LuaState): number {
    const path = this.pathArg(L, 1);
    try {
      try {
        unlinkSync(path);
      } catch (e) {
        // C's remove() also removes empty directories.
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EISDIR' && code !== 'EPERM') throw e;
        rmdirSync(path);
      }
    } catch (e) {
      if (isLuaUnwind(e)) throw e;
      return this.fileResult(L, e, path.toString('utf8'));
    }
    this.vm.api._lua_pushboolean(L, 1);
    return 1;
  }

  private rename(L: LuaState): number {
    const from = this.pathArg(L, 1);
    const to = this.pathArg(L, 2);
    try {
      renameSync(from, to);
    } catch (e) {
      if (isLuaUnwind(e)) throw e;
      return this.fileResult(L, e, from.toString('utf8'));
    }
    this.vm.api._lua_pushboolean(L, 1);
    return 1;
  }

  private tmpname(L: LuaState): number {
    // Like mkstemp: the name is created, so no other process can take it meanwhile.
    for (let attempt = 0; ; attempt++) {
      const path = join(tmpdir(), `lua_${process.pid.toString(36)}${Math.random().toString(36).slice(2, 8)}`);
      try {
        closeSync(openSync(path, 'wx', 0o600));
        this.vm.pushString(L, path);
        return 1;
      } catch (e) {
        if (isLuaUnwind(e)) throw e;
        if (attempt > 100) return this.vm.raise(L, 'unable to generate a unique filename');
      }
    }
  }

  /** os.execute through /bin/sh; the command's stdout goes to stderr, never to an NBD socket. */
  private execute(L: LuaState): number {
    const { vm } = this;
    const { api } = vm;
    if (api._lua_type(L, 1) <= LuaType.NIL) {
      api._lua_pushboolean(L, 1);
      return 1;
    }
    const { ptr, len } = vm.checkString(L, 1);
    const command = Buffer.from(api.HEAPU8.subarray(ptr, ptr + len)).toString('utf8');
    const result = spawnSync('/bin/sh', ['-c', command], { stdio: ['ignore', 2, 2] });
    if (result.signal) {
      api._lua_pushnil(L);
      vm.pushString(L, 'signal');
      api._lua_pushinteger(L, BigInt(constants.signals[result.signal] ?? 0));
      return 3;
    }
    const status = result.status ?? 127;
    if (status === 0) api._lua_pushboolean(L, 1);
    else api._lua_pushnil(L);
    vm.pushString(L, 'exit');
    api._lua_pushinteger(L, BigInt(status));
    return 3;
  }

  /** os.exit ends the server process, as it ends native nbdkit. */
  private exit(L: LuaState): number {
    const { api } = this.vm;
    let status = 0;
    if (api._lua_type(L, 1) === LuaType.BOOLEAN) status = api._lua_toboolean(L, 1) ? 0 : 1;
    else if (api._lua_type(L, 1) > LuaType.NIL) status = Number(api._luaL_checkinteger(L, 1));
    process.exit(status);
  }

  private print(L: LuaState): number {
    const { vm } = this;
    const { api } = vm;
    const n = api._lua_gettop(L);
    const parts: Buffer[] = [];
    for (let i = 1; i <= n; i++) {
      const ptr = api._luaL_tolstring(L, i, vm.lenPtr);
      const len = api.HEAP32[vm.lenPtr >> 2] >>> 0;
      if (i > 1) parts.push(Buffer.from('\t'));
      parts.push(Buffer.from(api.HEAPU8.subarray(ptr, ptr + len)));
      api._lua_settop(L, -2);
    }
    parts.push(Buffer.from('\n'));
    this.stdout.write(Buffer.concat(parts));
    return 0;
  }
}
