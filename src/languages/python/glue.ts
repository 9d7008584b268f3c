/**
 * The Python half of the adapter, run inside pyodide once per process (never part of the memory
 * snapshot, so a snapshot made by one version of nbdkit-ts never carries another's glue).
 *
 * It defines the `nbdkit` module scripts import, the per-callback dispatchers the TypeScript side
 * calls with plain numbers (so a request costs one call across the boundary and no proxies), and
 * the few `os` functions pyodide lacks or fakes (preadv, pwritev, fsync on host files).
 *
 * Errors never cross the boundary as exceptions: a dispatcher prints the traceback the way
 * nbdkit's python plugin does and tells the host which errno to send (`_host.fail`), then returns.
 */

/**
 * Modules imported before the memory snapshot is taken: standard library only, no plugin state.
 * Whatever a typical script imports is worth having here: each import is then free at start-up.
 */
export const SNAPSHOT_PRELUDE = `
import os, sys, errno, types, traceback, linecache, tokenize, json, io, struct, stat
import base64, pickle, threading, time, operator, unittest, random, hashlib, logging
`;

/** The file name the glue's code carries (tracebacks leave its frames out). */
export const GLUE_FILENAME = '<nbdkit-ts glue>';

export const GLUE = String.raw`
import os, sys, errno as _errno, types as _types, traceback as _traceback, json as _json, operator as _operator

# The host's services (HostModule in runtime.ts), bound after every start: a JS object never
# enters the snapshot.
_host = None


def _bind(host):
    global _host
    _host = host

# ---------------------------------------------------------------- the nbdkit module

nbdkit = _types.ModuleType('nbdkit', 'Module used to access nbdkit server API')
for _name, _value in (
    ('THREAD_MODEL_SERIALIZE_CONNECTIONS', 0), ('THREAD_MODEL_SERIALIZE_ALL_REQUESTS', 1),
    ('THREAD_MODEL_SERIALIZE_REQUESTS', 2), ('THREAD_MODEL_PARALLEL', 3),
    ('FLAG_MAY_TRIM', 1), ('FLAG_FUA', 2), ('FLAG_REQ_ONE', 4), ('FLAG_FAST_ZERO', 8),
    ('FUA_NONE', 0), ('FUA_EMULATE', 1), ('FUA_NATIVE', 2),
    ('CACHE_NONE', 0), ('CACHE_EMULATE', 1), ('CACHE_NATIVE', 2),
    ('EXTENT_HOLE', 1), ('EXTENT_ZERO', 2)):
    setattr(nbdkit, _name, _value)


class _RequestState:
    # An instance, not class attributes: every request sets these, and assigning to a class
    # attribute invalidates CPython's type caches (about 0.1 us each).
    __slots__ = ('last_error', 'pread_buffer')

    def __init__(self):
        self.last_error = 0
        # The buffer the running API 2 pread was given (see preadv below).
        self.pread_buffer = None


_State = _RequestState()


def _expect(value, kind, func):
    if not isinstance(value, kind):
        raise TypeError('%s() argument must be %s, not %s'
                        % (func, kind.__name__, type(value).__name__))


def _nbdkit_debug(msg):
    _expect(msg, str, 'debug')
    _host.debug(msg)


def _nbdkit_export_name():
    name = _host.export_name()
    if name is None:
        raise RuntimeError('nbdkit.export_name failed')
    return name


def _nbdkit_set_error(err):
    _expect(err, int, 'set_error')
    _State.last_error = err


def _nbdkit_parse_size(s):
    _expect(s, str, 'parse_size')
    size = _host.parse_size(s)
    if size is None:
        raise ValueError('Unable to parse string as size')
    return int(size)


def _nbdkit_shutdown():
    _host.shutdown()


# nbdkit 1.34 to 1.44. Each asks the host (script-api.ts), which prints why on failure and
# returns None; the function then raises as nbdkit's C module does.
def _api(name, *args):
    r = _host.api(name, *args)
    if r is None:
        raise RuntimeError('nbdkit.%s failed' % name)
    return r


def _nbdkit_disconnect(force):
    _host.api('disconnect', bool(force))


def _nbdkit_is_tls():
    return bool(_api('is_tls'))


def _nbdkit_stdio_safe():
    return bool(_api('stdio_safe'))


def _nbdkit_nanosleep(sec, nsec):
    _expect(sec, int, 'nanosleep')
    _expect(nsec, int, 'nanosleep')
    if sec < 0 or nsec < 0:
        raise OverflowError('can\'t convert negative int to unsigned')
    _api('nanosleep', sec, nsec)


def _nbdkit_peer_pid():
    return int(_api('peer_pid'))


def _nbdkit_peer_uid():
    return int(_api('peer_uid'))


def _nbdkit_peer_gid():
    return int(_api('peer_gid'))


def _nbdkit_peer_security_context():
    return str(_api('peer_security_context'))


def _nbdkit_peer_tls_dn():
    return str(_api('peer_tls_dn'))


def _nbdkit_peer_tls_issuer_dn():
    return str(_api('peer_tls_issuer_dn'))


def _nbdkit_read_password(s):
    _expect(s, str, 'read_password')
    return str(_api('read_password', s))


def _nbdkit_parse_delay(what, s):
    _expect(what, str, 'parse_delay')
    _expect(s, str, 'parse_delay')
    r = _host.api('parse_delay', what, s)
    if r is None:
        raise ValueError('Unable to parse string as delay')
    sec, nsec = str(r).split(' ')
    return (int(sec), int(nsec))


def _nbdkit_parse_probability(what, s):
    _expect(what, str, 'parse_probability')
    _expect(s, str, 'parse_probability')
    r = _host.api('parse_probability', what, s)
    if r is None:
        raise ValueError('Unable to parse string as probability')
    return float(r)


def _no_arguments(name, f):
    # As a METH_NOARGS function of a C module: any argument is a TypeError.
    def call(*args, **kwargs):
        if args or kwargs:
            raise TypeError('%s() takes no arguments (%d given)' % (name, len(args) + len(kwargs)))
        return f()
    return call


for _name, _fn in (('debug', _nbdkit_debug), ('set_error', _nbdkit_set_error),
                   ('parse_size', _nbdkit_parse_size), ('disconnect', _nbdkit_disconnect),
                   ('nanosleep', _nbdkit_nanosleep), ('read_password', _nbdkit_read_password),
                   ('parse_delay', _nbdkit_parse_delay), ('parse_probability', _nbdkit_parse_probability),
                   ('export_name', _no_arguments('export_name', _nbdkit_export_name)),
                   ('shutdown', _no_arguments('shutdown', _nbdkit_shutdown)),
                   ('is_tls', _no_arguments('is_tls', _nbdkit_is_tls)),
                   ('stdio_safe', _no_arguments('stdio_safe', _nbdkit_stdio_safe)),
                   ('peer_pid', _no_arguments('peer_pid', _nbdkit_peer_pid)),
                   ('peer_uid', _no_arguments('peer_uid', _nbdkit_peer_uid)),
                   ('peer_gid', _no_arguments('peer_gid', _nbdkit_peer_gid)),
                   ('peer_security_context', _no_arguments('peer_security_context', _nbdkit_peer_security_context)),
                   ('peer_tls_dn', _no_arguments('peer_tls_dn', _nbdkit_peer_tls_dn)),
                   ('peer_tls_issuer_dn', _no_arguments('peer_tls_issuer_dn', _nbdkit_peer_tls_issuer_dn))):
    _fn.__name__ = _fn.__qualname__ = _name
    _fn.__module__ = 'nbdkit'
    setattr(nbdkit, _name, _fn)
sys.modules['nbdkit'] = nbdkit

# ---------------------------------------------------------------- os functions pyodide lacks

if not hasattr(os, 'preadv'):
    def preadv(fd, buffers, offset, flags=0):
        # The common case, os.preadv(fd, [buf], offset) on the buffer pread was given, reads
        # straight into the request buffer from the host file.
        if len(buffers) == 1 and buffers[0] is _State.pread_buffer and offset < 9007199254740992:
            n = _host.read_into_request(fd, len(buffers[0]), offset)
            if n < 0:
                raise OSError(-n, os.strerror(-n))
            return n
        total = 0
        for b in buffers:
            m = memoryview(b).cast('B')
            data = os.pread(fd, len(m), offset + total)
            m[:len(data)] = data
            total += len(data)
            if len(data) < len(m):
                break
        return total
    os.preadv = preadv

if not hasattr(os, 'pwritev'):
    def pwritev(fd, buffers, offset, flags=0):
        total = 0
        for b in buffers:
            m = memoryview(b).cast('B')
            n = os.pwrite(fd, m, offset + total)
            total += n
            if n < len(m):
                break
        return total
    os.pwritev = pwritev


def _sync_wrapper(original, kind):
    # pyodide's fsync is a no-op on host files: ask Node to sync the real descriptor.
    def sync(fd):
        if not isinstance(fd, int) and hasattr(fd, 'fileno'):
            fd = fd.fileno()
        original(fd)
        failure = _host.sync_host_fd(fd, kind)
        if failure is not None:
            code = getattr(_errno, failure, _errno.EIO)
            raise OSError(code, os.strerror(code))
    sync.__name__ = original.__name__
    return sync


os.fsync = _sync_wrapper(os.fsync, 'fsync')
if hasattr(os, 'fdatasync'):
    os.fdatasync = _sync_wrapper(os.fdatasync, 'fdatasync')

# ---------------------------------------------------------------- process environment

def _adopt_process(env_json, cwd):
    # The snapshot remembers the environment of the process that made it: replace it.
    env = _json.loads(env_json)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ['']
    try:
        os.chdir(cwd)
    except OSError as e:
        _host.debug('python: cannot enter working directory %s: %s' % (cwd, e))

# ---------------------------------------------------------------- running the script

_main = sys.modules['__main__']
_G = _main.__dict__
_script = None
_api_version = 1
_handles = {}
_next_handle = 1


def _callable(name):
    f = _G.get(name)
    return f if callable(f) else None


def _load_script(path):
    """Run the script as __main__. Returns None, or the error text for the host to print."""
    global _script, _api_version
    _script = path
    try:
        with open(path, 'rb') as f:
            source = f.read()
    except OSError as e:
        return '%s: cannot open file: %s' % (path, e.strerror or e)
    _G['__file__'] = path
    try:
        code = compile(source, path, 'exec')
        exec(code, _G)
    except BaseException:
        t, e, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_code.co_filename == '<nbdkit-ts glue>':
            tb = tb.tb_next
        _traceback.print_exception(t, e, tb)
        if isinstance(e, ModuleNotFoundError):
            print('nbdkit-ts: python: scripts run in pyodide (Python %d.%d in WebAssembly); modules are '
                  'looked for in PYTHONPATH, the host\'s site-packages and dist-packages (or the '
                  'virtualenv of VIRTUAL_ENV) and the script\'s directory'
                  % sys.version_info[:2], file=sys.stderr)
        sys.stderr.flush()
        return '%s: error running this script' % path
    finally:
        sys.stdout.flush()
    if not (_callable('open') and _callable('get_size') and _callable('pread')):
        return ("%s: one of the required callbacks 'open', 'get_size' or 'pread' "
                "is not defined by this Python script.  nbdkit requires these callbacks." % path)
    version = _G.get('API_VERSION', 1)
    try:
        version = _operator.index(version)
    except TypeError:
        version = -1
    if version < 1 or version > 2:
        return ('%s: API_VERSION requested unknown version: %s.  '
                'This plugin supports API versions between 1 and 2.' % (path, _G.get('API_VERSION')))
    _api_version = version
    _host.debug('module requested API_VERSION %d' % version)
    return None


def _defined():
    """The names of the callbacks the script defines, space separated."""
    return ' '.join(sorted(k for k, v in _G.items() if callable(v) and not k.startswith('_')))


def _report(callback):
    """Print the pending exception as nbdkit does and tell the host the errno."""
    t, e, tb = sys.exc_info()
    # Start at the script's frame, as when nbdkit's C code calls the callback.
    while tb is not None and tb.tb_frame.f_code.co_filename == '<nbdkit-ts glue>':
        tb = tb.tb_next
    try:
        text = ' '.join(_traceback.format_exception(t, e, tb))
    except BaseException:
        text = str(e)
    try:
        # The client's error reply gets one line: the method and the exception.
        summary = '%s: %s' % (callback, _traceback.format_exception_only(t, e)[-1].strip())
    except BaseException:
        summary = None
    _fail('%s: %s: error: %s' % (_script, callback, text.rstrip('\n')), summary)


def _fail(message, summary=None):
    err = _State.last_error
    name = _errno.errorcode.get(err, 'EIO') if err else 'EIO'
    sys.stdout.flush()
    _host.fail(message, name, summary)


_FAILED = object()


def _call(callback, *args):
    """Call a callback; returns its result, or _FAILED once the failure is reported."""
    f = _callable(callback)
    _State.last_error = 0
    try:
        return f(*args)
    except BaseException:
        _report(callback)
        return _FAILED


def _to_string(value):
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode('utf-8', 'surrogateescape')
    return None

# ---------------------------------------------------------------- dispatchers

def _d_dump_plugin():
    f = _callable('dump_plugin')
    if f is not None:
        try:
            f()
        except BaseException:
            _traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()


def _d_config(key, value):
    _call('config', key, value)


def _d_noargs(callback):
    _call(callback)


def _int_result(callback, r):
    if r is _FAILED:
        return None
    try:
        return _operator.index(r)
    except TypeError:
        _fail('%s: %s: error: %s did not return an integer' % (_script, callback, callback))


def _d_int_noargs(callback):
    return _int_result(callback, _call(callback))


def _d_preconnect(readonly):
    _call('preconnect', readonly)


def _d_list_exports(readonly, is_tls):
    r = _call('list_exports', readonly, is_tls)
    if r is _FAILED:
        return None
    try:
        items = iter(r)
    except TypeError:
        return _fail('list_exports method did not return something which is iterable')
    out = []
    for t in items:
        name = _to_string(t)
        desc = None
        if name is None:
            if not isinstance(t, tuple) or len(t) != 2:
                return _fail('list_exports method did not return an iterable of 2-tuples')
            name, desc = _to_string(t[0]), _to_string(t[1])
            if name is None or desc is None:
                return _fail('list_exports method did not return an iterable of string 2-tuples')
        out.append([name, desc])
    return _json.dumps(out)


def _call_string(name, *args):
    # A callback whose result must be a string; None (reported) when it failed or was not one.
    r = _call(name, *args)
    if r is _FAILED:
        return None
    text = _to_string(r)
    if text is None:
        _fail(name + ' method did not return a string')
    return text


def _d_default_export(readonly, is_tls):
    return _call_string('default_export', readonly, is_tls)


def _d_open(readonly):
    global _next_handle
    f = _callable('open')
    _State.last_error = 0
    try:
        h = f(readonly)
    except BaseException:
        _report('open')
        return 0
    hid = _next_handle
    _next_handle += 1
    _handles[hid] = h
    return hid


def _d_close(hid):
    h = _handles.pop(hid, None)
    if _callable('close') is not None:
        _call('close', h)


def _d_export_description(hid):
    return _call_string('export_description', _handles[hid])


def _d_get_size(hid):
    r = _call('get_size', _handles[hid])
    if r is _FAILED:
        return None
    try:
        return _operator.index(r)
    except TypeError:
        _report('PyLong_AsLongLong')


def _d_block_size(hid):
    r = _call('block_size', _handles[hid])
    if r is _FAILED:
        return None
    try:
        if not isinstance(r, tuple) or len(r) != 3:
            raise TypeError('block_size must return a tuple of 3 integers')
        return '%d %d %d' % tuple(_operator.index(v) for v in r)
    except BaseException:
        _report('block_size: PyArg_ParseTuple')


def _d_bool(callback, hid):
    # As nbdkit: only the object True counts as true.
    return _call(callback, _handles[hid]) is True


def _d_int(callback, hid):
    return _int_result(callback, _call(callback, _handles[hid]))


# The reusable buffer requests go through: pread fills it, pwrite reads it. The host copies
# between it and the network buffer, the one copy the WASM boundary needs.
_scratch = bytearray(0)
_scratch_rw = memoryview(_scratch)
_scratch_ro = _scratch_rw.toreadonly()


def _d_scratch(size):
    """A fresh scratch buffer of at least size bytes (never resized in place: a script may hold
    a view of the old one). The host takes its address with getBuffer."""
    global _scratch, _scratch_rw, _scratch_ro
    _scratch = bytearray(size)
    _scratch_rw = memoryview(_scratch)
    _scratch_ro = _scratch_rw.toreadonly()
    return _scratch


def _d_pread2(hid, count, offset, flags):
    if offset.__class__ is not int:
        offset = int(offset)
    _State.last_error = 0
    buf = _State.pread_buffer = _scratch_rw[:count]
    try:
        _G['pread'](_handles[hid], buf, offset, flags)
    except BaseException:
        _report('pread')
    _State.pread_buffer = None


def _d_pread1(hid, count, offset, flags):
    if offset.__class__ is not int:
        offset = int(offset)
    _State.last_error = 0
    try:
        r = _G['pread'](_handles[hid], count, offset)
    except BaseException:
        return _report('pread')
    try:
        m = memoryview(r)
    except TypeError:
        return _fail('%s: value returned from pread does not support the buffer protocol' % _script)
    if m.nbytes < count:
        return _fail('%s: buffer returned from pread is too small' % _script)
    if m.format != 'B' or m.ndim != 1:
        m = m.cast('B')
    _scratch_rw[:count] = m[:count]


def _d_pwrite(hid, count, offset, flags):
    if offset.__class__ is not int:
        offset = int(offset)
    _State.last_error = 0
    try:
        if _api_version == 1:
            _G['pwrite'](_handles[hid], _scratch_ro[:count], offset)
        else:
            _G['pwrite'](_handles[hid], _scratch_ro[:count], offset, flags)
    except BaseException:
        _report('pwrite')


def _d_flush(hid, flags):
    if _api_version == 1:
        _call('flush', _handles[hid])
    else:
        _call('flush', _handles[hid], flags)


def _d_trim(hid, count, offset, flags):
    if offset.__class__ is not int:
        offset = int(offset)
    if _api_version == 1:
        _call('trim', _handles[hid], count, offset)
    else:
        _call('trim', _handles[hid], count, offset, flags)


def _d_zero(hid, count, offset, flags):
    if offset.__class__ is not int:
        offset = int(offset)
    f = _G['zero']
    _State.last_error = 0
    try:
        if _api_version == 1:
            f(_handles[hid], count, offset, bool(flags & 1))
        else:
            f(_handles[hid], count, offset, flags)
    except BaseException:
        if _State.last_error in (_errno.EOPNOTSUPP, _errno.ENOTSUP):
            return 'fallback'
        _report('zero')
        return None
    # A script may ask for the pwrite fallback without raising, as nbdkit allows.
    if _State.last_error in (_errno.EOPNOTSUPP, _errno.ENOTSUP):
        return 'fallback'
    return None


def _d_cache(hid, count, offset, flags):
    if offset.__class__ is not int:
        offset = int(offset)
    _call('cache', _handles[hid], count, offset, flags)


def _d_extents(hid, count, offset, flags):
    if offset.__class__ is not int:
        offset = int(offset)
    r = _call('extents', _handles[hid], count, offset, flags)
    if r is _FAILED:
        return None
    try:
        items = iter(r)
    except TypeError:
        return _fail('extents method did not return something which is iterable')
    out = []
    for t in items:
        if not isinstance(t, tuple) or len(t) != 3:
            return _fail('extents method did not return an iterable of 3-tuples')
        try:
            out.append('%d %d %d' % (_operator.index(t[0]), _operator.index(t[1]), _operator.index(t[2])))
        except BaseException:
            return _report('PyLong')
    if not out:
        return _fail('extents method cannot return an empty list')
    return ','.join(out)
`;
