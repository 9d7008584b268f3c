# A file-backed disk in the original API (version 1: no API_VERSION), as
# nbdkit 1.2's python plugin defined it: pread returns the data, and
# pwrite, flush, trim and zero take no flags.
#
#   nbdkit-ts python examples/python/file-v1.py file=disk.img

import os

filename = None


def config(key, value):
    global filename
    if key != "file":
        raise RuntimeError("unknown parameter: %s" % key)
    filename = os.path.abspath(value)


def config_complete():
    if filename is None:
        raise RuntimeError("file=FILENAME is required")


def open(readonly):
    return open_file(readonly)


def open_file(readonly):
    # The built-in open() is shadowed by the callback above; reach it through builtins.
    import builtins
    return builtins.open(filename, "rb" if readonly else "r+b", buffering=0)


def close(f):
    f.close()


def get_size(f):
    return os.fstat(f.fileno()).st_size


def pread(f, count, offset):
    f.seek(offset)
    data = f.read(count)
    if len(data) != count:
        raise RuntimeError("short read at offset %d" % offset)
    return data


def pwrite(f, buf, offset):
    f.seek(offset)
    f.write(buf)


def flush(f):
    os.fsync(f.fileno())


def zero(f, count, offset, may_trim):
    f.seek(offset)
    f.write(bytes(count))
