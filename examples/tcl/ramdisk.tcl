# A RAM disk in Tcl, allocated 64 KiB at a time on first write.
#
#   nbdkit-ts tcl examples/tcl/ramdisk.tcl size=256M
#
# Pages never written read as zeroes and are reported as holes (extents), so clients such
# as `nbdinfo --map` and `qemu-img convert` can skip them. Everything is lost when the
# server exits. This script uses nbdkit-ts extensions (the nbdkit command, extents and
# thread_model), so it needs nbdkit-ts rather than native nbdkit.

set size [expr {64 * 1024 * 1024}]
set pagesize 65536
array set pages {}

proc config {key value} {
    global size
    switch -- $key {
        size    { set size [nbdkit parse_size $value] }
        default { error "unknown parameter $key=$value (this plugin takes size=SIZE)" }
    }
}

# Requests never overlap in time here: the interpreter runs one callback at a time.
proc thread_model {} { return serialize_all_requests }

proc plugin_open {readonly} {
    nbdkit debug "ramdisk: open, export \"[nbdkit export_name]\", readonly $readonly"
    return ramdisk
}

proc get_size {h} {
    global size
    return $size
}

# Calls body once per page touched by [offset, offset+count), with the variables
# page (the page number), pos (the offset within the page), n (bytes in this page) and
# done (bytes handled before this page) set in the caller.
proc foreach_page {count offset body} {
    global pagesize
    upvar 1 page page pos pos n n done done
    set done 0
    while {$done < $count} {
        set page [expr {($offset + $done) / $pagesize}]
        set pos [expr {($offset + $done) % $pagesize}]
        set n [expr {min($count - $done, $pagesize - $pos)}]
        uplevel 1 $body
        incr done $n
    }
}

proc pread {h count offset} {
    global pages
    set out [binary format x0]
    foreach_page $count $offset {
        if {[info exists pages($page)]} {
            append out [string range $pages($page) $pos [expr {$pos + $n - 1}]]
        } else {
            append out [binary format x$n]
        }
    }
    return $out
}

proc pwrite {h buf offset} {
    global pages pagesize
    foreach_page [string length $buf] $offset {
        if {![info exists pages($page)]} {
            set pages($page) [binary format x$pagesize]
        }
        # a* copies the page, @pos moves back, a* overwrites: the result stays a byte array.
        set pages($page) [binary format a*@${pos}a* $pages($page) \
                              [string range $buf $done [expr {$done + $n - 1}]]]
    }
}

# Zeroing a whole page frees it; a partial page is overwritten with zeroes.
proc zero {h count offset may_trim} {
    global pages pagesize
    foreach_page $count $offset {
        if {$n == $pagesize} {
            unset -nocomplain pages($page)
        } elseif {[info exists pages($page)]} {
            set pages($page) [binary format a*@${pos}x$n $pages($page)]
        }
    }
}

proc trim {h count offset} {
    zero $h $count $offset 1
}

proc plugin_flush {h} {
    # Nothing to do: RAM is as durable as this disk gets.
}

# Allocated pages are data; the others are holes that read as zeroes (type 3).
proc extents {h count offset} {
    global pages pagesize
    set result {}
    foreach_page $count $offset {
        set type [expr {[info exists pages($page)] ? 0 : 3}]
        lappend result [list [expr {$offset + $done}] $n $type]
    }
    return $result
}
