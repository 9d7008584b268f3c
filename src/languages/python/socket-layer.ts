/**
 * Python's `_socket` and `select`, as scripts in pyodide see them: TCP and Unix-socket clients
 * backed by real host connections through the socket bridge (socket-bridge.ts), with CPython's
 * exceptions (ConnectionRefusedError, ConnectionResetError, TimeoutError, socket.gaierror,
 * BlockingIOError). The standard `socket` module is CPython's own, running on top of this
 * `_socket`, so `create_connection`, `makefile`, `http.client` and the rest work unchanged.
 *
 * What cannot work here raises at once, saying so: server sockets (bind/listen/accept), UDP and
 * raw sockets, sockets made from descriptors, socketpair (and so multiprocessing's pipes).
 *
 * This is Python source, run before the memory snapshot is taken (it holds no host object: the
 * bridge is reached through the glue's `_host`, bound at every start).
 */
export const SOCKET_LAYER = String.raw`
import sys as _sys, os as _os, errno as _errno, types as _types, json as _json, weakref as _weakref
import _socket as _c

_m = _types.ModuleType('_socket', _c.__doc__)
for _n in dir(_c):
    if not _n.startswith('__'):
        setattr(_m, _n, getattr(_c, _n))

# pyodide's _socket has no Unix sockets; here they connect like TCP ones (Node's net does both).
if not hasattr(_c, 'AF_UNIX'):
    _m.AF_UNIX = 1
_AF_UNIX = _m.AF_UNIX

_UNSUPPORTED = ('%s is not supported by nbdkit-ts: Python runs in WebAssembly, where only outgoing '
                'TCP and Unix-socket client connections reach the host')


def _unsupported(what):
    return OSError(_errno.EOPNOTSUPP, _UNSUPPORTED % what)


def _call(request, data=None):
    host = _sys.modules['_nbdkit_glue']._host
    reply = _json.loads(host.socket_call(_json.dumps(request), data))
    return reply


def _take():
    return _sys.modules['_nbdkit_glue']._host.socket_data()


def _raise_errno(name, message=None):
    code = getattr(_errno, name, _errno.EIO)
    raise OSError(code, _os.strerror(code))


_default_timeout = None
_sockets = _weakref.WeakValueDictionary()   # placeholder descriptor -> socket, for select/poll


def getdefaulttimeout():
    return _default_timeout


def _check_timeout(value):
    if value is None:
        return None
    value = float(value)
    if value != value:
        raise ValueError('Invalid value NaN (not a number)')
    if value < 0:
        raise ValueError('Timeout value out of range')
    return value


def setdefaulttimeout(timeout):
    global _default_timeout
    _default_timeout = _check_timeout(timeout)


_STREAM_FAMILIES = (_c.AF_INET, _c.AF_INET6, _AF_UNIX)
_TYPE_MASK = ~(getattr(_c, 'SOCK_NONBLOCK', 0) | getattr(_c, 'SOCK_CLOEXEC', 0))


class socket:
    """A client socket whose connection lives on the host (see socket-bridge.ts)."""

    __slots__ = ('_family', '_type', '_proto', '_timeout', '_cid', '_fd', '_peer', '_local',
                 '_options', '__dict__')

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is not None:
            raise _unsupported('a socket made from an existing file descriptor')
        family = _c.AF_INET if family == -1 else int(family)
        type = _c.SOCK_STREAM if type == -1 else int(type)
        proto = 0 if proto == -1 else int(proto)
        if family not in _STREAM_FAMILIES:
            raise _unsupported('address family %d' % family)
        if (type & _TYPE_MASK) != _c.SOCK_STREAM:
            raise _unsupported('UDP (SOCK_DGRAM) and raw sockets' if (type & _TYPE_MASK) == _c.SOCK_DGRAM
                               else 'socket type %d' % type)
        self._family = family
        self._type = type & _TYPE_MASK
        self._proto = proto
        self._timeout = 0.0 if type & getattr(_c, 'SOCK_NONBLOCK', 0) else _default_timeout
        self._cid = None
        self._peer = None
        self._local = None
        self._options = {}
        # A descriptor of its own, so that fileno() is unique and select() can find the socket.
        self._fd = _os.open('/dev/null', _os.O_RDONLY)
        try:
            _sockets[self._fd] = self
        except TypeError:
            pass  # Not weakly referable (a bare _socket.socket): select() cannot see it.

    family = property(lambda self: self._family)
    type = property(lambda self: self._type)
    proto = property(lambda self: self._proto)
    timeout = property(lambda self: self._timeout)

    def fileno(self):
        return self._fd

    def _connection(self):
        if self._fd < 0:
            raise OSError(_errno.EBADF, 'Bad file descriptor')
        if self._cid is None:
            raise OSError(_errno.ENOTCONN, _os.strerror(_errno.ENOTCONN))
        return self._cid

    def close(self):
        if self._cid is not None:
            try:
                _call({'op': 'close', 'id': self._cid})
            except Exception:
                pass
            self._cid = None
        if self._fd >= 0:
            _sockets.pop(self._fd, None)
            try:
                _os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def detach(self):
        raise _unsupported('socket.detach()')

    def dup(self):
        raise _unsupported('socket.dup()')

    def _address(self, address):
        if self._family == _AF_UNIX:
            if isinstance(address, bytes):
                address = _os.fsdecode(address)
            if not isinstance(address, str):
                raise TypeError('a bytes-like object or str is required for AF_UNIX addresses')
            return {'path': address}
        if not isinstance(address, tuple) or len(address) < 2:
            raise TypeError('%s address must be tuple, not %s'
                            % ('AF_INET6' if self._family == _c.AF_INET6 else 'AF_INET', type(address).__name__))
        host, port = address[0], address[1]
        if not isinstance(port, int):
            raise TypeError("'%s' object cannot be interpreted as an integer" % type(port).__name__)
        if not 0 <= port <= 65535:
            raise OverflowError('connect(): port must be 0-65535.')
        if isinstance(host, bytes):
            host = host.decode('idna')
        infos = getaddrinfo(host, port, self._family, _c.SOCK_STREAM)
        return {'host': infos[0][4][0], 'port': port}

    def _connect(self, address):
        if self._cid is not None:
            return _errno.EISCONN
        request = {'op': 'connect', 'timeout': self._timeout or None}
        request.update(self._address(address))
        reply = _call(request)
        if reply.get('timeout'):
            raise TimeoutError('timed out')
        if 'error' in reply:
            return getattr(_errno, reply['error'], _errno.EIO)
        self._cid = reply['id']
        if self._family == _AF_UNIX:
            self._peer = request['path']
            self._local = ''
        else:
            self._local = tuple(reply['local'])
            self._peer = tuple(reply['peer'])
            if self._family == _c.AF_INET6:
                self._local += (0, 0)
                self._peer += (0, 0)
        return 0

    def connect(self, address):
        code = self._connect(address)
        if code:
            raise OSError(code, _os.strerror(code))

    def connect_ex(self, address):
        return self._connect(address)

    def _recv(self, size, flags):
        if flags:
            raise _unsupported('recv() flags (%#x)' % flags)
        if size < 0:
            raise ValueError('negative buffersize in recv')
        cid = self._connection()
        if size == 0:
            return 0
        reply = _call({'op': 'recv', 'id': cid, 'size': size, 'timeout': self._timeout})
        if reply.get('timeout'):
            raise TimeoutError('timed out')
        if 'error' in reply:
            _raise_errno(reply['error'])
        return reply['size']

    def recv(self, bufsize, flags=0):
        if self._recv(bufsize, flags) == 0:
            return b''
        return _take().to_bytes()

    def recv_into(self, buffer, nbytes=0, flags=0):
        view = memoryview(buffer).cast('B')
        if nbytes < 0:
            raise ValueError('negative buffersize in recv_into')
        size = nbytes or len(view)
        if size > len(view):
            raise ValueError('buffer too small for requested bytes')
        n = self._recv(size, flags)
        if n:
            _take().assign_to(view[:n])
        return n

    def recvfrom(self, bufsize, flags=0):
        return self.recv(bufsize, flags), self._peer

    def recvfrom_into(self, buffer, nbytes=0, flags=0):
        return self.recv_into(buffer, nbytes, flags), self._peer

    def send(self, data, flags=0):
        if flags:
            raise _unsupported('send() flags (%#x)' % flags)
        view = memoryview(data).cast('B')
        cid = self._connection()
        reply = _call({'op': 'send', 'id': cid, 'timeout': self._timeout}, view)
        if 'error' in reply:
            _raise_errno(reply['error'])
        return reply['sent']

    def sendall(self, data, flags=0):
        self.send(data, flags)

    def sendto(self, *args):
        raise _unsupported('sendto() (UDP)')

    def shutdown(self, how):
        if how not in (0, 1, 2):
            raise ValueError('invalid how')
        _call({'op': 'shutdown', 'id': self._connection(), 'how': how})

    def settimeout(self, value):
        self._timeout = _check_timeout(value)

    def gettimeout(self):
        return self._timeout

    def setblocking(self, flag):
        self._timeout = None if flag else 0.0

    def getblocking(self):
        return self._timeout != 0.0

    def getpeername(self):
        self._connection()
        return self._peer

    def getsockname(self):
        if self._local is None:
            return '' if self._family == _AF_UNIX else (('::', 0, 0, 0) if self._family == _c.AF_INET6 else ('0.0.0.0', 0))
        return self._local

    def setsockopt(self, level, option, value, optlen=None):
        # Accepted and remembered (TCP_NODELAY, SO_KEEPALIVE, ...): the host sets its own.
        self._options[(level, option)] = value

    def getsockopt(self, level, option, buflen=None):
        if (level, option) == (_c.SOL_SOCKET, _c.SO_ERROR):
            return 0
        if (level, option) == (_c.SOL_SOCKET, _c.SO_TYPE):
            return self._type
        value = self._options.get((level, option), 0)
        if buflen is not None and isinstance(value, int):
            return value.to_bytes(buflen if buflen < 8 else 8, 'little', signed=True)[:buflen]
        return value

    def bind(self, address):
        raise _unsupported('binding a socket (server sockets)')

    def listen(self, backlog=0):
        raise _unsupported('a listening socket (server sockets)')

    def _accept(self):
        raise _unsupported('accept() (server sockets)')

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


SocketType = socket
_m.socket = socket
_m.SocketType = socket
_m.getdefaulttimeout = getdefaulttimeout
_m.setdefaulttimeout = setdefaulttimeout
_m.timeout = TimeoutError
_m.error = OSError

_SERVICES = {'http': 80, 'https': 443, 'ftp': 21, 'ssh': 22, 'smtp': 25, 'nbd': 10809}


def _numeric(host):
    try:
        _c.inet_pton(_c.AF_INET, host)
        return _c.AF_INET
    except OSError:
        pass
    try:
        _c.inet_pton(_c.AF_INET6, host)
        return _c.AF_INET6
    except OSError:
        return 0


def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    if isinstance(host, bytes):
        host = host.decode('idna')
    if isinstance(port, bytes):
        port = port.decode()
    if port is None:
        port = 0
    elif isinstance(port, str):
        if port.isdigit():
            port = int(port)
        elif port in _SERVICES:
            port = _SERVICES[port]
        else:
            raise _m.gaierror(_c.EAI_SERVICE, 'Servname not supported for ai_socktype')
    elif not isinstance(port, int):
        raise OSError('Int or String expected')
    if host is None or host == '':
        host = '0.0.0.0' if flags & _c.AI_PASSIVE else '127.0.0.1'
    found = _numeric(host)
    if found:
        addresses = [(host, found)]
    else:
        if flags & getattr(_c, 'AI_NUMERICHOST', 0):
            raise _m.gaierror(_c.EAI_NONAME, 'Name or service not known')
        want = 4 if family == _c.AF_INET else 6 if family == _c.AF_INET6 else 0
        reply = _call({'op': 'resolve', 'host': host, 'family': want})
        if 'error' in reply:
            if reply['error'] in ('ENOTFOUND', 'ENODATA', 'EAI_NONAME'):
                raise _m.gaierror(_c.EAI_NONAME, 'Name or service not known')
            raise _m.gaierror(getattr(_c, 'EAI_AGAIN', -3), 'Temporary failure in name resolution')
        addresses = [(a, _c.AF_INET if f == 4 else _c.AF_INET6) for a, f in reply['addresses']]
    out = []
    for address, fam in addresses:
        if family not in (0, _c.AF_UNSPEC, fam):
            continue
        sockaddr = (address, port) if fam == _c.AF_INET else (address, port, 0, 0)
        out.append((fam, type or _c.SOCK_STREAM, proto or _c.IPPROTO_TCP, '', sockaddr))
    if not out:
        raise _m.gaierror(getattr(_c, 'EAI_ADDRFAMILY', _c.EAI_NONAME), 'Address family for hostname not supported')
    return out


def gethostbyname(name):
    return getaddrinfo(name, None, _c.AF_INET)[0][4][0]


def gethostbyname_ex(name):
    addresses = [info[4][0] for info in getaddrinfo(name, None, _c.AF_INET)]
    return name, [], addresses


def gethostbyaddr(address):
    return address, [], [gethostbyname(address)]


def socketpair(*args):
    raise _unsupported('socket.socketpair() (and with it multiprocessing)')


def dup(fd):
    raise _unsupported('socket.dup()')


for _f in (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr, socketpair, dup):
    setattr(_m, _f.__name__, _f)

_sys.modules['_socket'] = _m
for _name in ('socket', 'selectors', 'ssl'):
    _sys.modules.pop(_name, None)

# ---------------------------------------------------------------- select and poll

import select as _select

_original_select = _select.select
_original_poll = getattr(_select, 'poll', None)


def _ours(obj):
    fd = obj if isinstance(obj, int) else obj.fileno()
    sock = _sockets.get(fd)
    return sock if sock is not None and sock._cid is not None else None


def _poll_bridged(items, timeout):
    """items: [(socket, events)]; timeout in seconds or None. Returns {socket: revents}."""
    request = [[s._cid, ev] for s, ev in items]
    reply = _call({'op': 'poll', 'items': request, 'timeout': timeout})
    by_id = {s._cid: s for s, _ in items}
    return {by_id[i]: ev for i, ev in reply.get('ready', [])}


def select(rlist, wlist, xlist, timeout=None):
    if timeout is not None and timeout < 0:
        raise ValueError('timeout must be non-negative')
    lists = (list(rlist), list(wlist), list(xlist))
    mine = {}
    others = ([], [], [])
    for i, lst in enumerate(lists):
        for obj in lst:
            sock = _ours(obj)
            if sock is None:
                others[i].append(obj)
            else:
                mine.setdefault(sock, []).append((i, obj))
    if not mine:
        return _original_select(rlist, wlist, xlist, timeout)
    if any(others):
        ready_others = _original_select(*others, 0)
        if any(ready_others):
            timeout = 0
    else:
        ready_others = ([], [], [])
    items = []
    for sock, uses in mine.items():
        events = 0
        for i, _ in uses:
            events |= (1, 4, 2)[i]
        items.append((sock, events))
    ready = _poll_bridged(items, timeout)
    result = (list(ready_others[0]), list(ready_others[1]), list(ready_others[2]))
    for sock, uses in mine.items():
        revents = ready.get(sock, 0)
        for i, obj in uses:
            if (i == 0 and revents & (1 | 8 | 16)) or (i == 1 and revents & (4 | 8)) or (i == 2 and revents & 2):
                result[i].append(obj)
    return result


class _Poll:
    def __init__(self):
        self._fds = {}

    def register(self, fd, eventmask=_select.POLLIN | _select.POLLPRI | _select.POLLOUT):
        fd = fd if isinstance(fd, int) else fd.fileno()
        self._fds[fd] = eventmask

    def modify(self, fd, eventmask):
        fd = fd if isinstance(fd, int) else fd.fileno()
        if fd not in self._fds:
            raise FileNotFoundError(_errno.ENOENT, _os.strerror(_errno.ENOENT))
        self._fds[fd] = eventmask

    def unregister(self, fd):
        fd = fd if isinstance(fd, int) else fd.fileno()
        del self._fds[fd]

    def poll(self, timeout=None):
        seconds = None if timeout is None or timeout < 0 else timeout / 1000.0
        mine, others = [], []
        for fd, ev in self._fds.items():
            sock = _sockets.get(fd)
            if sock is not None and sock._cid is not None:
                mine.append((sock, ev))
            else:
                others.append((fd, ev))
        out = []
        if others:
            p = _original_poll()
            for fd, ev in others:
                p.register(fd, ev)
            out = p.poll(0 if mine else timeout)
            if out:
                seconds = 0
        if mine:
            for sock, revents in _poll_bridged(mine, seconds).items():
                out.append((sock._fd, revents))
        return out


def poll():
    return _Poll()


_select.select = select
if _original_poll is not None:
    _select.poll = poll
for _name in ('epoll', 'devpoll', 'kqueue'):
    if hasattr(_select, _name):
        delattr(_select, _name)
`;
