# A RAM disk for nbdkit-ts (and nbdkit), written against API version 2.
#
#   nbdkit-ts python examples/python/ramdisk.py size=64M
#
# The disk lives in one bytearray shared by every connection, so what one
# client writes, the next one reads. It starts (and trims to) zeroes.

import errno
import nbdkit

API_VERSION = 2

size = 1024 * 1024
disk = None


def config(key, value):
    global size
    if key == "size":
        size = nbdkit.parse_size(value)
    else:
        raise RuntimeError("unknown parameter: %s" % key)


def config_complete():
    global disk
    disk = bytearray(size)


def thread_model():
    # Every callback runs to completion before the next: no locking needed.
    return nbdkit.THREAD_MODEL_PARALLEL


def open(readonly):
    nbdkit.debug("ramdisk: open readonly=%s export=%r" % (readonly, nbdkit.export_name()))
    return {}


def get_size(h):
    return len(disk)


def can_multi_conn(h):
    return True


def can_fua(h):
    # Data is in memory: a write is as durable as it will ever be once it returns.
    return nbdkit.FUA_NATIVE


def pread(h, buf, offset, flags):
    buf[:] = disk[offset:offset + len(buf)]


def pwrite(h, buf, offset, flags):
    disk[offset:offset + len(buf)] = buf


def flush(h, flags):
    pass


def trim(h, count, offset, flags):
    disk[offset:offset + count] = bytes(count)


def zero(h, count, offset, flags):
    disk[offset:offset + count] = bytes(count)


def extents(h, count, offset, flags):
    # Report runs of all-zero 4 KiB blocks as holes, the rest as data.
    block = 4096
    start = offset - offset % block
    end = min(offset + count, len(disk))
    result = []
    pos = start
    while pos < end:
        run_type = 3 if not any(disk[pos:pos + block]) else 0
        run_end = pos + block
        while run_end < end:
            is_zero = not any(disk[run_end:run_end + block])
            if (3 if is_zero else 0) != run_type:
                break
            run_end += block
        result.append((pos, min(run_end, len(disk)) - pos, run_type))
        pos = run_end
    return result
