#!/usr/bin/env bash
# Builds Tcl 8.6 for WebAssembly from Debian's tcl8.6 source package with Debian's emscripten,
# and writes the artefacts that are committed under runtimes/wasm-tcl/wasm/:
#
#   wasm/tcl.cjs      emscripten's JavaScript loader (CommonJS, loaded by index.js)
#   wasm/tcl.wasm     Tcl 8.6 + the glue in src/tclw.c
#   wasm/library/     Tcl's script library (init.tcl and friends), found by Tcl_Init at run time
#   wasm/BUILD-INFO   what was built from what
#
# Usage: bash runtimes/wasm-tcl/build.sh        (or: npm run build:tcl at the top of the repo)
# Environment: WASM_TCL_BUILD_DIR  scratch directory (default ${TMPDIR:-/tmp}/wasm-tcl-build)
#              WASM_TCL_JOBS       parallel make jobs (default: number of CPUs)
#
# Every step is below; nothing is downloaded except through apt.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${WASM_TCL_BUILD_DIR:-${TMPDIR:-/tmp}/wasm-tcl-build}"
jobs="${WASM_TCL_JOBS:-$(nproc 2>/dev/null || echo 2)}"
out="$here/wasm"

say() { printf '==> %s\n' "$*" >&2; }

# 1. The toolchain: Debian's emscripten (3.1.6 on bookworm). Its JavaScript optimiser needs
#    acorn, which Debian ships as node-acorn under /usr/share/nodejs.
if ! command -v emcc >/dev/null || [ ! -d /usr/share/nodejs/acorn ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing emscripten and node-acorn with apt-get"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q emscripten node-acorn dpkg-dev
    else
        echo "build.sh: needs Debian's emscripten and node-acorn: apt-get install emscripten node-acorn" >&2
        exit 1
    fi
fi
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}

# 2. The source: Debian's tcl8.6 source package (needs deb-src lines in the apt sources).
#    apt-get source unpacks it and applies Debian's patches.
mkdir -p "$build"
cd "$build"
src="$(find . -maxdepth 1 -type d -name 'tcl8.6-*' | sort | tail -n 1)"
if [ -z "$src" ]; then
    say "fetching the tcl8.6 source package into $build"
    apt-get source tcl8.6 >&2
    src="$(find . -maxdepth 1 -type d -name 'tcl8.6-*' | sort | tail -n 1)"
fi
src="$build/${src#./}"
say "source: $src"

# 3. Our patches (patches/*.patch), each applied once. large-binary-io.patch lets a large
#    binary read or write reach the file in one driver call instead of one per 4 KiB channel
#    buffer; the bytes read and written are the same.
for p in "$here"/patches/*.patch; do
    if patch -d "$src" -p1 -R -s -f --dry-run <"$p" >/dev/null 2>&1; then
        say "already applied: $(basename "$p")"
    else
        say "applying $(basename "$p")"
        patch -d "$src" -p1 -s <"$p"
    fi
done

# 4. Configure for wasm32 and build the static library, always from a clean object directory.
#    Cross-compiling, configure cannot run its test programs, so it would assume
#    memcmp/strstr/strtoul are broken and link Tcl's compat copies, which then collide with
#    emscripten's libc at link time: the cache variables tell it the truth. No threads and no
#    dynamic loading (no shared objects in WebAssembly).
obj="$build/obj"
rm -rf "$obj"
mkdir -p "$obj"
cd "$obj"
say "configuring"
ac_cv_func_memcmp_working=yes \
tcl_cv_strstr_unbroken=ok \
tcl_cv_strtoul_unbroken=ok \
    emconfigure "$src/unix/configure" \
        --host=wasm32-unknown-emscripten \
        --disable-threads --disable-load --disable-shared \
        --prefix=/usr/local >configure.log 2>&1 \
    || { tail -n 30 configure.log >&2; exit 1; }
say "building libtcl8.6.a (a few minutes)"
emmake make -j"$jobs" libtcl8.6.a >make.log 2>&1 || { tail -n 30 make.log >&2; exit 1; }

# 5. Link Tcl with the glue into a Node-only module.
#    - WASM_ASYNC_COMPILATION=0: the old loader would fetch() the .wasm under Node 20 and fail;
#      synchronous compilation reads it with fs instead.
#    - NODERAWFS: file I/O goes straight to the host's filesystem through Node's fs, with
#      relative paths from the process's working directory, as in a native tclsh.
#    - NODEJS_CATCH_EXIT/REJECTION=0: a library must not install process-wide handlers.
#    - WASM_BIGINT: 64-bit offsets cross as JavaScript bigints.
say "linking"
mkdir -p "$out"
cd "$build"
emcc -O2 \
    -I"$src/generic" -I"$src/unix" \
    "$here/src/tclw.c" "$obj/libtcl8.6.a" \
    -o "$build/tcl.cjs" \
    -sMODULARIZE=1 -sEXPORT_NAME=createTclModule \
    -sENVIRONMENT=node \
    -sWASM_ASYNC_COMPILATION=0 \
    -sNODERAWFS=1 \
    -sNODEJS_CATCH_EXIT=0 -sNODEJS_CATCH_REJECTION=0 \
    -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=33554432 \
    -sWASM_BIGINT=1 \
    -sEXPORTED_FUNCTIONS=_malloc,_free \
    -sEXPORTED_RUNTIME_METHODS=ENV,stackSave,stackRestore
cp "$build/tcl.cjs" "$build/tcl.wasm" "$out/"

# 6. Tcl's script library. tzdata is left out: clock falls back to the host's
#    /usr/share/zoneinfo, which the host filesystem provides.
say "copying the Tcl library"
rm -rf "$out/library"
mkdir -p "$out/library"
(cd "$src/library" && tar --exclude=./tzdata -cf - .) | (cd "$out/library" && tar -xf -)

# 7. A record of what was built from what.
{
    echo "tcl source: $(basename "$src") (Debian source package tcl8.6)"
    echo "patches: $(cd "$here/patches" && ls *.patch | tr '\n' ' ')"
    echo "emscripten: $(emcc --version | head -n 1)"
    echo "built: $(date -u +%Y-%m-%d)"
    (cd "$out" && sha256sum tcl.cjs tcl.wasm)
} >"$out/BUILD-INFO"
say "done: $out"
