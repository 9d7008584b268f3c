# A disk backed by a host file, in Tcl.
#
#   nbdkit-ts tcl examples/tcl/file.tcl file=disk.img
#
# The path is relative to the directory nbdkit-ts was started in. Add -r to serve read-only.
# This script uses only nbdkit's Tcl plugin interface, so it also runs under native
# `nbdkit tcl`.

proc config {key value} {
    global file
    if { $key eq "file" } {
        set file $value
    } else {
        error "unknown parameter $key=$value"
    }
}

proc config_complete {} {
    global file
    if { ![info exists file] } {
        error "file parameter missing: file=PATH"
    }
}

# Each connection gets its own channel: the handle is the channel's name.
proc plugin_open {readonly} {
    global file
    set fh [open $file [expr { $readonly ? "r" : "r+" }]]
    # Bytes, not text: no encoding, no end-of-line translation.
    fconfigure $fh -translation binary
    return $fh
}

proc plugin_close {fh} {
    close $fh
}

proc get_size {fh} {
    global file
    return [file size $file]
}

proc pread {fh count offset} {
    seek $fh $offset
    set data [read $fh $count]
    if { [string length $data] != $count } {
        error "short read: [string length $data] of $count bytes at $offset"
    }
    return $data
}

proc pwrite {fh buf offset} {
    seek $fh $offset
    puts -nonewline $fh $buf
}

proc plugin_flush {fh} {
    flush $fh
}

proc zero {fh count offset may_trim} {
    seek $fh $offset
    puts -nonewline $fh [binary format x$count]
}
