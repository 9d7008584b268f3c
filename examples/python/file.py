# A file-backed disk for nbdkit-ts (and nbdkit), written against API version 2.
#
#   nbdkit-ts python examples/python/file.py file=disk.img [readonly=true]
#
# pread fills the buffer nbdkit gives it in place (os.preadv), so no
# intermediate bytes object is made per request.

import os
import nbdkit

API_VERSION = 2

filename = None


def config(key, value):
    global filename
    if key == "file":
        filename = os.path.abspath(value)
    else:
        raise RuntimeError("unknown parameter: %s" % key)


def config_complete():
    if filename is None:
        raise RuntimeError("file=FILENAME is required")


def thread_model():
    # preadv/pwritev take explicit offsets: requests need no serialising.
    return nbdkit.THREAD_MODEL_PARALLEL


def open(readonly):
    fd = os.open(filename, os.O_RDONLY if readonly else os.O_RDWR)
    return {"fd": fd}


def close(h):
    os.close(h["fd"])


def get_size(h):
    return os.fstat(h["fd"]).st_size


def can_fua(h):
    return nbdkit.FUA_NATIVE


def pread(h, buf, offset, flags):
    n = os.preadv(h["fd"], [buf], offset)
    if n != len(buf):
        raise RuntimeError("short read at offset %d (%d of %d bytes)" % (offset, n, len(buf)))


def pwrite(h, buf, offset, flags):
    n = os.pwritev(h["fd"], [buf], offset)
    if n != len(buf):
        raise RuntimeError("short write at offset %d" % offset)
    if flags & nbdkit.FLAG_FUA:
        os.fdatasync(h["fd"])


def flush(h, flags):
    os.fsync(h["fd"])
