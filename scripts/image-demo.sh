#!/usr/bin/env bash
# The docker-like flow on a Debian base: debootstrap a bookworm minbase from Debian's
# packages, import it as an image, build a Dockerfile whose RUN step installs a package
# with apt-get, run the image, commit a container; then the seed Dockerfile's apache:
# built, run with its port 80 published on the host's 8080 (corral's default bridge
# network), and its page fetched from the host.
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

# The seed Dockerfile's flow: apache answers on the host through -p.
mkdir -p "$T/apache"
cat > "$T/apache/Dockerfile" <<'DOCKERFILE'
FROM debian:bookworm
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends apache2 >/dev/null && rm -rf /var/lib/apt/lists/*
RUN echo '<h1>apache in corral</h1>' > /var/www/html/index.html
EXPOSE 80
CMD ["apache2ctl", "-D", "FOREGROUND"]
DOCKERFILE
say corral image build --network host -t demo:apache "$T/apache"
$CORRAL image build --network host -t demo:apache "$T/apache" | tail -1
WEB=web-$$
trap '$CORRAL delete --force "$WEB" >/dev/null 2>&1 || true' EXIT
say corral run -d --image demo:apache --name $WEB -p 8080:80
$CORRAL run -d --image demo:apache --name "$WEB" -p 8080:80
say corral network inspect bridge "(the container's address)"
$CORRAL network inspect bridge | grep -A3 '"Addresses"'
say curl -s http://127.0.0.1:8080/
for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/ && break; sleep 0.2; done
say corral exec $WEB -- cat /etc/hosts
$CORRAL exec "$WEB" cat /etc/hosts
say corral delete --force $WEB
$CORRAL delete --force "$WEB"
trap - EXIT
