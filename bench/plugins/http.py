# A disk read over HTTP with range requests (http.client, one connection per NBD connection),
# for the benchmark's bulk read through a local HTTP server. Runs unmodified under native nbdkit
# (nbdkit python) and nbdkit-ts.
#
#   nbdkit python bench/plugins/http.py url=http://127.0.0.1:PORT/disk.img

import http.client
import urllib.parse

API_VERSION = 2

url = None


def config(key, value):
    global url
    if key == "url":
        url = urllib.parse.urlparse(value)
    else:
        raise RuntimeError("unknown parameter: " + key)


def config_complete():
    if url is None:
        raise RuntimeError("url=URL is required")


def open(readonly):
    return http.client.HTTPConnection(url.hostname, url.port)


def get_size(conn):
    conn.request("HEAD", url.path)
    r = conn.getresponse()
    r.read()
    return int(r.getheader("Content-Length"))


def can_write(conn):
    return False


def pread(conn, buf, offset, flags):
    conn.request("GET", url.path, headers={"Range": "bytes=%d-%d" % (offset, offset + len(buf) - 1)})
    r = conn.getresponse()
    if r.status != 206:
        raise RuntimeError("HTTP status %d" % r.status)
    n = r.readinto(buf)
    if n != len(buf):
        raise RuntimeError("short read: %d of %d bytes" % (n, len(buf)))
