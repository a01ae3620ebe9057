#!/usr/bin/env bash
# The docker-like flow on a Debian base: debootstrap a bookworm minbase from Debian's
# packages, import it as an image, build a Dockerfile whose RUN step installs a package
# with apt-get (RUN steps are on corral's default bridge network, NAT to the outside), run
# the image, commit a container; then the seed Dockerfile's apache as a docker user runs it:
# built, run with its port 80 published on the host's 8080 (corral's default bridge
# network), and its page fetched from the host.
# Needs the Debian archive to be reachable. The store and state live under target/.
#   ./scripts/image-demo.sh [PACKAGE]      (default: cowsay)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
export PATH=$HOME/.cargo/bin:$PATH
bash scripts/build-corral.sh
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
say corral image build -t demo:$PKG "$T/ctx"
$CORRAL image build -t "demo:$PKG" "$T/ctx"
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
# As a docker user types it: built, run detached with a name, its port 80 published on the
# host's 8080 and its pages on a named volume; logs, exec -it (through a terminal that
# script(1) makes), stop, ps -a with the exit code, start again, rm; the volume outlives it.
say corral build -t demo:apache "$T/apache"
$CORRAL build -t demo:apache "$T/apache" | tail -1
WEB=web-$$
SITE=site-$$
trap '$CORRAL rm -f "$WEB" >/dev/null 2>&1; $CORRAL volume rm -f "$SITE" >/dev/null 2>&1 || true' EXIT
say corral run -d --name $WEB -p 8080:80 -v $SITE:/var/www/html demo:apache
$CORRAL run -d --name "$WEB" -p 8080:80 -v "$SITE:/var/www/html" demo:apache
say curl -s http://127.0.0.1:8080/
for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/ && break; sleep 0.2; done
say corral ps
$CORRAL ps
say corral logs $WEB
$CORRAL logs "$WEB"
say corral exec -it $WEB bash "(typed: tty; echo '<h1>changed</h1>' > /var/www/html/index.html; exit 5)"
printf 'tty\necho "<h1>changed</h1>" > /var/www/html/index.html\nexit 5\n' |
  script -qec "$CORRAL exec -it $WEB bash" /dev/null | tr -d '\r' || echo "exit status $?"
say corral stop $WEB
$CORRAL stop "$WEB"
say corral ps -a
$CORRAL ps -a
say corral start $WEB
$CORRAL start "$WEB"
say curl -s http://127.0.0.1:8080/
for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/ && break; sleep 0.2; done
say corral rm $WEB
$CORRAL rm "$WEB" || true
say corral rm -f $WEB
$CORRAL rm -f "$WEB"
say corral volume ls
$CORRAL volume ls
say corral run --rm -v $SITE:/site demo:apache cat /site/index.html
$CORRAL run --rm --network none -v "$SITE:/site" demo:apache cat /site/index.html
say corral volume rm $SITE
$CORRAL volume rm "$SITE"
trap - EXIT
