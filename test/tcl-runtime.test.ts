// The WebAssembly Tcl runtime (runtimes/wasm-tcl, imported as #wasm-tcl) on its own: Tcl_Init, byte arrays both
// ways, errors with errorInfo and line numbers, JavaScript commands, host files, stdout.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTcl, TCL_ERROR, TCL_OK, TclError, type TclInterp, type TclRuntime } from '#wasm-tcl';

let runtime: TclRuntime;
let tcl: TclInterp;
let work: string;

beforeAll(async () => {
  runtime = await loadTcl();
  tcl = runtime.createInterp();
  work = mkdtempSync(join(tmpdir(), 'wasm-tcl-'));
});
afterAll(() => {
  tcl.delete();
  rmSync(work, { recursive: true, force: true });
});

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

describe('the interpreter', () => {
  it('is Tcl 8.6.13 with its script library initialised', () => {
    expect(runtime.patchLevel).toBe('8.6.13');
    expect(tcl.eval('info patchlevel')).toBe('8.6.13');
    // Procs defined by init.tcl, and a package from the library found through auto_path.
    expect(tcl.eval('info procs tclInit') + tcl.eval('info commands unknown')).toContain('unknown');
    expect(tcl.eval('package require msgcat')).toMatch(/^1\./);
    expect(tcl.eval('encoding system')).toBe('utf-8');
  });

  it('sees the real environment and process id', () => {
    expect(tcl.eval('set env(PATH)')).toBe(process.env.PATH);
    expect(tcl.eval('pid')).toBe(String(process.pid));
  });

  it('strings cross as Unicode, U+0000 included', () => {
    tcl.setVar('s', 'caf\u00e9 \u4e2d\u0000end');
    expect(tcl.eval('string length $s')).toBe('10');
    expect(tcl.eval('set s')).toBe('caf\u00e9 \u4e2d\u0000end');
  });
});

describe('bytes', () => {
  it('every byte value goes in and comes back out unchanged', () => {
    tcl.setVar('data', ALL_BYTES);
    expect(tcl.eval('string length $data')).toBe('256');
    expect(tcl.eval('binary encode hex [string range $data 0 3][string range $data 252 255]')).toBe('00010203fcfdfeff');
    const name = tcl.newString('set');
    const arg = tcl.newString('data');
    expect(tcl.invoke([name, arg])).toBe(TCL_OK);
    expect(Array.from(tcl.resultBytes())).toEqual(Array.from(ALL_BYTES));
    tcl.release(name);
    tcl.release(arg);
  });

  it('invokeIo passes count and offset, and resultBytesInto copies into a buffer', () => {
    tcl.eval('proc slice {h count offset} { global data; string range $data $offset [expr {$offset + $count - 1}] }');
    const name = tcl.newString('slice');
    const h = tcl.newString('handle');
    expect(tcl.invokeIo(name, h, 0, 6, 250n)).toBe(TCL_OK);
    const out = new Uint8Array(6);
    expect(tcl.resultBytesInto(out)).toBe(6);
    expect(Array.from(out)).toEqual([250, 251, 252, 253, 254, 255]);
    tcl.release(name);
    tcl.release(h);
  });

  it('a Unicode string of U+0000 converts to NUL bytes, as test.tcl relies on', () => {
    tcl.eval('set u [string repeat "\\u0000" 8]');
    const obj = tcl.getVar('u');
    expect(Array.from(tcl.objBytes(obj as number))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    tcl.release(obj);
  });

  it('64-bit integers cross as bigints', () => {
    const big = tcl.newWide(2n ** 62n + 3n);
    expect(tcl.objWide(big)).toBe(2n ** 62n + 3n);
    tcl.release(big);
    expect(tcl.eval('expr {2**40}')).toBe('1099511627776');
  });
});

describe('errors', () => {
  it('a Tcl error becomes a TclError with errorInfo', () => {
    tcl.eval('proc fails {} { error "it broke" }');
    let caught: unknown;
    try {
      tcl.eval('fails');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TclError);
    const e = caught as TclError;
    expect(e.message).toBe('it broke');
    expect(e.code).toBe(TCL_ERROR);
    expect(e.errorInfo).toContain('(procedure "fails" line 1)');
  });

  it('evalFile reports the line of the error', () => {
    const path = join(work, 'bad.tcl');
    writeFileSync(path, 'set a 1\n\nnosuchcommand\n');
    expect(() => tcl.evalFile(path)).toThrow(/invalid command name "nosuchcommand"/);
    try {
      tcl.evalFile(path);
    } catch (error) {
      expect((error as TclError).line).toBe(3);
    }
  });
});

describe('commands written in JavaScript', () => {
  it('receive their arguments and return values or errors', () => {
    tcl.createCommand('jsjoin', (args, interp) => args.map((a) => interp.objString(a)).join('+'));
    tcl.createCommand('jsbytes', () => ALL_BYTES);
    tcl.createCommand('jsfail', () => {
      throw new Error('refused by JavaScript');
    });
    expect(tcl.eval('jsjoin a {b c} d')).toBe('a+b c+d');
    expect(tcl.eval('string length [jsbytes]')).toBe('256');
    expect(tcl.eval('catch {jsfail} msg; set msg')).toBe('refused by JavaScript');
  });
});

describe('host files', () => {
  it('open, seek, read, puts -nonewline, flush and close work on real files, relative to the cwd', () => {
    const path = join(work, 'disk.img');
    writeFileSync(path, Buffer.alloc(1024, 0x11));
    const rel = relative(process.cwd(), path);
    tcl.setVar('path', rel);
    tcl.setVar('data', ALL_BYTES);
    tcl.eval(`
      set fh [open $path r+]
      fconfigure $fh -translation binary
      seek $fh 100
      puts -nonewline $fh $data
      flush $fh
      seek $fh 99
      set back [read $fh 258]
      close $fh
    `);
    const file = readFileSync(path);
    expect(file.length).toBe(1024);
    expect(Array.from(file.subarray(100, 356))).toEqual(Array.from(ALL_BYTES));
    expect(file[99]).toBe(0x11);
    expect(file[356]).toBe(0x11);
    const back = tcl.getVar('back');
    const bytes = tcl.objBytes(back as number);
    tcl.release(back);
    expect(bytes[0]).toBe(0x11);
    expect(Array.from(bytes.subarray(1, 257))).toEqual(Array.from(ALL_BYTES));
    expect(tcl.eval('file size $path')).toBe('1024');
  });
});

describe('standard channels', () => {
  it("stdout goes to the sink set by the host, never to the process's own stdout", () => {
    const chunks: Uint8Array[] = [];
    runtime.setOutput(1, (bytes) => chunks.push(bytes));
    try {
      tcl.eval('puts "line one"; puts -nonewline "two"; flush stdout');
    } finally {
      runtime.setOutput(1, () => undefined);
    }
    expect(Buffer.concat(chunks).toString()).toBe('line one\ntwo');
  });

  it('stdin is at end of file', () => {
    expect(tcl.eval('gets stdin line')).toBe('-1');
  });
});
