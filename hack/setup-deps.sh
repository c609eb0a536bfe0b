#!/usr/bin/env bash
# Installs everything veth-xdp needs on a fresh Debian/Ubuntu machine (as root).
# Idempotent: packages already present are left alone, and apt-get update runs
# only when something is missing.
set -euo pipefail

# libc6-dev (libc.a), binutils (objcopy, strip, readelf) and file: hack/build-release.sh's static,
# stripped binary; containerd (ctr, runc): hack/image.sh --import and its test.
# iptables and python3: the multi-node tests install kube-proxy's rules (plugin/tests/support/
# kube_proxy_rules.py, echo.py); they read conntrack from /proc/net/nf_conntrack, no conntrack tool.
# bind9-dnsutils: conformance/kubernetes/build.sh copies its dig (with the libraries ldd names)
# into the e2e test images agnhost and glibc-dns-testing, for the DNS conformance tests.
PKGS=(clang llvm libbpf-dev bpftool ethtool iproute2 jq iperf3 procps util-linux iputils-ping netcat-openbsd time fonts-dejavu-core
      containernetworking-plugins pkg-config libfontconfig1-dev iptables python3
      libc6-dev binutils file containerd bind9-dnsutils)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bpffs: tests and the plugin pin programs and maps there.
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
fi

# The reference plugins (host-local, bridge, ptp, macvlan) live here on Debian.
test -x /usr/lib/cni/host-local || { echo "setup-deps: /usr/lib/cni/host-local missing" >&2; exit 1; }
command -v clang >/dev/null || { echo "setup-deps: clang missing" >&2; exit 1; }
echo "setup-deps: ok" >&2

# Optional, separate step (issue 10): cnitool + cni-gc for plugin/tests/cnitool.rs, built from
# source through the Go module proxy into the conformance cache (about 2 minutes cold; needs Go
# >= 1.26). Without them those tests skip. `bash hack/setup-deps.sh --with-cnitool`.
if [ "${1:-}" = "--with-cnitool" ]; then
  bash "$(dirname "$0")/../conformance/kubernetes/build.sh" --only cnitool
fi
