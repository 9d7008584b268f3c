/**
 * What pyodide cannot do with threads and processes, said at once and plainly: its Python has no
 * threads (WebAssembly without shared memory here), so starting one fails, and multiprocessing
 * needs both processes and socket pairs. CPython's own message ("can't start new thread") does not
 * say why; these do.
 *
 * Python source, the module _nbdkit_threads, run into the snapshot (see runtime.ts).
 */
export const THREAD_LIMITS = String.raw`
import _thread, sys as _sys

_WHY = ('nbdkit-ts runs Python in WebAssembly (pyodide), which has no threads: '
        'a plugin cannot start one')


def _no_thread(*args, **kwargs):
    raise RuntimeError("can't start new thread: " + _WHY)


for _name in ('start_new_thread', 'start_new', 'start_joinable_thread'):
    if hasattr(_thread, _name):
        setattr(_thread, _name, _no_thread)
if 'threading' in _sys.modules:
    _threading = _sys.modules['threading']
    for _name in ('_start_new_thread', '_start_joinable_thread'):
        if hasattr(_threading, _name):
            setattr(_threading, _name, _no_thread)
`;
