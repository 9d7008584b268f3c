#!/bin/sh
# The second example of nbdkit-eval-plugin(1): the eval equivalent of the file
# plugin (slower, fewer features). The file= key is not a method name, so it
# reaches the config fragment, which links the file into $tmpdir.
#
#   examples/eval/file.sh disk.img [server options...]
#   examples/eval/file.sh disk.img --run 'qemu-img info $nbd'
file=${1:?usage: file.sh DISK.IMG [server options...]}
shift
exec nbdkit-ts eval \
     config='ln -sf "$(realpath "$3")" $tmpdir/file' \
     get_size='stat -Lc %s $tmpdir/file' \
     pread='dd if=$tmpdir/file skip=$4 count=$3 iflag=count_bytes,skip_bytes' \
     pwrite='dd of=$tmpdir/file seek=$4 conv=notrunc oflag=seek_bytes' \
     file="$file" \
     "$@"
