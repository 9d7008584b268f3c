#!/bin/sh
# A writable scratch disk for the sh plugin, kept in a sparse file under $tmpdir.
#
#   nbdkit-ts sh examples/sh/ramdisk.sh 1G
#   nbdkit-ts sh examples/sh/ramdisk.sh size=1G
#
# The disk starts as zeroes and vanishes when the server exits (with $tmpdir).
# Each method is one run of this script: $1 is the method, then its arguments
# (see nbdkit-sh-plugin(3)). Exit 0 = success, 1 = error (an errno name first
# on stderr picks the client's error), 2 = method not implemented, 3 = false.

disk=$tmpdir/disk

case "$1" in
    magic_config_key)
        # A bare value on the command line is the size.
        echo size ;;
    config)
        if [ "$2" = size ]; then
            echo "$3" > "$tmpdir/size"
        else
            echo "EINVAL unknown parameter $2=$3" >&2
            exit 1
        fi ;;
    config_complete)
        if [ ! -f "$tmpdir/size" ]; then
            echo "EINVAL size parameter missing" >&2
            exit 1
        fi
        # truncate understands 1G, 64M... like nbdkit sizes.
        truncate -s "$(cat "$tmpdir/size")" "$disk" || exit 1 ;;
    thread_model)
        # dd at distinct offsets of one file is safe to run side by side.
        echo parallel ;;
    get_size)
        stat -L -c %s "$disk" ;;
    pread)
        dd if="$disk" iflag=skip_bytes,count_bytes skip="$4" count="$3" status=none ;;
    pwrite)
        dd of="$disk" oflag=seek_bytes conv=notrunc seek="$4" status=none ;;
    can_write | can_flush | can_trim | can_zero | can_multi_conn)
        # Unlike eval, sh cannot see which methods exist: say so explicitly.
        exit 0 ;;
    flush)
        sync "$disk" ;;
    trim | zero)
        # Punch a hole: reads as zeroes and frees the space.
        fallocate -p -o "$4" -l "$3" "$disk" 2>/dev/null && exit 0
        # No hole punching here: ask the server to write zeroes instead.
        echo ENOTSUP >&2
        exit 1 ;;
    can_fua)
        # FUA by calling flush after the write.
        echo emulate ;;
    *)
        exit 2 ;;
esac
