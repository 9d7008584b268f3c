/** When V8 optimises the JavaScript of the request path. */
import { setV8FlagUnlessChosen } from './v8-flags.js';

/**
 * V8 optimises a function once it has run three "interrupt budgets" of bytecode, plus more for
 * a long function (`--interrupt-budget`, 66 KB in V8 11). A request runs a few hundred bytes of
 * each function on its path, so at 256 KiB per request the path was optimised only after several
 * thousand requests: two to four runs of copying 512 MiB, each 10-50% slower than the next.
 * A quarter of the budget has it optimised within the first run.
 */
const REQUEST_PATH_INTERRUPT_BUDGET = 16 * 1024;

/**
 * Lower the budget once the plugin is loaded, so that start-up code, which mostly runs once, is
 * not optimised any sooner than before; unless the user chose a budget.
 */
export function optimiseRequestPathSooner(): void {
  setV8FlagUnlessChosen('interrupt-budget', REQUEST_PATH_INTERRUPT_BUDGET);
}
