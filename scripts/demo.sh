#!/usr/bin/env bash
# Set up nbdkit-ts on a fresh machine and serve a disk to real clients: a file-backed Python
# plugin (examples/python/file.py) read by qemu-img and nbdinfo, then data copied in and out
# with nbdcopy and checked.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

# libnbd's Python bindings and tools belong to Debian's python3.
export PATH="/usr/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== a 64 MiB disk image with some data on it"
qemu-img create -q -f raw "$work/disk.img" 64M
head -c 4M /dev/urandom > "$work/data.bin"
dd if="$work/data.bin" of="$work/disk.img" bs=1M seek=8 conv=notrunc status=none

echo "== nbdkit-ts python examples/python/file.py file=disk.img, read by qemu-img and nbdinfo"
node dist/cli.js -U - python examples/python/file.py file="$work/disk.img" \
  --run 'qemu-img info "$uri" && nbdinfo "$uri" && nbdcopy "$uri" '"$work/copy.img"

cmp "$work/disk.img" "$work/copy.img"
echo "== the disk came back byte for byte over NBD"
