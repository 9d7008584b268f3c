#!/usr/bin/env bash
# Installs what nbdkit-ts's tests and demo use besides npm packages: real NBD clients
# (libnbd's tools and Python bindings, qemu-img/qemu-io), fio, and native nbdkit with its
# language plugins as the reference to compare against. Then the npm packages, and a build.
set -euo pipefail
cd "$(dirname "$0")/.."

# g++ and make build the optional zstd-napi (allocator=zstd), and runtimes/fs-native where its
# prebuilt binary does not fit (test/package.test.ts builds it so).
# python3-boto3: native nbdkit's S3 plugin (a Python script in the nbdkit package) needs it;
# e2fsprogs: mkfs.ext4, which the ondemand and tmpdisk plugins run by default.
packages=(libnbd-bin python3-libnbd qemu-utils fio openssl nbdkit nbdkit-plugin-python nbdkit-plugin-lua nbdkit-plugin-tcl g++ make python3-boto3 e2fsprogs)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
