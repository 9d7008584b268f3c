/**
 * Python's `ssl` module for scripts in pyodide, whose own `ssl` is a stub that cannot make a
 * connection. Client connections get real TLS from Node's `tls` on the host (through the socket
 * bridge, socket-bridge.ts), with certificate checks as CPython's: the chain against the CAs the
 * context loaded (the system's store for create_default_context(): SSL_CERT_FILE, SSL_CERT_DIR or
 * /etc/ssl/certs), and the host name. Failures raise ssl.SSLCertVerificationError and
 * ssl.SSLError with OpenSSL's wording where Node gives it.
 *
 * The API is the part of CPython's ssl that clients use (SSLContext, create_default_context,
 * wrap_socket, SSLSocket, getpeercert, the constants and enums); server-side TLS, MemoryBIO and
 * SSLObject raise at once, saying they are not supported.
 *
 * Python source, run as the `ssl` module's code before the memory snapshot is taken, after the
 * socket layer (socket-layer.ts).
 */
export const SSL_LAYER = String.raw`
import sys as _sys, os as _os, types as _types, base64 as _base64, json as _json, errno as _errno
from collections import namedtuple as _namedtuple
from enum import Enum as _Enum, IntEnum as _IntEnum, IntFlag as _IntFlag

import socket as _socket
import _nbdkit_socket as _bridged

OPENSSL_VERSION = 'OpenSSL 3.0 (Node.js tls, through nbdkit-ts)'
OPENSSL_VERSION_INFO = (3, 0, 0, 0, 0)
OPENSSL_VERSION_NUMBER = 0x30000000
_OPENSSL_API_VERSION = OPENSSL_VERSION_INFO
_DEFAULT_CIPHERS = 'DEFAULT'
HAS_SNI = HAS_ALPN = HAS_ECDH = HAS_TLSv1_2 = HAS_TLSv1_3 = HAS_NEVER_CHECK_COMMON_NAME = True
HAS_NPN = HAS_SSLv2 = HAS_SSLv3 = HAS_TLSv1 = HAS_TLSv1_1 = HAS_PSK = HAS_PHA = False
CHANNEL_BINDING_TYPES = []
SSL_ERROR_SSL, SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE, SSL_ERROR_WANT_X509_LOOKUP = 1, 2, 3, 4
SSL_ERROR_SYSCALL, SSL_ERROR_ZERO_RETURN, SSL_ERROR_WANT_CONNECT, SSL_ERROR_EOF = 5, 6, 7, 8
SSL_ERROR_INVALID_ERROR_CODE = 10


class SSLError(OSError):
    library = None
    reason = None

    def __str__(self):
        return self.strerror if self.strerror is not None else super().__str__()


class SSLZeroReturnError(SSLError):
    pass


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class SSLCertVerificationError(SSLError, ValueError):
    verify_code = None
    verify_message = None


CertificateError = SSLCertVerificationError


class VerifyMode(_IntEnum):
    CERT_NONE = 0
    CERT_OPTIONAL = 1
    CERT_REQUIRED = 2


class _SSLMethod(_IntEnum):
    PROTOCOL_TLS = 2
    PROTOCOL_TLS_CLIENT = 16
    PROTOCOL_TLS_SERVER = 17


class TLSVersion(_IntEnum):
    MINIMUM_SUPPORTED = -2
    SSLv3 = 768
    TLSv1 = 769
    TLSv1_1 = 770
    TLSv1_2 = 771
    TLSv1_3 = 772
    MAXIMUM_SUPPORTED = -1


class Options(_IntFlag):
    OP_ALL = 0x80000054
    OP_NO_SSLv2 = 0x0
    OP_NO_SSLv3 = 0x02000000
    OP_NO_TLSv1 = 0x04000000
    OP_NO_TLSv1_1 = 0x10000000
    OP_NO_TLSv1_2 = 0x08000000
    OP_NO_TLSv1_3 = 0x20000000
    OP_NO_COMPRESSION = 0x00020000
    OP_CIPHER_SERVER_PREFERENCE = 0x00400000
    OP_SINGLE_DH_USE = 0x0
    OP_SINGLE_ECDH_USE = 0x0
    OP_NO_TICKET = 0x00004000
    OP_NO_RENEGOTIATION = 0x40000000
    OP_ENABLE_MIDDLEBOX_COMPAT = 0x00100000
    OP_IGNORE_UNEXPECTED_EOF = 0x00000080
    OP_LEGACY_SERVER_CONNECT = 0x00000004
    OP_ENABLE_KTLS = 0x00000008


class VerifyFlags(_IntFlag):
    VERIFY_DEFAULT = 0
    VERIFY_CRL_CHECK_LEAF = 0x4
    VERIFY_CRL_CHECK_CHAIN = 0xC
    VERIFY_X509_STRICT = 0x20
    VERIFY_X509_TRUSTED_FIRST = 0x8000
    VERIFY_X509_PARTIAL_CHAIN = 0x80000
    VERIFY_ALLOW_PROXY_CERTS = 0x40


for _enum in (VerifyMode, _SSLMethod, TLSVersion, Options, VerifyFlags):
    for _member in _enum:
        globals()[_member.name] = _member
PROTOCOL_SSLv23 = PROTOCOL_TLS


class _ASN1Object(_namedtuple('_ASN1Object', 'nid shortname longname oid')):
    pass


class Purpose(_ASN1Object, _Enum):
    SERVER_AUTH = (129, 'serverAuth', 'TLS Web Server Authentication', '1.3.6.1.5.5.7.3.1')
    CLIENT_AUTH = (130, 'clientAuth', 'TLS Web Client Authentication', '1.3.6.1.5.5.7.3.2')


DefaultVerifyPaths = _namedtuple('DefaultVerifyPaths',
                                 'cafile capath openssl_cafile_env openssl_cafile openssl_capath_env openssl_capath')


def get_default_verify_paths():
    cafile = _os.environ.get('SSL_CERT_FILE', '/usr/lib/ssl/cert.pem')
    capath = _os.environ.get('SSL_CERT_DIR', '/usr/lib/ssl/certs')
    return DefaultVerifyPaths(cafile if _os.path.isfile(cafile) else None,
                              capath if _os.path.isdir(capath) else None,
                              'SSL_CERT_FILE', '/usr/lib/ssl/cert.pem', 'SSL_CERT_DIR', '/usr/lib/ssl/certs')


_PEM_HEADER = '-----BEGIN CERTIFICATE-----'
_PEM_FOOTER = '-----END CERTIFICATE-----'


def DER_cert_to_PEM_cert(der_cert_bytes):
    text = _base64.standard_b64encode(der_cert_bytes).decode('ascii')
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return _PEM_HEADER + '\n' + '\n'.join(lines) + '\n' + _PEM_FOOTER + '\n'


def PEM_cert_to_DER_cert(pem_cert_string):
    if not pem_cert_string.startswith(_PEM_HEADER):
        raise ValueError('Invalid PEM encoding; must start with %s' % _PEM_HEADER)
    if not pem_cert_string.strip().endswith(_PEM_FOOTER):
        raise ValueError('Invalid PEM encoding; must end with %s' % _PEM_FOOTER)
    d = pem_cert_string.strip()[len(_PEM_HEADER):-len(_PEM_FOOTER)]
    return _base64.decodebytes(d.encode('ASCII', 'strict'))


def RAND_bytes(n):
    return _os.urandom(n)


def RAND_status():
    return True


def RAND_add(string, entropy):
    pass


def _unsupported(what):
    return NotImplementedError('%s is not supported by nbdkit-ts: TLS in Python plugins is for client '
                               'connections only' % what)


class MemoryBIO:
    def __init__(self, *args, **kwargs):
        raise _unsupported('ssl.MemoryBIO')


class SSLObject:
    def __init__(self, *args, **kwargs):
        raise _unsupported('ssl.SSLObject')


class SSLSession:
    pass


def _read_text(path):
    with open(path, 'rb') as f:
        return f.read().decode('ascii', 'replace')


def _as_pem_list(data):
    if isinstance(data, str):
        return [data]
    data = bytes(data)
    if data.lstrip().startswith(b'-----'):
        return [data.decode('ascii', 'replace')]
    # DER: one or more concatenated certificates; pass each one as PEM.
    out = []
    while data:
        if len(data) < 4 or data[0] != 0x30:
            raise SSLError(1, '[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found')
        if data[1] & 0x80:
            n = data[1] & 0x7f
            length = int.from_bytes(data[2:2 + n], 'big') + 2 + n
        else:
            length = data[1] + 2
        out.append(DER_cert_to_PEM_cert(data[:length]))
        data = data[length:]
    return out


class SSLContext:
    sslsocket_class = None

    def __init__(self, protocol=None, *args, **kwargs):
        if protocol is None:
            protocol = PROTOCOL_TLS
        self.protocol = _SSLMethod(protocol)
        client = self.protocol == PROTOCOL_TLS_CLIENT
        self._verify_mode = CERT_REQUIRED if client else CERT_NONE
        self._check_hostname = client
        self._ca = []
        self._system = False
        self._cert = None
        self._key = None
        self._alpn = None
        self._ciphers = _DEFAULT_CIPHERS
        self.options = Options.OP_ALL | Options.OP_NO_SSLv3 | Options.OP_NO_COMPRESSION
        self.minimum_version = TLSVersion.MINIMUM_SUPPORTED
        self.maximum_version = TLSVersion.MAXIMUM_SUPPORTED
        self.verify_flags = VerifyFlags.VERIFY_X509_TRUSTED_FIRST
        self.post_handshake_auth = False
        self.keylog_filename = None
        self.sni_callback = None
        self.hostname_checks_common_name = False
        self.security_level = 2

    @property
    def verify_mode(self):
        return self._verify_mode

    @verify_mode.setter
    def verify_mode(self, value):
        value = VerifyMode(value)
        if value == CERT_NONE and self._check_hostname:
            raise ValueError('Cannot set verify_mode to CERT_NONE when check_hostname is enabled.')
        self._verify_mode = value

    @property
    def check_hostname(self):
        return self._check_hostname

    @check_hostname.setter
    def check_hostname(self, value):
        value = bool(value)
        if value and self._verify_mode == CERT_NONE:
            self._verify_mode = CERT_REQUIRED
        self._check_hostname = value

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        if cafile is None and capath is None and cadata is None:
            raise TypeError('cafile, capath and cadata cannot be all omitted')
        if cafile is not None:
            self._ca.append(_read_text(_os.fspath(cafile)))
        if capath is not None:
            capath = _os.fspath(capath)
            for name in sorted(_os.listdir(capath)):
                path = _os.path.join(capath, name)
                if _os.path.isfile(path):
                    try:
                        text = _read_text(path)
                    except OSError:
                        continue
                    if _PEM_HEADER in text:
                        self._ca.append(text)
        if cadata is not None:
            self._ca.extend(_as_pem_list(cadata))

    def load_default_certs(self, purpose=Purpose.SERVER_AUTH):
        self._system = True

    def set_default_verify_paths(self):
        self._system = True

    def load_cert_chain(self, certfile, keyfile=None, password=None):
        if password is not None:
            raise _unsupported('a password-protected private key')
        self._cert = _read_text(_os.fspath(certfile))
        self._key = _read_text(_os.fspath(keyfile)) if keyfile is not None else self._cert

    def set_alpn_protocols(self, protocols):
        self._alpn = [p.decode() if isinstance(p, bytes) else str(p) for p in protocols]

    def set_npn_protocols(self, protocols):
        raise _unsupported('NPN')

    def set_ciphers(self, ciphers):
        self._ciphers = ciphers

    def get_ciphers(self):
        return []

    def set_ecdh_curve(self, name):
        pass

    def load_dh_params(self, path):
        pass

    def session_stats(self):
        return {}

    def cert_store_stats(self):
        return {'x509': len(self._ca), 'crl': 0, 'x509_ca': len(self._ca)}

    def get_ca_certs(self, binary_form=False):
        return []

    def _versions(self):
        names = {TLSVersion.TLSv1: 'TLSv1', TLSVersion.TLSv1_1: 'TLSv1.1',
                 TLSVersion.TLSv1_2: 'TLSv1.2', TLSVersion.TLSv1_3: 'TLSv1.3'}
        return names.get(self.minimum_version), names.get(self.maximum_version)

    def _tls_request(self, server_hostname):
        low, high = self._versions()
        request = {'servername': server_hostname, 'systemCa': self._system, 'ca': self._ca,
                   'verify': self._verify_mode != CERT_NONE,
                   'checkHostname': bool(self._check_hostname and server_hostname),
                   'alpn': self._alpn}
        if low:
            request['minVersion'] = low
        if high:
            request['maxVersion'] = high
        if self._cert is not None:
            request['cert'] = self._cert
            request['key'] = self._key
        return request

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    suppress_ragged_eofs=True, server_hostname=None, session=None):
        if server_side or self.protocol == PROTOCOL_TLS_SERVER:
            raise _unsupported('server-side TLS')
        if self._check_hostname and not server_hostname:
            raise ValueError('check_hostname requires server_hostname')
        if isinstance(server_hostname, bytes):
            server_hostname = server_hostname.decode('idna')
        return SSLSocket._create(sock, self, server_hostname, do_handshake_on_connect, suppress_ragged_eofs)

    def wrap_bio(self, *args, **kwargs):
        raise _unsupported('SSLContext.wrap_bio')


_LONG_NAMES = {'CN': 'commonName', 'O': 'organizationName', 'OU': 'organizationalUnitName',
               'C': 'countryName', 'ST': 'stateOrProvinceName', 'L': 'localityName',
               'emailAddress': 'emailAddress', 'DC': 'domainComponent', 'serialNumber': 'serialNumber'}
_SAN_NAMES = {'DNS': 'DNS', 'IP Address': 'IP Address', 'email': 'email', 'URI': 'URI'}


def _name(parts):
    out = []
    for key, value in parts:
        for v in value.split('\n') if isinstance(value, str) else [value]:
            out.append(((_LONG_NAMES.get(key, key), v),))
    return tuple(out)


def _date(text):
    # Node: 'Dec  8 00:00:00 2026 GMT', as OpenSSL prints, as Python reports.
    return text


# Node's verification error codes, in OpenSSL's words (as CPython's messages carry them).
_VERIFY_REASONS = {
    'DEPTH_ZERO_SELF_SIGNED_CERT': 'self-signed certificate',
    'SELF_SIGNED_CERT_IN_CHAIN': 'self-signed certificate in certificate chain',
    # OpenSSL reports a leaf from an unknown issuer as 'unable to get local issuer certificate'.
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE': 'unable to get local issuer certificate',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY': 'unable to get local issuer certificate',
    'UNABLE_TO_GET_ISSUER_CERT': 'unable to get issuer certificate',
    'CERT_HAS_EXPIRED': 'certificate has expired',
    'CERT_NOT_YET_VALID': 'certificate is not yet valid',
    'CERT_SIGNATURE_FAILURE': 'certificate signature failure',
}


class SSLSocket(_socket.socket):
    @classmethod
    def _create(cls, sock, context, server_hostname, do_handshake_on_connect, suppress_ragged_eofs):
        if sock.type != _socket.SOCK_STREAM:
            raise NotImplementedError('only stream sockets are supported')
        self = cls(sock.family, sock.type, sock.proto)
        # Take over the connection (CPython's detach): the plain socket no longer owns it.
        self._cid, sock._cid = sock._cid, None
        self._peer, self._local = sock._peer, sock._local
        self.settimeout(sock.gettimeout())
        sock.close()
        self._context = context
        self.server_hostname = server_hostname
        self.server_side = False
        self.do_handshake_on_connect = do_handshake_on_connect
        self.suppress_ragged_eofs = suppress_ragged_eofs
        self._peer_certificate = None
        self._version = None
        self._cipher = None
        self._alpn = None
        self._handshaken = False
        if self._cid is not None and do_handshake_on_connect:
            timeout = self.gettimeout()
            if timeout == 0.0:
                raise ValueError('do_handshake_on_connect should not be specified for non-blocking sockets')
            self.do_handshake()
        return self

    @property
    def context(self):
        return self._context

    @context.setter
    def context(self, ctx):
        self._context = ctx

    session = None
    session_reused = False

    def do_handshake(self, block=False):
        cid = self._connection()
        if self._handshaken:
            return
        reply = _bridged._call({'op': 'starttls', 'id': cid, 'timeout': self.gettimeout(),
                                'tls': self._context._tls_request(self.server_hostname)})
        if reply.get('timeout'):
            raise TimeoutError('_ssl.c:983: The handshake operation timed out')
        error = reply.get('error')
        if error == 'CERT':
            message = reply.get('message', '')
            reason = _VERIFY_REASONS.get(message, message)
            e = SSLCertVerificationError(
                1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: %s (_ssl.c:1000)' % reason)
            e.verify_message = reason
            e.verify_code = 1
            e.reason = 'CERTIFICATE_VERIFY_FAILED'
            e.library = 'SSL'
            raise e
        if error == 'SSL':
            raise SSLError(1, '[SSL] %s (_ssl.c:1000)' % reply.get('message', 'handshake failed'))
        if error:
            _bridged._raise_errno(error)
        self._peer_certificate = reply.get('certificate')
        self._version = reply.get('version')
        self._cipher = tuple(reply['cipher']) if reply.get('cipher') else None
        self._alpn = reply.get('alpn')
        self._handshaken = True

    def connect(self, address):
        super().connect(address)
        if self.do_handshake_on_connect:
            self.do_handshake()

    def connect_ex(self, address):
        code = super().connect_ex(address)
        if code == 0 and self.do_handshake_on_connect:
            self.do_handshake()
        return code

    def getpeercert(self, binary_form=False):
        if not self._handshaken:
            raise ValueError('handshake not done yet')
        cert = self._peer_certificate
        if not cert:
            return None
        if binary_form:
            return _base64.b64decode(cert['der'])
        if self._context.verify_mode == CERT_NONE:
            return {}
        result = {'subject': _name(cert['subject']), 'issuer': _name(cert['issuer']), 'version': 3,
                  'serialNumber': cert['serialNumber'], 'notBefore': _date(cert['notBefore']),
                  'notAfter': _date(cert['notAfter'])}
        san = []
        for part in filter(None, (p.strip() for p in cert['subjectAltName'].split(','))):
            kind, _, value = part.partition(':')
            san.append((_SAN_NAMES.get(kind, kind), value))
        if san:
            result['subjectAltName'] = tuple(san)
        return result

    def read(self, len=1024, buffer=None):
        if buffer is not None:
            return self.recv_into(buffer, len)
        return self.recv(len)

    def write(self, data):
        return self.send(data)

    def version(self):
        return self._version

    def cipher(self):
        return self._cipher

    def shared_ciphers(self):
        return None

    def compression(self):
        return None

    def selected_alpn_protocol(self):
        return self._alpn

    def selected_npn_protocol(self):
        return None

    def pending(self):
        return 0

    def get_channel_binding(self, cb_type='tls-unique'):
        return None

    def unwrap(self):
        raise _unsupported('SSLSocket.unwrap')

    def verify_client_post_handshake(self):
        raise _unsupported('post-handshake authentication')


SSLContext.sslsocket_class = SSLSocket


def create_default_context(purpose=Purpose.SERVER_AUTH, *, cafile=None, capath=None, cadata=None):
    if purpose == Purpose.SERVER_AUTH:
        context = SSLContext(PROTOCOL_TLS_CLIENT)
    else:
        context = SSLContext(PROTOCOL_TLS_SERVER)
    if cafile or capath or cadata:
        context.load_verify_locations(cafile, capath, cadata)
    elif context.verify_mode != CERT_NONE:
        context.load_default_certs(purpose)
    return context


def _create_unverified_context(protocol=None, *, cert_reqs=CERT_NONE, check_hostname=False,
                               purpose=Purpose.SERVER_AUTH, certfile=None, keyfile=None,
                               cafile=None, capath=None, cadata=None):
    context = SSLContext(PROTOCOL_TLS_CLIENT if protocol is None else protocol)
    context.check_hostname = check_hostname
    context.verify_mode = cert_reqs
    if certfile or keyfile:
        context.load_cert_chain(certfile, keyfile)
    if cafile or capath or cadata:
        context.load_verify_locations(cafile, capath, cadata)
    elif context.verify_mode != CERT_NONE:
        context.load_default_certs(purpose)
    return context


_create_default_https_context = create_default_context
_create_stdlib_context = _create_unverified_context
socket_error = OSError
__all__ = [_k for _k in globals() if not _k.startswith('_')]
`;
