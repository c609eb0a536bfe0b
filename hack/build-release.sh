#!/usr/bin/env bash
# Builds the release `veth-xdp` a node can run whatever its userspace: statically linked
# (glibc's libc.a, the gnu target with +crt-static: the musl target is not used) and stripped,
# with its debug info kept apart (.gnu_debuglink). Output, stable paths:
#   target/dist/veth-xdp        the binary the image and the DaemonSet ship
#   target/dist/veth-xdp.debug  its debug info (gdb finds it through the debuglink)
# --target is explicit so that +crt-static applies to the plugin only, not to build scripts.
# Usage: hack/build-release.sh [--no-deps] [--no-datapath-check]
#   --no-deps            skip hack/setup-deps.sh (the packages are there already)
#   --no-datapath-check  skip the setup/teardown run in a throwaway netns (needs root and BPF;
#                        an unprivileged build, e.g. `docker build`, cannot do it)
set -euo pipefail
cd "$(dirname "$0")/.."

deps=true
datapath_check=true
for arg in "$@"; do
  case "$arg" in
    --no-deps) deps=false ;;
    --no-datapath-check) datapath_check=false ;;
    *) echo "build-release: unknown argument $arg" >&2; exit 2 ;;
  esac
done
! $deps || bash hack/setup-deps.sh

TARGET=x86_64-unknown-linux-gnu
[ "$(uname -m)" = x86_64 ] || { echo "build-release: only $TARGET is set up (this is $(uname -m))" >&2; exit 1; }
# Debian's libc6-dev ships libc.a; without it the link fails much later with a vaguer message.
libc_a=/usr/lib/x86_64-linux-gnu/libc.a
[ -f "$libc_a" ] || { echo "build-release: $libc_a missing: apt-get install libc6-dev" >&2; exit 1; }

start=$(date +%s)
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked -p veth-xdp --bin veth-xdp --target "$TARGET"
built=target/$TARGET/release/veth-xdp

dist=target/dist
mkdir -p "$dist"
rm -f "$dist/veth-xdp" "$dist/veth-xdp.debug"
objcopy --only-keep-debug "$built" "$dist/veth-xdp.debug"
objcopy --strip-all --add-gnu-debuglink="$dist/veth-xdp.debug" "$built" "$dist/veth-xdp.tmp"
mv "$dist/veth-xdp.tmp" "$dist/veth-xdp"
chmod 0755 "$dist/veth-xdp"

# Static means: no program interpreter, nothing for the loader to resolve.
bin="$dist/veth-xdp"
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
  echo "build-release: $bin has a PT_INTERP (dynamically linked)" >&2; exit 1
fi
if readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
  echo "build-release: $bin needs shared libraries:" >&2; readelf -d "$bin" | grep NEEDED >&2; exit 1
fi
file "$bin" | grep -q 'static' || { echo "build-release: file(1) does not call $bin static: $(file "$bin")" >&2; exit 1; }
"$bin" version >/dev/null || { echo "build-release: $bin version failed" >&2; exit 1; }

# A real datapath command from the static binary (libbpf-free BPF loading, netlink, ethtool
# genetlink; nothing here may need NSS or getaddrinfo, which a static glibc cannot dlopen):
# setup on a veth "uplink" in a throwaway namespace, then teardown.
if $datapath_check; then
ns=vxrel-$$
root=/sys/fs/bpf/$ns
cleanup() { "$bin" teardown --bpf-root "$root" >/dev/null 2>&1 || true; rm -rf "$root"; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add wire0 type veth peer name wire1
ip -n "$ns" link set wire0 up
ip -n "$ns" link set wire1 up
in_ns() { nsenter --net="/run/netns/$ns" "$@"; }
in_ns "$bin" setup --uplink wire0 --bpf-root "$root" >/dev/null \
  || { echo "build-release: $bin setup failed" >&2; exit 1; }
ip -n "$ns" link show wire0 | grep -q xdp || { echo "build-release: setup attached no XDP program to the uplink" >&2; exit 1; }
in_ns "$bin" teardown --bpf-root "$root" >/dev/null || { echo "build-release: $bin teardown failed" >&2; exit 1; }
! ip -n "$ns" link show wire0 | grep -q xdp || { echo "build-release: teardown left the uplink program" >&2; exit 1; }
cleanup
trap - EXIT
fi

size=$(stat -c %s "$bin")
debug_size=$(stat -c %s "$dist/veth-xdp.debug")
echo "build-release: $bin $size bytes ($((size / 1024)) KiB), static, stripped; debug info $dist/veth-xdp.debug $debug_size bytes; $(( $(date +%s) - start ))s"
