#!/bin/sh
# Stream a disk image of any format qemu-img reads into a pipe, as raw bytes.
#
#   examples/streaming/qemu-img-to-pipe.sh input.qcow2 | gzip > disk.raw.gz
#
# `qemu-img convert input -O raw PIPE` cannot write into a pipe, as it seeks.
# Through the streaming plugin it writes an NBD disk from start to end, and
# the plugin turns those writes into the byte stream of the pipe.
set -e
input=${1:?usage: qemu-img-to-pipe.sh INPUT > OUTPUT}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The plugin would create the FIFO itself; making it first lets the reader
# (cat, copying to our stdout) be started before the server.
mkfifo "$dir/fifo"
cat "$dir/fifo" &
# qemu-img's own output goes to stderr: stdout is the stream.
INPUT=$input nbdkit-ts -U - streaming pipe="$dir/fifo" \
    --run 'qemu-img convert -n "$INPUT" -O raw $nbd >&2'
# The server has closed the FIFO: cat sees its end and finishes.
wait
