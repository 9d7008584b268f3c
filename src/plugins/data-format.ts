/**
 * The data plugin's little language (nbdkit-data-plugin(1), "DATA FORMAT"): bytes, strings,
 * `@offset` moves, `( ... )` groups, `*N` repeats, `[N:M]` slices, `<FILE`, `<(SCRIPT)`,
 * `le16:`/`be64:` words, `\name` assignments and `$var` substitutions, evaluated into a disk.
 *
 * Three passes, as in nbdkit: a parser builds a tree; a simplifier merges constant pieces
 * (adjacent bytes into strings, runs of one byte into fills, ...); an evaluator writes the tree
 * into a sparse page store. The simplifier is not only for speed: what it produces decides how
 * pages are allocated (a byte `0` is written and allocates its page, `0*2` becomes a fill of
 * zeroes, which does not), so it follows nbdkit's rules exactly for `nbdinfo --map` to print
 * the same map as native nbdkit.
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { PluginError } from '../host/plugin.js';
import { parseUnsigned } from './parse-number.js';
import { SparsePages } from './sparse-pages.js';

export type Expr =
  | { readonly t: 'null' }
  | { readonly t: 'list'; readonly items: readonly Expr[] }
  | { readonly t: 'byte'; readonly b: number }
  | { readonly t: 'abs'; readonly n: bigint }
  | { readonly t: 'rel'; readonly n: bigint }
  | { readonly t: 'align'; readonly n: bigint }
  | { readonly t: 'file'; readonly name: string }
  | { readonly t: 'script'; readonly text: string }
  | { readonly t: 'string'; readonly s: Uint8Array }
  | { readonly t: 'fill'; readonly b: number; readonly n: bigint }
  | { readonly t: 'name'; readonly name: string }
  | { readonly t: 'assign'; readonly name: string; readonly e: Expr }
  | { readonly t: 'repeat'; readonly e: Expr; readonly n: bigint }
  /** m is -1 for "to the end". */
  | { readonly t: 'slice'; readonly e: Expr; readonly n: bigint; readonly m: bigint };

const NULL: Expr = { t: 'null' };
const INT64_MAX = (1n << 63n) - 1n;
const UINT64 = (n: bigint): bigint => BigInt.asUintN(64, n);

function fail(message: string): never {
  throw new PluginError(message, 'EINVAL');
}

const isSpace = (c: string | undefined): boolean => c !== undefined && ' \t\n\v\f\r'.includes(c);
const isAlnum = (c: string | undefined): boolean => c !== undefined && /^[A-Za-z0-9]$/.test(c);

/**
 * scanf's %i at text[i]: white space, a sign, then 0x hex, 0 octal or decimal. Returns the
 * value (clamped to int64 as strtoimax clamps) and where it ended, or undefined if no number.
 */
function scanInteger(text: string, i: number): { value: bigint; end: number } | undefined {
  while (isSpace(text[i])) i++;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') negative = text[i++] === '-';
  let match: RegExpExecArray | null;
  let value: bigint;
  const rest = text.slice(i);
  if ((match = /^0[xX]([0-9a-fA-F]+)/.exec(rest))) value = BigInt(`0x${match[1]}`);
  else if ((match = /^0([0-7]*)/.exec(rest))) value = match[1] === '' ? 0n : BigInt(`0o${match[1]}`);
  else if ((match = /^[0-9]+/.exec(rest))) value = BigInt(match[0]);
  else return undefined;
  if (negative) value = -value;
  if (value > INT64_MAX) value = INT64_MAX;
  if (value < -INT64_MAX - 1n) value = -INT64_MAX - 1n;
  return { value, end: i + match[0].length };
}

/** Where the data comes from: extra key=value parameters of the plugin, then the environment. */
export type Lookup = (name: string) => string | undefined;

/** The parser: one list per nesting level, as nbdkit's. */
class Parser {
  constructor(private readonly lookup: Lookup) {}

  parse(text: string): Expr {
    const state = { i: 0 };
    return this.list(0, text, state);
  }

  private list(level: number, value: string, state: { i: number }): Expr {
    const items: Expr[] = [];
    const len = value.length;
    let i = state.i;
    const parseError = (at: number): never => fail(`data parameter: parsing error at offset ${at}`);
    const lastDataExpr = (what: string): Expr => {
      if (items.length === 0) fail(`${what} must follow an expression`);
      const last = items[items.length - 1];
      if (last.t === 'abs' || last.t === 'rel' || last.t === 'align') fail(`${what} cannot be applied to this type of expression`);
      return items.pop()!;
    };

    while (i < len) {
      const c = value[i];
      switch (c) {
        case '#':
          while (i < len && value[i] !== '\n') i++;
          break;

        case '@': {
          if (++i === len) parseError(i);
          const kind = value[i];
          if (kind === '+' || kind === '-' || kind === '^') {
            if (++i === len) parseError(i);
            const number = scanInteger(value, i) ?? parseError(i);
            if (number.value < 0n) fail(`data parameter after @${kind} must not be negative`);
            if (kind === '^' && (number.value & (number.value - 1n)) !== 0n) {
              fail(`data parameter @^${number.value} must be a power of 2`);
            }
            if (kind === '^' && number.value === 0n) fail('data parameter @^0 must be a power of 2');
            i = number.end;
            if (kind === '^') items.push({ t: 'align', n: number.value });
            else items.push({ t: 'rel', n: kind === '-' ? -number.value : number.value });
          } else if (kind >= '0' && kind <= '9') {
            const number = scanInteger(value, i) ?? parseError(i);
            if (number.value < 0n) fail('data parameter @OFFSET must not be negative');
            i = number.end;
            items.push({ t: 'abs', n: number.value });
          } else parseError(i);
          break;
        }

        case '(': {
          state.i = i + 1;
          items.push(this.list(level + 1, value, state));
          i = state.i;
          break;
        }

        case ')':
          if (level < 1) fail("unmatched ')' in data string");
          state.i = i + 1;
          return { t: 'list', items };

        case '*': {
          i++;
          const e = lastDataExpr('*N');
          const number = scanInteger(value, i);
          if (!number) fail('*N not numeric');
          if (number.value < 0n) fail('data parameter @OFFSET must not be negative');
          i = number.end;
          items.push({ t: 'repeat', e, n: number.value });
          break;
        }

        case '[': {
          i++;
          const e = lastDataExpr('[N:M]');
          const slice = scanSlice(value, i) ?? fail('enclosed pattern (...)[N:M] not numeric');
          i = slice.end;
          items.push({ t: 'slice', e, n: UINT64(slice.n), m: slice.m });
          break;
        }

        case '<':
          if (value[i + 1] === '(') {
            i += 2;
            const end = scriptEnd(value, i);
            if (end === undefined || end === i) parseError(i);
            items.push({ t: 'script', text: value.slice(i, end) });
            i = end! + 1;
          } else {
            i++;
            let end = i;
            while (end < len && !'*[) \t\n'.includes(value[end])) end++;
            if (end === i) fail('data parameter <FILE not a filename');
            items.push({ t: 'file', name: value.slice(i, end) });
            i = end;
          }
          break;

        case '"': {
          const parsed = parseString(value, i + 1);
          items.push({ t: 'string', s: parsed.bytes });
          i = parsed.end;
          break;
        }

        case '\\': {
          const name = nameAt(value, i, '\\') ?? parseError(i);
          items.push({ t: 'name', name: name.name });
          i = name.end;
          break;
        }

        case '-': {
          i++;
          if (value[i] !== '>') parseError(i);
          i++;
          const e = lastDataExpr('->');
          const name = nameAt(value, i, '\\') ?? parseError(i);
          items.push({ t: 'assign', name: name.name, e });
          i = name.end;
          break;
        }

        case '$': {
          const name = nameAt(value, i, '$') ?? parseError(i);
          i = name.end;
          const content = this.lookup(name.name) ?? fail(`$${name.name}: variable not found`);
          items.push(this.list(0, content, { i: 0 }));
          break;
        }

        case 'l':
        case 'b': {
          let end = i;
          while (end < len && !isSpace(value[end])) end++;
          items.push({ t: 'string', s: parseWord(value.slice(i, end), end) });
          i = end;
          break;
        }

        case ' ':
        case '\t':
        case '\n':
        case '\f':
        case '\r':
        case '\v':
          i++;
          break;

        default:
          if (c >= '0' && c <= '9') {
            const number = scanInteger(value, i) ?? parseError(i);
            if (number.value < 0n || number.value > 255n) fail('data parameter BYTE must be in the range 0..255');
            items.push({ t: 'byte', b: Number(number.value) });
            i = number.end;
          } else parseError(i);
      }
    }
    if (level > 0) fail("unmatched '(' in data string");
    state.i = i;
    return { t: 'list', items };
  }
}

/** `[N:M]`, `[:M]`, `[N:]` or `[:]` after the `[`: N defaults to 0, M to -1 (the end). */
function scanSlice(value: string, i: number): { n: bigint; m: bigint; end: number } | undefined {
  let n = 0n;
  let m = -1n;
  let at = i;
  const first = scanInteger(value, at);
  if (first) {
    n = first.value;
    at = first.end;
  }
  if (value[at] !== ':') return undefined;
  at++;
  const second = scanInteger(value, at);
  if (second) {
    m = second.value;
    at = second.end;
  }
  if (value[at] !== ']') return undefined;
  return { n, m, end: at + 1 };
}

/** The `)` closing a `<(SCRIPT)` whose text starts at i (parentheses inside must pair up). */
function scriptEnd(value: string, i: number): number | undefined {
  let depth = 0;
  for (; i < value.length; i++) {
    if (value[i] === '(') depth++;
    else if (value[i] === ')') {
      if (depth === 0) return i;
      depth--;
    }
  }
  return undefined;
}

/** `\NAME` or `$VAR` at i (after optional white space): the name and where it ends. */
function nameAt(value: string, i: number, sigil: '\\' | '$'): { name: string; end: number } | undefined {
  while (isSpace(value[i])) i++;
  if (value[i] !== sigil) return undefined;
  i++;
  const start = i;
  if (sigil === '$') {
    if (!(value[i] !== undefined && /^[A-Za-z_]$/.test(value[i]))) return undefined;
    while (isAlnum(value[i]) || value[i] === '_') i++;
  } else {
    while (isAlnum(value[i]) || value[i] === '_' || value[i] === '-') i++;
  }
  if (i === start) return undefined;
  return { name: value.slice(start, i), end: i };
}

const ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };

/** A C-like string after its opening quote: bytes (each character taken as one byte) and where it ended. */
function parseString(value: string, i: number): { bytes: Uint8Array; end: number } {
  const out: number[] = [];
  const unterminated = (): never => fail('data parameter: unterminated string');
  for (; i < value.length; i++) {
    let c = value[i];
    if (c === '"') return { bytes: Uint8Array.from(out), end: i + 1 };
    if (c === '\\') {
      if (++i === value.length) unterminated();
      c = value[i];
      if (c in ESCAPES) {
        out.push(ESCAPES[c]);
        continue;
      }
      if (c === 'x') {
        if (i + 2 >= value.length) unterminated();
        const hex = value.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) fail('data: \\xNN must be followed by exactly two hexadecimal characters');
        out.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
      if (/^[0-9u]$/.test(c)) fail('data: string numeric and unicode sequences are not yet implemented');
    }
    out.push(c.charCodeAt(0) & 0xff);
  }
  return unterminated();
}

/** `le16:N` ... `be64:N`, the word as 2, 4 or 8 bytes. */
function parseWord(word: string, end: number): Uint8Array {
  const match = /^(le|be)(16|32|64):/.exec(word);
  if (!match) fail(`data parameter: expected "le16/32/64:" or "be16/32/64:" at offset ${end}`);
  const bits = Number(match[2]) as 16 | 32 | 64;
  const number = parseUnsigned('data', word.slice(5), bits);
  const bytes = new Uint8Array(bits / 8);
  const view = new DataView(bytes.buffer);
  const little = match[1] === 'le';
  if (bits === 16) view.setUint16(0, Number(number), little);
  else if (bits === 32) view.setUint32(0, Number(number), little);
  else view.setBigUint64(0, number, little);
  return bytes;
}

// ---- the simplifier ----

/** Scoped expressions change meaning when their list is flattened into the one around it. */
function safeToInline(e: Expr): boolean {
  return !(e.t === 'assign' || e.t === 'name' || e.t === 'abs' || e.t === 'rel' || e.t === 'align');
}

function singleByte(e: Expr): number | undefined {
  switch (e.t) {
    case 'byte':
      return e.b;
    case 'list':
      return e.items.length === 1 ? singleByte(e.items[0]) : undefined;
    case 'string':
      return e.s.length === 1 ? e.s[0] : undefined;
    case 'fill':
      return e.n === 1n ? e.b : undefined;
    case 'repeat':
      return e.n === 1n ? singleByte(e.e) : undefined;
    default:
      return undefined;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Two neighbours merged into one, if they can be: bytes, strings and fills of one byte. */
function combine(a: Expr, b: Expr): Expr | undefined {
  if (a.t === 'byte') {
    if (b.t === 'byte') return a.b === b.b ? { t: 'fill', b: a.b, n: 2n } : { t: 'string', s: Uint8Array.of(a.b, b.b) };
    if (b.t === 'string') return { t: 'string', s: concat(Uint8Array.of(a.b), b.s) };
    if (b.t === 'fill' && a.b === b.b) return { t: 'fill', b: b.b, n: UINT64(b.n + 1n) };
  } else if (a.t === 'string') {
    if (b.t === 'byte') return { t: 'string', s: concat(a.s, Uint8Array.of(b.b)) };
    if (b.t === 'string') return { t: 'string', s: concat(a.s, b.s) };
  } else if (a.t === 'fill') {
    if (b.t === 'byte' && a.b === b.b) return { t: 'fill', b: a.b, n: UINT64(a.n + 1n) };
    if (b.t === 'fill' && a.b === b.b) return { t: 'fill', b: a.b, n: UINT64(a.n + b.n) };
  }
  return undefined;
}

export function simplify(e: Expr): Expr {
  switch (e.t) {
    case 'list': {
      const items: Expr[] = [];
      for (const item of e.items) {
        const simple = simplify(item);
        if (simple.t === 'null') continue;
        if (simple.t === 'list' && simple.items.every(safeToInline)) items.push(...simple.items);
        else items.push(simple);
      }
      for (let i = 1; i < items.length; i++) {
        const merged = combine(items[i - 1], items[i]);
        if (merged) {
          items.splice(i - 1, 2, merged);
          i--;
        }
      }
      if (items.length === 0) return NULL;
      if (items.length === 1 && safeToInline(items[0])) return items[0];
      return { t: 'list', items };
    }
    case 'assign':
      return { ...e, e: simplify(e.e) };
    case 'repeat': {
      if (e.n === 0n) return NULL;
      const inner = simplify(e.e);
      if (e.n === 1n || inner.t === 'null') return inner;
      if (inner.t === 'repeat') return { t: 'repeat', e: inner.e, n: UINT64(e.n * inner.n) };
      if (inner.t === 'fill') return { t: 'fill', b: inner.b, n: UINT64(e.n * inner.n) };
      if (inner.t === 'string' && e.n <= 4n && inner.s.length <= 512) {
        const out = new Uint8Array(inner.s.length * Number(e.n));
        for (let k = 0; k < Number(e.n); k++) out.set(inner.s, k * inner.s.length);
        return { t: 'string', s: out };
      }
      const byte = singleByte(inner);
      if (byte !== undefined) return { t: 'fill', b: byte, n: e.n };
      return { t: 'repeat', e: inner, n: e.n };
    }
    case 'slice': {
      const { n, m } = e;
      // n is unsigned, m signed: C compares them as unsigned.
      if (n === UINT64(m)) return NULL;
      const inner = simplify(e.e);
      const slicedLength = (length: bigint): bigint | undefined => {
        if (m >= 0n && n <= m && m <= length) return m - n;
        if (m === -1n && n <= length) return length - n;
        return undefined;
      };
      if (inner.t === 'null' && (m === 0n || (n === 0n && m === -1n))) return NULL;
      if (inner.t === 'byte' && (m === 1n || (n === 0n && m === -1n))) return { t: 'byte', b: inner.b };
      if (inner.t === 'string') {
        const length = slicedLength(BigInt(inner.s.length));
        if (length !== undefined) {
          const part = inner.s.slice(Number(n), Number(n + length));
          return length === 1n ? { t: 'byte', b: part[0] } : { t: 'string', s: part };
        }
      }
      if (inner.t === 'fill') {
        const length = slicedLength(inner.n);
        if (length !== undefined) return length === 1n ? { t: 'byte', b: inner.b } : { t: 'fill', b: inner.b, n: length };
      }
      return { ...e, e: inner };
    }
    case 'string': {
      if (e.s.length === 0) return NULL;
      if (e.s.length > 1 && e.s.every((byte) => byte === e.s[0])) return { t: 'fill', b: e.s[0], n: BigInt(e.s.length) };
      return e;
    }
    case 'fill':
      return e.n === 0n ? NULL : e;
    default:
      return e;
  }
}

// ---- the evaluator ----

/** What the evaluator writes into: the plugin's disk, or a scratch one for a nested expression. */
export interface DataTarget {
  write(buf: Uint8Array, offset: bigint): void;
  fill(byte: number, length: number, offset: bigint): void;
  blit(source: SparsePages, length: number, sourceOffset: bigint, destOffset: bigint): void;
}

/** Assignments visible in a scope, innermost first; each remembers the scope it was made in. */
interface Binding {
  readonly next: Binding | undefined;
  readonly name: string;
  readonly e: Expr;
}

/** Lengths in memory are numbers; a disk larger than 2^53 bytes of data is not possible anyway. */
function asLength(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) fail(`data: expression of ${n} bytes is too large`);
  return Number(n);
}

const READ_CHUNK = 65536;

/** The bytes of FILE from `skip`, at most `limit` of them (undefined: to its end), written at offset. */
function storeFile(target: DataTarget, name: string, offset: bigint, skip: bigint, limit: bigint | undefined): bigint {
  let fd: number;
  try {
    fd = openSync(name, 'r');
  } catch (error) {
    fail(`${name}: ${systemMessage(error)}`);
  }
  try {
    // Regular files are read at positions; devices and pipes in order, dropping `skip` bytes.
    const seekable = fstatSync(fd).isFile();
    const chunk = new Uint8Array(READ_CHUNK);
    let position = skip;
    let toSkip = seekable ? 0n : skip;
    let stored = 0n;
    for (;;) {
      const want = limit === undefined ? READ_CHUNK : Math.min(READ_CHUNK, Number(limit - stored));
      if (want <= 0) break;
      const wantNow = toSkip > 0n ? Math.min(READ_CHUNK, Number(toSkip)) : want;
      let n: number;
      try {
        n = readSync(fd, chunk, 0, wantNow, seekable ? position : null);
      } catch (error) {
        fail(`fread: ${name}: ${systemMessage(error)}`);
      }
      if (n === 0) break;
      position += BigInt(n);
      if (toSkip > 0n) {
        toSkip -= BigInt(n);
        continue;
      }
      target.write(chunk.subarray(0, n), offset + stored);
      stored += BigInt(n);
    }
    return stored;
  } finally {
    closeSync(fd);
  }
}

function systemMessage(error: unknown): string {
  const message = (error as Error).message;
  // "ENOENT: no such file or directory, open 'x'" -> "No such file or directory"
  const match = /^[A-Z0-9]+: ([^,]+)/.exec(message);
  const text = match ? match[1] : message;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The output of `sh -c SCRIPT` (its stdin and stderr are the server's, as popen's), at most
 * `limit` bytes of it; the script's exit status counts only when all of it was wanted.
 */
function runScript(script: string, limit: bigint | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // A script cut short by [:LEN] must die of SIGPIPE quietly, as under nbdkit's popen. Two
    // things stand in the way: Node ignores SIGPIPE and children inherit that (GNU env restores
    // it), and Node's pipe to a child is a socket, on which an early close is ECONNRESET, not
    // SIGPIPE. So a cut-short script writes into a real pipe, to a cat whose complaint about
    // the closed socket is dropped.
    const args = limit === undefined ? ['-c', script] : ['-c', '{ eval "$1"\n} | cat 2>/dev/null', 'sh', script];
    const child = spawn('/usr/bin/env', ['--default-signal=PIPE', '/bin/sh', ...args], {
      stdio: ['inherit', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    let length = 0;
    let enough = limit !== undefined && limit <= 0n;
    if (enough) child.stdout.destroy();
    child.stdout.on('data', (chunk: Buffer) => {
      if (enough) return;
      chunks.push(chunk);
      length += chunk.length;
      if (limit !== undefined && BigInt(length) >= limit) {
        // Enough: close the pipe, as pclose does; the script sees SIGPIPE or EPIPE.
        enough = true;
        child.stdout.destroy();
      }
    });
    child.on('error', (error) => reject(new PluginError(`popen: ${error.message}`, 'EIO')));
    child.on('close', (code) => {
      const output = Buffer.concat(chunks);
      if (limit !== undefined) return resolve(output.subarray(0, Number(limit < BigInt(output.length) ? limit : BigInt(output.length))));
      if (code !== 0) return reject(new PluginError('pclose: external command failed', 'EIO'));
      resolve(output);
    });
  });
}

class Evaluator {
  /** Evaluate e into target from offset 0, returning the size it reached. */
  async run(e: Expr, target: DataTarget): Promise<bigint> {
    const cursor = { offset: 0n, size: 0n };
    await this.evaluate(undefined, e, target, cursor);
    return cursor.size;
  }

  /** e into a fresh scratch disk; returns the disk and the size of what it holds. */
  private async nested(scope: Binding | undefined, e: Expr): Promise<{ pages: SparsePages; size: bigint }> {
    const pages = new SparsePages();
    const cursor = { offset: 0n, size: 0n };
    await this.evaluate(scope, e, pages, cursor);
    return { pages, size: cursor.size };
  }

  private async evaluate(
    outer: Binding | undefined,
    root: Expr,
    target: DataTarget,
    cursor: { offset: bigint; size: bigint },
  ): Promise<void> {
    let scope = outer;
    const items = root.t === 'list' ? root.items : [root];
    for (const e of items) {
      switch (e.t) {
        case 'null':
          break;
        case 'byte':
          target.write(Uint8Array.of(e.b), cursor.offset);
          cursor.offset++;
          break;
        case 'abs':
          cursor.offset = e.n;
          break;
        case 'rel':
          if (e.n < 0n && -e.n > cursor.offset) {
            fail(`data parameter @${e.n} must not be larger than the current offset ${cursor.offset}`);
          }
          cursor.offset += e.n;
          break;
        case 'align':
          cursor.offset = ((cursor.offset + e.n - 1n) / e.n) * e.n;
          break;
        case 'file':
          cursor.offset += storeFile(target, e.name, cursor.offset, 0n, undefined);
          break;
        case 'script': {
          const output = await runScript(e.text, undefined);
          target.write(output, cursor.offset);
          cursor.offset += BigInt(output.length);
          break;
        }
        case 'string':
          target.write(e.s, cursor.offset);
          cursor.offset += BigInt(e.s.length);
          break;
        case 'fill':
          target.fill(e.b, asLength(e.n), cursor.offset);
          cursor.offset += e.n;
          break;
        case 'assign':
          scope = { next: scope, name: e.name, e: e.e };
          break;
        case 'name': {
          let binding = scope;
          while (binding && binding.name !== e.name) binding = binding.next;
          if (!binding) fail(`\\${e.name} not defined`);
          // Evaluated in the scope the assignment was made in, not the current one.
          const { pages, size } = await this.nested(binding.next, binding.e);
          target.blit(pages, asLength(size), 0n, cursor.offset);
          cursor.offset += size;
          break;
        }
        case 'slice':
          if (e.e.t === 'file') {
            // Read only the slice: the file may be endless (/dev/urandom).
            if ((e.m >= 0n && e.n > e.m) || e.m < -2n) fail('<FILE[N:M] does not describe a valid slice');
            const limit = e.m === -1n ? undefined : e.m < 0n ? 0n : e.m - e.n;
            cursor.offset += storeFile(target, e.e.name, cursor.offset, e.n, limit);
            break;
          }
          if (e.e.t === 'script' && e.n === 0n) {
            // nbdkit reads nothing for <(SCRIPT)[0:] (the length -1 ends its read loop at once).
            const output = await runScript(e.e.text, e.m < 0n ? 0n : e.m);
            target.write(output, cursor.offset);
            cursor.offset += BigInt(output.length);
            break;
          }
          await this.slice(scope, e, target, cursor);
          break;
        case 'list': {
          const { pages, size } = await this.nested(scope, e);
          target.blit(pages, asLength(size), 0n, cursor.offset);
          cursor.offset += size;
          break;
        }
        case 'repeat': {
          const { pages, size } = await this.nested(scope, e.e);
          const length = asLength(size);
          for (let k = 0n; k < e.n; k++) {
            target.blit(pages, length, 0n, cursor.offset);
            cursor.offset += size;
          }
          break;
        }
      }
      if (cursor.size < cursor.offset) cursor.size = cursor.offset;
    }
  }

  private async slice(
    scope: Binding | undefined,
    e: Extract<Expr, { t: 'slice' }>,
    target: DataTarget,
    cursor: { offset: bigint; size: bigint },
  ): Promise<void> {
    const { pages, size } = await this.nested(scope, e.e);
    const end = e.m < 0n ? size : e.m;
    if (e.n > size || end > size || e.n > end) fail('[N:M] does not describe a valid slice');
    target.blit(pages, asLength(end - e.n), e.n, cursor.offset);
    cursor.offset += end - e.n;
  }
}

/**
 * The tree one node a line, indented by depth, in the notation nbdkit's `-D data.AST=1` prints
 * (nbdkit's own tests read it to check the simplifier).
 */
export function describeTree(e: Expr, level = 0, out: string[] = []): string[] {
  const indent = ' '.repeat(4 * Math.min(level, 10));
  const line = (text: string): number => out.push(indent + text);
  switch (e.t) {
    case 'null':
      line('null');
      break;
    case 'list':
      line('(');
      for (const item of e.items) describeTree(item, level + 1, out);
      line(')');
      break;
    case 'byte':
      line(String(e.b));
      break;
    case 'abs':
      line(`@${e.n}`);
      break;
    case 'rel':
      line(`@${e.n}`);
      break;
    case 'align':
      line(`@^${e.n}`);
      break;
    case 'file':
      line(`<${e.name}`);
      break;
    case 'script':
      line(`<(${e.text})`);
      break;
    case 'string': {
      let text = '';
      for (const byte of e.s) text += byte >= 32 && byte <= 126 ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
      line(`"${text}"`);
      break;
    }
    case 'fill':
      line(`fill(${e.b}*${e.n})`);
      break;
    case 'name':
      line(`\\${e.name}`);
      break;
    case 'assign':
      line('(');
      describeTree(e.e, level + 1, out);
      line(`) -> \\${e.name}`);
      break;
    case 'repeat':
      line('(');
      describeTree(e.e, level + 1, out);
      line(`) *${e.n}`);
      break;
    case 'slice':
      line('(');
      describeTree(e.e, level + 1, out);
      line(`)[${e.n}:${e.m}]`);
      break;
  }
  return out;
}

/**
 * Parse, simplify and evaluate `text` into target; returns the size the data reached. `debug`,
 * when given, receives the simplified tree (for -D data.AST=1).
 */
export async function evaluateData(text: string, target: DataTarget, lookup: Lookup, debug?: (line: string) => void): Promise<bigint> {
  const tree = simplify(new Parser(lookup).parse(text));
  if (debug) {
    debug('BEGIN AST (-D data.AST=1)');
    for (const line of describeTree(tree)) debug(line);
    debug('END AST');
  }
  return new Evaluator().run(tree, target);
}

/** The tree after simplification, for tests and -v. */
export function parseData(text: string, lookup: Lookup): Expr {
  return simplify(new Parser(lookup).parse(text));
}
