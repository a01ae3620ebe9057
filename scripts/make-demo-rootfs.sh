#!/usr/bin/env bash
# Makes the demo root filesystem, target/demo-bundle/rootfs: busybox-static with its applets
# (the README's demo, the C examples and the Python examples run on it).
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/target/demo-bundle
bb=$(command -v busybox)
rm -rf "$B/rootfs"; mkdir -p "$B/rootfs"/{bin,proc,dev,sys,tmp,etc,root}
chmod 1777 "$B/rootfs/tmp"
cp "$bb" "$B/rootfs/bin/busybox"
for a in $("$B/rootfs/bin/busybox" --list); do [[ $a == busybox ]] || ln -sf busybox "$B/rootfs/bin/$a"; done
