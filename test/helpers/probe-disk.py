# Describe the NBD disk at sys.argv[1] in a few lines, for comparing two servers: optional
# operations first (PROBE_OPS, Python run with `h` connected; errors print their errno), then
# the size, capabilities, a hash of the content and the allocation map.
# PROBE_MASK_GPT=1 zeroes what is random in a GPT (partition GUIDs, and the checksums over them);
# PROBE_NO_CONTENT=1 leaves the content out (a disk whose bytes change, like info's clocks).
import hashlib
import os
import struct
import sys

import nbd

h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri(sys.argv[1])

for line in filter(None, os.environ.get("PROBE_OPS", "").split(";")):
    try:
        result = eval(line.strip(), {"h": h, "nbd": nbd})
        print("op", line.strip(), "->", result if not isinstance(result, (bytes, bytearray)) else result.hex())
    except nbd.Error as error:
        print("op", line.strip(), "-> errno", error.errno)

size = h.get_size()
print("size", size)
for cap in ("is_read_only", "can_flush", "can_trim", "can_zero", "can_fast_zero", "can_fua",
            "can_multi_conn", "can_cache", "can_df"):
    print(cap, getattr(h, cap)())

# Content: all of it up to 64 MiB, else the first and the last MiB.
limit = 64 * 1024 * 1024
ranges = [(0, size)] if size <= limit else [(0, 1 << 20), (size - (1 << 20), 1 << 20)]
data = bytearray()
for start, length in ranges:
    for offset in range(start, start + length, 1 << 20):
        data += h.pread(min(1 << 20, start + length - offset), offset)

if os.environ.get("PROBE_MASK_GPT") == "1":
    def mask(header):
        if data[header:header + 8] != b"EFI PART":
            return
        entries = struct.unpack_from("<Q", data, header + 72)[0] * 512
        count, entry_size = struct.unpack_from("<II", data, header + 80)
        data[header + 16:header + 20] = bytes(4)
        data[header + 88:header + 92] = bytes(4)
        for i in range(count):
            at = entries + i * entry_size + 16
            data[at:at + 16] = bytes(16)
    mask(512)
    mask(len(data) - 512)
if os.environ.get("PROBE_NO_CONTENT") != "1":
    print("sha256", hashlib.sha256(data).hexdigest())

# The allocation map, as block status reports it (at most 4 GiB per request), of the first
# 16 GiB.
if h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION):
    extents = []
    offset = 0
    while offset < min(size, 16 << 30):
        found = []
        h.block_status(min(size - offset, (1 << 32) - (1 << 20)), offset,
                       lambda meta, start, entries, err: found.extend(entries))
        for i in range(0, len(found), 2):
            length, flags = found[i], found[i + 1]
            if extents and extents[-1][2] == flags:
                extents[-1][1] += length
            else:
                extents.append([offset, length, flags])
            offset += length
    for extent in extents:
        print("extent", *extent)
