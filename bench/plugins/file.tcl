# A file-backed disk for the benchmark: open, seek, read and write on the file named by file=.
# Runs unmodified under native nbdkit (nbdkit tcl) and nbdkit-ts.
#
#   nbdkit tcl bench/plugins/file.tcl file=disk.img

set filename {}

proc config {key value} {
    global filename
    if {$key eq "file"} {
        set filename $value
    } else {
        error "unknown parameter $key"
    }
}

proc config_complete {} {
    global filename
    if {$filename eq {}} {
        error "file=FILENAME is required"
    }
}

proc plugin_open {readonly} {
    global filename
    if {$readonly} { set mode r } else { set mode r+ }
    set fh [open $filename $mode]
    fconfigure $fh -translation binary -buffering none
    return $fh
}

proc plugin_close {fh} {
    close $fh
}

proc get_size {fh} {
    global filename
    return [file size $filename]
}

proc pread {fh count offset} {
    seek $fh $offset
    set data [read $fh $count]
    if {[string length $data] != $count} {
        error "short read at offset $offset"
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
