#!/bin/sh
# The first example of nbdkit-eval-plugin(1): a 64M read-only disk of zeroes,
# written as shell fragments on the command line. Extra arguments (such as
# -U SOCKET or --run 'nbdinfo $uri') are passed on to the server.
#
#   examples/eval/zeroes.sh --run 'nbdinfo $uri'
exec nbdkit-ts eval \
     get_size=' echo 64M ' \
     pread=' dd if=/dev/zero count=$3 iflag=count_bytes ' \
     "$@"
