#!/usr/bin/env bash
# The release binary and image test (hack/test.sh runs it before cargo test). A shell test, not
# a cargo one: what it checks is the artifact hack/build-release.sh makes (another target
# triple, another RUSTFLAGS, objcopy/strip) and the containerd it is imported into, not Rust
# code; under cargo test it would need a nested release cargo build of its own.
#   - builds target/dist/veth-xdp (hack/build-release.sh: static, stripped, setup/teardown run);
#   - no dynamic dependencies: no PT_INTERP, no DT_NEEDED, ldd finds nothing to load;
#   - runs from an empty root: chroot into a temp dir holding only the binary,
#     `veth-xdp version` and the CNI VERSION protocol answer;
#   - the image: hack/image.sh --import into a containerd of its own (temp root, state and
#     socket, no CRI plugin), `ctr images ls` shows it, `ctr run --rm` runs /veth-xdp version;
#     containerd is stopped and everything removed on every exit path.
# Usage: hack/test-release.sh [--no-deps]
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
ok() { passed=$((passed + 1)); echo "test-release: ok: $*"; }
fail() { echo "test-release: FAILED: $*" >&2; exit 1; }

bash hack/build-release.sh "$@"
bin=$PWD/target/dist/veth-xdp
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' plugin/Cargo.toml | head -1)

tmp=$(mktemp -d /tmp/vx-release.XXXXXX)
ctr_pid=
cleanup() {
  if [ -n "$ctr_pid" ]; then
    ctr --address "$tmp/ctr/containerd.sock" -n k8s.io containers rm "vxrel-$$" >/dev/null 2>&1 || true
    kill "$ctr_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$ctr_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$ctr_pid" 2>/dev/null || true
  fi
  # Anything containerd left mounted under its root (snapshots, task rootfs).
  { grep -o " $tmp/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# No dynamic dependencies.
readelf -l "$bin" | grep -q 'Requesting program interpreter' && fail "$bin has a PT_INTERP"
readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)' && fail "$bin has DT_NEEDED entries"
lddout=$(ldd "$bin" 2>&1 || true)
# glibc's ldd says "statically linked" for a static-pie, "not a dynamic executable" for a static exec.
echo "$lddout" | grep -Eq 'not a dynamic executable|statically linked' || fail "ldd: $lddout"
echo "$lddout" | grep -q '=>' && fail "ldd lists libraries: $lddout"
ok "no dynamic dependencies ($(file -b "$bin" | cut -d, -f1-2,5))"

# Runs from an empty root.
root=$tmp/root
mkdir -p "$root"
cp "$bin" "$root/veth-xdp"
out=$(chroot "$root" /veth-xdp version) || fail "chroot version"
[[ $out == "veth-xdp $version "* ]] || fail "chroot version said: $out"
out=$(echo '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION "$(command -v chroot)" "$root" /veth-xdp) || fail "chroot CNI VERSION"
echo "$out" | python3 -c 'import json,sys; v=json.load(sys.stdin); assert v["cniVersion"]=="1.0.0" and "1.1.0" in v["supportedVersions"], v' \
  || fail "CNI VERSION answer: $out"
ok "runs from an empty root: $(ls "$root" | tr '\n' ' ')(version, CNI VERSION)"
echo "test-release: size: $(stat -c %s "$bin") bytes stripped, debug info $(stat -c %s "$bin.debug") bytes apart"

# The image, imported into a containerd of our own.
command -v containerd >/dev/null && command -v ctr >/dev/null || fail "containerd/ctr missing (hack/setup-deps.sh installs them)"
mkdir -p "$tmp/ctr"
sock=$tmp/ctr/containerd.sock
cat >"$tmp/ctr/config.toml" <<EOF
version = 2
root = "$tmp/ctr/root"
state = "$tmp/ctr/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
containerd --config "$tmp/ctr/config.toml" >"$tmp/ctr/log" 2>&1 &
ctr_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { cat "$tmp/ctr/log" >&2; fail "containerd did not start"; }
c() { ctr --address "$sock" -n k8s.io "$@"; }

bash hack/image.sh --out "$tmp/image.tar" --import --address "$sock" >/dev/null
ref=docker.io/library/veth-xdp:$version
c images ls -q | grep -qx "$ref" || fail "ctr images ls: no $ref: $(c images ls)"
ok "image $ref imported ($(stat -c %s "$tmp/image.tar") bytes archive)"
# stdin is </dev/null: ctr run forwards stdin and would otherwise wait on ours.
out=$(c run --rm "$ref" "vxrel-$$" /veth-xdp version </dev/null) || { cat "$tmp/ctr/log" >&2; fail "ctr run"; }
[[ $out == "veth-xdp $version "* ]] || fail "ctr run /veth-xdp version said: $out"
ok "ctr run --rm $ref /veth-xdp version: $out"

echo "test-release: $passed passed, 0 failed"
