#!/usr/bin/env bash
# Rebuilds the prebuilt fs-native addon shipped in the package, from src/ with node-gyp, and
# records beside it the SHA-256 of every source it was built from (test/package.test.ts checks
# that they match the sources, so a change to the C code without a new binary fails the tests).
# Run it as `npm run build:native` (npm puts its node-gyp on PATH) after changing src/ or
# binding.gyp, and commit prebuilds/. Needs gcc, make, python3 and Node's headers; on x86-64
# it builds linux-x64 and then cross-builds linux-arm64 with Debian's gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross. `npm run build:native -- x64` (or arm64) builds just that one.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -eq 0 ]; then
  host="$(node -p process.arch)"
  bash ./prebuild.sh "$host"
  if [ "$host" = x64 ]; then
    if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
      echo "prebuild.sh: the arm64 binary needs a cross compiler: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross" >&2
      exit 1
    fi
    bash ./prebuild.sh arm64
  fi
  exit 0
fi

arch="$1"
target="linux-$arch"
out="prebuilds/$target"
if [ -n "${npm_config_node_gyp:-}" ]; then gyp=(node "$npm_config_node_gyp"); else gyp=(node-gyp); fi
tools=""
if [ "$arch" != "$(node -p process.arch)" ]; then
  case "$arch" in
    arm64) tools=aarch64-linux-gnu- ;;
    *) echo "prebuild.sh: cannot cross-build for $arch" >&2; exit 1 ;;
  esac
  export CC="${tools}gcc" CXX="${tools}g++" LINK="${tools}gcc" AR="${tools}ar"
fi

rm -rf build
"${gyp[@]}" rebuild --arch="$arch"
mkdir -p "$out"
"${tools}strip" --strip-unneeded -o "$out/fs_native.napi.glibc.node" build/Release/fs_native.node
# The local build would shadow nothing (the prebuilt one is loaded first), but keep the tree clean.
rm -rf build

# Every glibc Node 20 supports (2.28 and later) must load it: no newer symbol version.
newest="$("${tools}objdump" -T "$out/fs_native.napi.glibc.node" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
if [ "$(printf '%s\n' "$newest" GLIBC_2.28 | sort -V | tail -1)" != GLIBC_2.28 ]; then
  echo "prebuild.sh: the addon needs $newest, newer than Node 20's minimum GLIBC_2.28" >&2
  exit 1
fi

sha256sum binding.gyp src/* > "$out/SOURCES.sha256"
{
  echo "built by runtimes/fs-native/prebuild.sh"
  echo "node headers: $(node -p process.version) (Node-API version from binding.gyp's NAPI_VERSION)"
  echo "compiler: $("${tools}gcc" --version | head -1)"
  echo "newest glibc symbol: $newest"
} > "$out/BUILD-INFO"
echo "prebuild.sh: $out/fs_native.napi.glibc.node ($(stat -c %s "$out/fs_native.napi.glibc.node") bytes)"
