# A file-backed disk for the benchmark: open, seek, read and write on the file named by file=.
# Runs unmodified under native nbdkit (nbdkit python) and nbdkit-ts.
#
#   nbdkit python bench/plugins/file.py file=disk.img

import builtins
import os

API_VERSION = 2

filename = None


def config(key, value):
    global filename
    if key == "file":
        filename = value
    else:
        raise RuntimeError("unknown parameter: " + key)


def config_complete():
    if filename is None:
        raise RuntimeError("file=FILENAME is required")


def open(readonly):
    return builtins.open(filename, "rb" if readonly else "r+b", buffering=0)


def close(f):
    f.close()


def get_size(f):
    return os.fstat(f.fileno()).st_size


def pread(f, buf, offset, flags):
    f.seek(offset)
    n = f.readinto(buf)
    if n != len(buf):
        raise RuntimeError("short read at offset %d" % offset)


def pwrite(f, buf, offset, flags):
    f.seek(offset)
    n = f.write(buf)
    if n != len(buf):
        raise RuntimeError("short write at offset %d" % offset)


def flush(f, flags):
    os.fsync(f.fileno())
