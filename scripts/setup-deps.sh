#!/usr/bin/env bash
# Installs what corral's demo and tests need on Debian: busybox-static (the demo and test
# root filesystems), containerd and containernetworking-plugins (the CRI test's containerd and
# its pods' bridge), protobuf-compiler (protoc, for the k8s-cri bindings of that test's client), jq, util-linux (unshare, setpriv), uidmap (newuidmap/newgidmap, for the
# rootless tests' multi-range id maps), libseccomp-dev (seccomp's differential test links
# libseccomp to compare filters; corral itself never does), binutils (objdump, for
# ns/tests/child_code.rs), pkg-config (the C tests build against container.pc), debootstrap
# (the Debian base of scripts/image-demo.sh), docker-registry, skopeo, apache2-utils (htpasswd)
# and openssl (cli/tests/registry.rs runs its own registry on loopback; the package's own
# service is not used and is left stopped and disabled), a Rust toolchain if none is on PATH, and for the
# Python module (python/) a venv in target/pyenv, made with Debian's python3, holding maturin
# and pytest. On a cgroup v1 or hybrid host it also mounts the net_cls and net_prio
# hierarchies when the kernel has them unmounted (see the end). docker.io gives dockerd 20.10
# for the Docker engine test, its service left stopped and disabled.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
need=()
for p in busybox-static jq util-linux iproute2 gcc libc6-dev podman containerd containernetworking-plugins protobuf-compiler uidmap libseccomp-dev binutils pkg-config debootstrap python3 python3-venv docker-registry skopeo apache2-utils openssl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  # The tests start their own registries; the package's service would listen on :5000.
  if [[ " ${need[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi
# docker.io (dockerd 20.10, for cli/tests/dockerd.rs): installed without its recommends and
# with its service neither started nor enabled (the test starts a dockerd of its own). A
# policy-rc.d refusing every start covers the install; one already there is kept.
if ! dpkg -s docker.io >/dev/null 2>&1; then
  apt-get update -qq
  made_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  [[ -z $made_policy ]] || rm -f /usr/sbin/policy-rc.d
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  [[ -x $HOME/.cargo/bin/cargo ]] || {
    command -v curl >/dev/null || { apt-get update -qq; apt-get install -y -qq curl ca-certificates >/dev/null; }
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
  }
fi
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
if ! target/pyenv/bin/python -c 'import maturin, pytest, pytest_timeout' >/dev/null 2>&1; then
  mkdir -p target
  rm -rf target/pyenv
  "$PY" -m venv target/pyenv
  target/pyenv/bin/pip install -q --disable-pip-version-check 'maturin>=1.5,<2' 'pytest>=7' 'pytest-timeout>=2'
fi
# cgroup v1 net_cls and net_prio (linux.resources.network): on a v1 or hybrid host whose
# kernel has them but mounts no hierarchy with them, mount them as systemd does on such a host
# (one hierarchy, /sys/fs/cgroup/net_cls,net_prio, with a link for each name); one left alone
# when the other is mounted. Not on a pure cgroup v2 host: v2 has no such controllers (and
# /sys/fs/cgroup is then the cgroup2 mount itself).
if [[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) == tmpfs ]]; then
  unmounted=$(awk '($1 == "net_cls" || $1 == "net_prio") && $2 == 0 && $4 == 1 { print $1 }' /proc/cgroups | sort | paste -sd, -)
  if [[ -n $unmounted ]]; then
    mkdir -p "/sys/fs/cgroup/$unmounted"
    mount -t cgroup -o "$unmounted" "$unmounted" "/sys/fs/cgroup/$unmounted"
    if [[ $unmounted == *,* ]]; then
      for c in net_cls net_prio; do
        [[ -e /sys/fs/cgroup/$c ]] || ln -s "$unmounted" "/sys/fs/cgroup/$c"
      done
    fi
  fi
fi
