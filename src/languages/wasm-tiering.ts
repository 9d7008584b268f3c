/** V8's WebAssembly tier-up budget, shared by the WebAssembly interpreters. */
import { setV8FlagUnlessChosen } from '../host/v8-flags.js';

/**
 * How much WebAssembly a function runs before V8 recompiles it with its optimising compiler,
 * in V8's rough units of bytes executed (V8 11's default is 1,800,000; the flag is an int32).
 *
 * The functions that matter are the interpreters' main loops (Lua's luaV_execute, 22 KB of
 * WebAssembly; Tcl's bytecode engine; CPython's eval loop): optimising one takes V8 tens of ms
 * of CPU and 10-20 MiB of compiler memory, and at the default budget that happens during
 * start-up (loading the script) or in the first requests of a transfer, when the server's own
 * buffers are at their peak. A request of a file-backed plugin runs a few dozen interpreter
 * instructions and spends its time in system calls and memory copies, which the baseline
 * compiler runs as fast, so it gains nothing. At this budget a loop is optimised after about
 * 100,000 Lua instructions: a plugin that computes gets there within ~0.1 s of work, one that
 * moves data rarely or never does. Measured start-up (`--run 'nbdinfo --size'`, file-backed
 * plugin): Lua 0.19 -> 0.12 s, Tcl 0.20 -> 0.16 s and 80 -> 61 MiB, Python 170 -> 152 MiB.
 */
const WASM_TIERING_BUDGET = 2_000_000_000;

/**
 * Raise V8's tier-up budget before an interpreter module is instantiated (each instance takes its
 * per-function budgets from the flag when it is created), unless the user chose a budget.
 */
export function delayWasmTierUp(budget = WASM_TIERING_BUDGET): void {
  setV8FlagUnlessChosen('wasm-tiering-budget', budget);
}
