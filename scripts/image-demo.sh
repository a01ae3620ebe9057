#!/usr/bin/env bash
# The docker-like flow on a Debian base: debootstrap a bookworm minbase from Debian's
# packages, import it as an image, build a Dockerfile whose RUN step installs a package
# with apt-get (RUN steps share the host's network), run the image, commit a container.
# Needs the Debian archive to be reachable. The store and state live under target/.
#   ./scripts/image-demo.sh [PACKAGE]      (default: cowsay)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
export PATH=$HOME/.cargo/bin:$PATH
cargo build --release -q -p corral-cli
PKG=${1:-cowsay}
T=$PWD/target/image-demo
mkdir -p "$T"
export CORRAL_STORE=$T/store
CORRAL="$PWD/target/release/corral --root $T/state"
say() { echo "+ $*" >&2; }
if [[ ! -x $T/debian-rootfs/bin/bash ]]; then
  rm -rf "$T/debian-rootfs"
  say debootstrap --variant=minbase bookworm "$T/debian-rootfs"
  debootstrap --variant=minbase bookworm "$T/debian-rootfs" http://deb.debian.org/debian >/dev/null
fi
say corral image import "$T/debian-rootfs" debian:bookworm
$CORRAL image import "$T/debian-rootfs" debian:bookworm
mkdir -p "$T/ctx"
cat > "$T/ctx/Dockerfile" <<DOCKERFILE
FROM debian:bookworm
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PKG >/dev/null && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/games:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/bash"]
DOCKERFILE
say corral image build --network host -t demo:$PKG "$T/ctx"
$CORRAL image build --network host -t "demo:$PKG" "$T/ctx"
say corral image ls
$CORRAL image ls
say corral run --rm --image demo:$PKG -- bash -c "dpkg -s $PKG | head -2"
$CORRAL run --rm --image "demo:$PKG" -- bash -c "dpkg -s $PKG | head -2"
if [[ $PKG == cowsay ]]; then
  say corral run --rm --image demo:cowsay -- cowsay moo from corral
  $CORRAL run --rm --image demo:cowsay -- cowsay moo from corral
fi
ID=demo-$$
say corral run --image demo:$PKG --name $ID -- bash -c 'echo hello > /root/note'
$CORRAL run --image "demo:$PKG" --name "$ID" -- bash -c 'echo hello > /root/note'
say corral commit $ID demo:committed
$CORRAL commit "$ID" demo:committed
$CORRAL delete "$ID"
say corral run --rm --image demo:committed -- cat /root/note
$CORRAL run --rm --image demo:committed -- cat /root/note
say corral image history demo:committed
$CORRAL image history demo:committed
