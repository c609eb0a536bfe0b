#!/usr/bin/env bash
# Builds the pinned upstream pieces of a Kubernetes cluster from source, through the Go module
# proxy, into a cache that later runs reuse (see conformance/kubernetes/README.md):
#
#   kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl   (kube)
#   e2e.test (go test -c k8s.io/kubernetes/test/e2e)                                  (e2e)
#   ginkgo                                                                             (ginkgo)
#   etcd etcdctl                                                                       (etcd)
#   coredns, its image and v1.36.3's CoreDNS addon manifest                            (coredns)
#   cnitool                                                                            (cnitool)
#   pause: build/pause/linux/pause.c of the release, gcc -static, as an OCI archive     (pause)
#   agnhost (test/images/agnhost) on a busybox-static rootfs, as an OCI archive          (agnhost)
#
# Every version comes from the wrapper modules under tools/ (go.mod + go.sum, built with
# -mod=readonly): nothing is resolved at build time. Idempotent: a component is rebuilt only
# when its wrapper module, this script or the Go version changed (a stamp per component).
#
# Usage: build.sh [--only NAME[,NAME...]] [--cache DIR] [--jobs N]
#   --only    build just these components (cnitool, etcd, coredns, kube, ginkgo, e2e, pause,
#             agnhost)
#   --cache   the cache directory (default $VETH_XDP_K8S_CACHE, else
#             ${XDG_CACHE_HOME:-$HOME/.cache}/veth-xdp/k8s); binaries land in DIR/bin,
#             images in DIR/images, the Go module and build caches in DIR/gomod and DIR/gocache
#   --jobs    go build -p (default 2; the build machines have 2 cores)
# Builds run under `nice -n 19`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/tools

cache=${VETH_XDP_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veth-xdp/k8s}
only=""
jobs=2
while (($#)); do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
all=(cnitool etcd kube pause coredns ginkgo e2e agnhost)
if [ -n "$only" ]; then
  IFS=, read -ra want <<<"$only"
  for w in "${want[@]}"; do
    [[ " ${all[*]} " == *" $w "* ]] || { echo "build.sh: unknown component $w (one of: ${all[*]})" >&2; exit 2; }
  done
else
  want=("${all[@]}")
fi

command -v go >/dev/null || { echo "build.sh: go missing (Go >= 1.26 is needed)" >&2; exit 1; }
gover=$(go env GOVERSION)
minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$gover")
((minor >= 26)) || { echo "build.sh: $gover is too old: Kubernetes v1.36 needs Go >= 1.26" >&2; exit 1; }

mkdir -p "$cache"/{bin,images,manifests,stamps,logs}
cache=$(cd "$cache" && pwd)
export GOMODCACHE=$cache/gomod GOCACHE=$cache/gocache GOTOOLCHAIN=local CGO_ENABLED=0
export GOFLAGS="-mod=readonly -modcacherw -trimpath"

# The release pinned in tools/go.mod, and the ldflags Kubernetes' own build sets
# (hack/lib/version.sh): without them every binary says v0.0.0-master and the apiserver, the
# kubelet's node status and e2e's version checks see that.
k8s_version=$(sed -nE 's/^(require)?[[:space:]]*k8s\.io\/kubernetes (v[^ ]+).*/\2/p' "$tools/go.mod" | head -1)
[ -n "$k8s_version" ] || { echo "build.sh: no k8s.io/kubernetes version in $tools/go.mod" >&2; exit 1; }
k8s_major=$(sed -E 's/^v([0-9]+)\..*/\1/' <<<"$k8s_version")
k8s_minor=$(sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/' <<<"$k8s_version")
ver_ldflags() {
  local k v out=""
  for kv in "gitVersion=$k8s_version" "gitMajor=$k8s_major" "gitMinor=$k8s_minor" \
            "gitTreeState=clean" "gitCommit=module-$k8s_version" "buildDate=1970-01-01T00:00:00Z"; do
    k=${kv%%=*}; v=${kv#*=}
    out+=" -X k8s.io/client-go/pkg/version.$k=$v -X k8s.io/component-base/version.$k=$v"
  done
  echo "-s -w$out"
}

# stamp NAME DIR: what the component's build depends on: the Go version, the wrapper module, the
# functions that build it (not the rest of this script), and the OCI writer for image makers.
stamp_of() {
  { echo "$gover"; declare -f "build_$1" go_build ver_ldflags; cat "$2/go.mod" "$2/go.sum"
    case $1 in pause|coredns|agnhost) cat "$here/lib/oci.py" ;; esac
    find "$2" -mindepth 2 -maxdepth 2 -name '*.go' | sort | xargs -r cat; } \
    | sha256sum | cut -d' ' -f1
}
up_to_date() { # NAME DIR FILE...
  local name=$1 dir=$2; shift 2
  [ "$(cat "$cache/stamps/$name" 2>/dev/null)" = "$(stamp_of "$name" "$dir")" ] || return 1
  local f; for f in "$@"; do [ -e "$cache/$f" ] || return 1; done
}
mark_built() { stamp_of "$1" "$2" >"$cache/stamps/$1"; }

log() { echo "build.sh: $*" >&2; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s/60)) $((s%60)); }

# go_build NAME DIR LDFLAGS PKG... : builds the main packages into bin/ (atomically: a temp dir,
# then rename), logging to logs/NAME.log.
go_build() {
  local name=$1 dir=$2 ldflags=$3; shift 3
  local tmp=$cache/bin/.tmp-$name t0
  rm -rf "$tmp"; mkdir -p "$tmp"
  t0=$(date +%s)
  log "$name: go build $* (log: $cache/logs/$name.log)"
  if ! (cd "$dir" && nice -n 19 go build -p "$jobs" -ldflags "$ldflags" -o "$tmp/" "$@") >"$cache/logs/$name.log" 2>&1; then
    tail -20 "$cache/logs/$name.log" >&2; log "$name: FAILED (log: $cache/logs/$name.log)"; return 1
  fi
  local f; for f in "$tmp"/*; do mv -f "$f" "$cache/bin/"; done
  rmdir "$tmp"
  log "$name: built in $(elapsed "$t0")"
}

build_cnitool() {
  up_to_date cnitool "$tools/cnitool" bin/cnitool bin/cni-gc && { log "cnitool: up to date"; return; }
  go_build cnitool "$tools/cnitool" "-s -w" github.com/containernetworking/cni/cnitool ./cni-gc
  mark_built cnitool "$tools/cnitool"
}

build_etcd() {
  up_to_date etcd "$tools/etcd" bin/etcd bin/etcdctl && { log "etcd: up to date"; return; }
  go_build etcd "$tools/etcd" "-s -w" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3
  # The server module's main package is named after its directory: server.
  mv -f "$cache/bin/server" "$cache/bin/etcd"
  mark_built etcd "$tools/etcd"
}

# coredns: the binary, an image named as v1.36.3's addon manifest expects
# (registry.k8s.io/coredns/coredns:v<version>), and that manifest
# (cluster/addons/dns/coredns/coredns.yaml.base of the k8s.io/kubernetes module).
build_coredns() {
  local version src
  version=$(sed -nE 's/^(require)?[[:space:]]*github\.com\/coredns\/coredns (v[^ ]+).*/\2/p' "$tools/coredns/go.mod" | head -1)
  up_to_date coredns "$tools/coredns" bin/coredns "images/coredns-$version.oci.tar" manifests/coredns.yaml.base \
    && { log "coredns: up to date"; return; }
  go_build coredns "$tools/coredns" "-s -w" github.com/coredns/coredns
  # Root in the image (upstream runs as nonroot with a file capability to bind :53, which this
  # writer does not set); the manifest drops every capability but NET_BIND_SERVICE.
  python3 "$here/lib/oci.py" --out "$cache/images/coredns-$version.oci.tar" \
    --name "registry.k8s.io/coredns/coredns:$version" --file "$cache/bin/coredns:/coredns" --entrypoint /coredns
  src=$GOMODCACHE/k8s.io/kubernetes@$k8s_version
  [ -d "$src" ] || (cd "$tools" && go mod download k8s.io/kubernetes)
  mkdir -p "$cache/manifests"
  cp "$src/cluster/addons/dns/coredns/coredns.yaml.base" "$cache/manifests/coredns.yaml.base"
  chmod 644 "$cache/manifests/coredns.yaml.base"
  mark_built coredns "$tools/coredns"
}

# agnhost: the e2e tests' utility image (registry.k8s.io/e2e-test-images/agnhost:<VERSION of
# test/images/agnhost>), the binary from the release's own source. Upstream puts it on Alpine with
# dig, curl, nc, iproute2, iperf and bash; here the rootfs is Debian's busybox-static (sh, nc, ip,
# nslookup, wget, …) plus the machine's curl and its libraries, and porter's TLS files as upstream
# adds them; no dig, bash, iperf or the fake registry yet.
build_agnhost() {
  local src tag
  src=$GOMODCACHE/k8s.io/kubernetes@$k8s_version
  [ -d "$src" ] || (cd "$tools" && go mod download k8s.io/kubernetes)
  tag=$(cat "$src/test/images/agnhost/VERSION")
  local archive=images/agnhost-$tag.oci.tar
  up_to_date agnhost "$tools" bin/agnhost "$archive" && { log "agnhost: up to date ($archive)"; return; }
  [ -x /bin/busybox ] && /bin/busybox --list >/dev/null \
    || { log "agnhost: /bin/busybox missing (apt-get install busybox-static)"; return 1; }
  go_build agnhost "$tools" "$(ver_ldflags)" k8s.io/kubernetes/test/images/agnhost
  local links=() applet
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || links+=(--symlink "/bin/$applet:busybox")
  done
  # The e2e tests exec `curl` in agnhost pods (netexec's /dial, Service checks): the machine's
  # curl with the shared libraries it loads, at the same paths.
  command -v curl >/dev/null || { log "agnhost: curl missing (apt-get install curl)"; return 1; }
  local f hostfiles=(--file /usr/bin/curl:/usr/bin/curl)
  for f in $(ldd /usr/bin/curl | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u); do
    hostfiles+=(--file "$f:$f")
  done
  python3 "$here/lib/oci.py" --out "$cache/$archive" --name "registry.k8s.io/e2e-test-images/agnhost:$tag" \
    --file "$cache/bin/agnhost:/agnhost" --file /bin/busybox:/bin/busybox "${links[@]}" "${hostfiles[@]}" \
    --file "$src/test/images/agnhost/porter/localhost.crt:/localhost.crt" \
    --file "$src/test/images/agnhost/porter/localhost.key:/localhost.key" \
    --entrypoint /agnhost --cmd pause
  mark_built agnhost "$tools"
}

kube_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
build_kube() {
  up_to_date kube "$tools" "${kube_bins[@]/#/bin/}" && { log "kube: up to date"; return; }
  go_build kube "$tools" "$(ver_ldflags)" "${kube_bins[@]/#/k8s.io/kubernetes/cmd/}"
  mark_built kube "$tools"
}

build_ginkgo() {
  up_to_date ginkgo "$tools" bin/ginkgo && { log "ginkgo: up to date"; return; }
  go_build ginkgo "$tools" "-s -w" github.com/onsi/ginkgo/v2/ginkgo
  mark_built ginkgo "$tools"
}

build_e2e() {
  up_to_date e2e "$tools" bin/e2e.test && { log "e2e: up to date"; return; }
  local t0; t0=$(date +%s)
  log "e2e: go test -c k8s.io/kubernetes/test/e2e (log: $cache/logs/e2e.log)"
  if ! (cd "$tools" && nice -n 19 go test -c -p "$jobs" -ldflags "$(ver_ldflags)" \
          -o "$cache/bin/.e2e.test.tmp" k8s.io/kubernetes/test/e2e) >"$cache/logs/e2e.log" 2>&1; then
    tail -20 "$cache/logs/e2e.log" >&2; log "e2e: FAILED (log: $cache/logs/e2e.log)"; return 1
  fi
  mv -f "$cache/bin/.e2e.test.tmp" "$cache/bin/e2e.test"
  log "e2e: built in $(elapsed "$t0")"
  mark_built e2e "$tools"
}

# pause: the release's own C source (build/pause/linux/pause.c in the k8s.io/kubernetes module),
# static, in a one-layer OCI archive named as the kubelet and e2e expect
# (test/utils/image/manifest.go: registry.k8s.io/pause:<tag>).
build_pause() {
  local src tag
  src=$GOMODCACHE/k8s.io/kubernetes@$k8s_version
  [ -d "$src" ] || (cd "$tools" && go mod download k8s.io/kubernetes)
  tag=$(sed -nE 's/.*configs\[Pause\] = Config\{list\.GcRegistry, "pause", "([^"]+)"\}.*/\1/p' \
        "$src/test/utils/image/manifest.go")
  [ -n "$tag" ] || { log "pause: no pause tag in test/utils/image/manifest.go"; return 1; }
  local archive=images/pause-$tag.oci.tar
  up_to_date pause "$tools" "$archive" bin/pause && { log "pause: up to date ($archive)"; return; }
  command -v gcc >/dev/null || { log "pause: gcc missing (apt-get install gcc libc6-dev)"; return 1; }
  nice -n 19 gcc -Os -Wall -Werror -static -DVERSION="v$tag-veth-xdp-conformance" \
    -o "$cache/bin/pause" "$src/build/pause/linux/pause.c"
  strip "$cache/bin/pause" 2>/dev/null || true
  python3 "$here/lib/oci.py" --out "$cache/$archive" --name "registry.k8s.io/pause:$tag" \
    --file "$cache/bin/pause:/pause" --entrypoint /pause --user 65535:65535
  echo "$tag" >"$cache/images/pause.tag"
  mark_built pause "$tools"
}

t_all=$(date +%s)
for w in "${want[@]}"; do "build_$w"; done
log "done in $(elapsed "$t_all"); cache $cache: $(du -sh "$cache" | cut -f1) ($(du -sh "$cache/bin" | cut -f1) binaries)"
