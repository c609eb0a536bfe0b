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
#   agnhost (test/images/agnhost) and glibc-dns-testing: busybox-static + the machine's   (agnhost)
#   dig, getent, curl, nc and dash, as OCI archives
# and, only when asked for (--only multus; cluster.sh's VETH_XDP_K8S_MULTUS=1 needs it):
#   multus (the thin plugin, cmd/multus) and its NetworkAttachmentDefinition CRD        (multus)
#
# Every version comes from the wrapper modules under tools/ (go.mod + go.sum, built with
# -mod=readonly): nothing is resolved at build time. Idempotent: a component is rebuilt only
# when its wrapper module, this script or the Go version changed (a stamp per component).
#
# Usage: build.sh [--only NAME[,NAME...]] [--cache DIR] [--jobs N] [--check]
#   --only    build just these components (cnitool, etcd, coredns, kube, ginkgo, e2e, pause,
#             agnhost; multus, which the default set leaves out)
#   --cache   the cache directory (default $VETH_XDP_K8S_CACHE, else
#             ${XDG_CACHE_HOME:-$HOME/.cache}/veth-xdp/k8s); binaries land in DIR/bin,
#             images in DIR/images, the Go module and build caches in DIR/gomod and DIR/gocache
#   --jobs    go build -p (default 2; the build machines have 2 cores)
#   --check   build nothing: exit 0 when every component wanted is built and up to date, else
#             1, naming the others (.ci/run uses it to decide on the cluster smoke test)
# Builds run under `nice -n 19`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=$here/tools

cache=${VETH_XDP_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veth-xdp/k8s}
only=""
jobs=2
check=false
while (($#)); do
  case "$1" in
    --only) only=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --check) check=true; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
all=(cnitool etcd kube pause coredns ginkgo e2e agnhost)
# Built only when named in --only (the conformance matrix does not use them).
extra=(multus)
if [ -n "$only" ]; then
  IFS=, read -ra want <<<"$only"
  for w in "${want[@]}"; do
    [[ " ${all[*]} ${extra[*]} " == *" $w "* ]] || { echo "build.sh: unknown component $w (one of: ${all[*]} ${extra[*]})" >&2; exit 2; }
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
    [ "$1" != agnhost ] || agnhost_inputs
    find "$2" -mindepth 2 -maxdepth 2 -name '*.go' | sort | xargs -r cat; } \
    | sha256sum | cut -d' ' -f1
}
up_to_date() { # NAME DIR FILE...
  if stamp_current "$@"; then return 0; fi
  # --check: note it, and let the build function stop here as if it were up to date.
  $check && stale+=("$1")
}
stamp_current() { # NAME DIR FILE...
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

# multus: Multus CNI's thin plugin (cmd/multus: the CNI binary that reads its kubeconfig, the
# pod's k8s.v1.cni.cncf.io/networks annotation and the NetworkAttachmentDefinitions, and
# delegates; no daemon, no image) with the version ldflags of multus' own hack/build-go.sh (the
# tag, and the commit and time the module proxy's .info records for it), and the
# NetworkAttachmentDefinition CRD: the CustomResourceDefinition document of the module's
# deployments/multus-daemonset.yml, in manifests/.
multus_pkg=gopkg.in/k8snetworkplumbingwg/multus-cni.v4
build_multus() {
  local version info commit date src x=$multus_pkg/pkg/multus
  version=$(sed -nE 's/^(require)?[[:space:]]*gopkg\.in\/k8snetworkplumbingwg\/multus-cni\.v4 (v[^ ]+).*/\2/p' "$tools/multus/go.mod" | head -1)
  [ -n "$version" ] || { log "multus: no $multus_pkg version in $tools/multus/go.mod"; return 1; }
  up_to_date multus "$tools/multus" bin/multus manifests/multus-nad-crd.yaml \
    && { log "multus: up to date ($version)"; return; }
  src=$GOMODCACHE/$multus_pkg@$version
  [ -d "$src" ] || (cd "$tools/multus" && go mod download "$multus_pkg")
  info=$GOMODCACHE/cache/download/$multus_pkg/@v/$version.info
  commit=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Origin"]["Hash"])' "$info" 2>/dev/null || echo unknown)
  date=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Time"])' "$info" 2>/dev/null || echo unknown)
  go_build multus "$tools/multus" "-s -w -X $x.version=$version -X $x.commit=$commit -X $x.gitTreeState=clean -X $x.releaseStatus=,released -X $x.date=$date" \
    "$multus_pkg/cmd/multus"
  python3 -c '
import re, sys
docs = re.split(r"(?m)^---[ \t]*$", open(sys.argv[1]).read())
crd = [d for d in docs if re.search(r"(?m)^kind: CustomResourceDefinition$", d)
       and "name: network-attachment-definitions.k8s.cni.cncf.io" in d]
assert len(crd) == 1, "%s: %d NetworkAttachmentDefinition CRDs" % (sys.argv[1], len(crd))
open(sys.argv[2], "w").write(crd[0].strip("\n") + "\n")
' "$src/deployments/multus-daemonset.yml" "$cache/manifests/multus-nad-crd.yaml"
  chmod 644 "$cache/manifests/multus-nad-crd.yaml"
  mark_built multus "$tools/multus"
}

# agnhost: the e2e tests' utility image (registry.k8s.io/e2e-test-images/agnhost:<VERSION of
# test/images/agnhost>), the binary from the release's own source, and glibc-dns-testing (the
# DNS tests' second prober, the tag test/utils/image/manifest.go asks for), which upstream builds
# from Debian with dnsutils. Upstream puts agnhost on Alpine with dig, curl, nc, iproute2, iperf
# and bash; here both rootfs are Debian's busybox-static (seq, test, awk, sed, hostname,
# nslookup, wget, …) plus the machine's tools below with the shared libraries ldd names, at the
# same paths, and an /etc/nsswitch.conf (lib/nsswitch.conf) for getent. The kubelet bind-mounts
# /etc/hosts, /etc/resolv.conf and /etc/hostname over the image's, so the images have none.
# agnhost also gets porter's TLS files as upstream adds them; no iperf, bash, /coredns or the
# fake registry yet.
#
# What the tests run in these pods (test/e2e/network, framework/service, framework/network) and
# from which Debian package the machine has it: SRC:DEST:PACKAGE.
#   curl    netexec's /dial and the Service checks (`curl -g -q -s --connect-timeout …`)
#   dig     every DNS probe (`dig +notcp|+tcp +noall +answer +search NAME A|SRV|PTR`, `dig +short`)
#   getent  the /etc/hosts probes (`getent hosts NAME`): glibc, whose files and dns NSS modules
#           are part of libc.so.6 since 2.34 (nothing is dlopen'ed for `hosts: files dns`)
#   nc      Service reachability (`echo hostName | nc -v -t|-u -w 2 HOST PORT`): busybox's nc
#           has no -v, -t or -u
#   sh      dash as /bin/sh, for the probe containers' `sh -c SCRIPT` and kubectl exec's
#           `/bin/sh -x -c CMD`: Debian's busybox sh is a standalone shell that runs its own
#           applet for a name before looking at PATH (its nc, not /usr/bin/nc); dash runs the
#           busybox applets through their /bin symlinks and the tools above through PATH
agnhost_tools=(/usr/bin/curl:/usr/bin/curl:curl /usr/bin/dig:/usr/bin/dig:bind9-dnsutils
               /usr/bin/getent:/usr/bin/getent:libc-bin /usr/bin/nc.openbsd:/usr/bin/nc:netcat-openbsd
               /bin/dash:/bin/sh:dash)
# The DNS probe scripts (sh -c 'for i in `seq 1 600`; do check="$(dig …)" && test -n "$check"
# && echo OK > /results/…; test -n "$(getent hosts …)" && …; sleep 1; done') in the
# glibc-dns-testing container.
dns_testing_tools=(/usr/bin/dig:/usr/bin/dig:bind9-dnsutils /usr/bin/getent:/usr/bin/getent:libc-bin
                   /bin/dash:/bin/sh:dash)

# host_files TOOL...: SRC:DEST of each tool and of every shared library ldd names for it (the
# dynamic loader included) at its own path, once each.
host_files() {
  local spec src dest
  for spec in "$@"; do
    src=${spec%%:*}; dest=${spec#*:}; dest=${dest%%:*}
    echo "$src:$dest"
    ldd "$src" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3 ":" $3} $1 ~ /^\// {print $1 ":" $1}'
  done | sort -u
}

# rootfs_args TOOL...: oci.py arguments, one a line, for a rootfs of busybox (its applets as
# symlinks in /bin, but not those a tool replaces), the tools with their libraries and
# lib/nsswitch.conf.
rootfs_args() {
  local spec tools=" " applet f
  for spec in "$@"; do spec=${spec#*:}; spec=${spec%%:*}; tools+="${spec##*/} "; done
  printf '%s\n' --file /bin/busybox:/bin/busybox
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || [[ $tools == *" $applet "* ]] || printf '%s\n' --symlink "/bin/$applet:busybox"
  done
  for f in $(host_files "$@"); do printf '%s\n' --file "$f"; done
  printf '%s\n' --file "$here/lib/nsswitch.conf:/etc/nsswitch.conf"
}

# check_tools TOOL...: each tool is on this machine, else which package to install.
check_tools() {
  local spec src pkg
  [ -x /bin/busybox ] && /bin/busybox --list >/dev/null \
    || { log "agnhost: /bin/busybox missing (apt-get install busybox-static)"; return 1; }
  for spec in "$@"; do
    src=${spec%%:*}; pkg=${spec##*:}
    [ -x "$src" ] || { log "agnhost: $src missing (apt-get install $pkg)"; return 1; }
  done
}

# agnhost_inputs: what the images take from this machine (the stamp: a changed tool, library or
# file list rebuilds them).
agnhost_inputs() {
  declare -f host_files rootfs_args check_tools
  echo "${agnhost_tools[*]} / ${dns_testing_tools[*]}"
  cat "$here/lib/nsswitch.conf"
  { echo /bin/busybox:; host_files "${agnhost_tools[@]}" "${dns_testing_tools[@]}"; } \
    | cut -d: -f1 | sort -u | xargs -r sha256sum 2>&1
}

build_agnhost() {
  local src tag dns_tag
  src=$GOMODCACHE/k8s.io/kubernetes@$k8s_version
  [ -d "$src" ] || (cd "$tools" && go mod download k8s.io/kubernetes)
  tag=$(cat "$src/test/images/agnhost/VERSION")
  # The tag e2e.test asks for, not test/images/glibc-dns-testing/VERSION (2.1.0 in v1.36.3).
  dns_tag=$(sed -nE 's/.*configs\[GlibcDnsTesting\] = Config\{list\.PromoterE2eRegistry, "glibc-dns-testing", "([^"]+)"\}.*/\1/p' \
            "$src/test/utils/image/manifest.go")
  [ -n "$dns_tag" ] || { log "agnhost: no glibc-dns-testing tag in test/utils/image/manifest.go"; return 1; }
  local archive=images/agnhost-$tag.oci.tar dns_archive=images/glibc-dns-testing-$dns_tag.oci.tar
  up_to_date agnhost "$tools" bin/agnhost "$archive" "$dns_archive" \
    && { log "agnhost: up to date ($archive, $dns_archive)"; return; }
  check_tools "${agnhost_tools[@]}" "${dns_testing_tools[@]}"
  go_build agnhost "$tools" "$(ver_ldflags)" k8s.io/kubernetes/test/images/agnhost
  local args
  mapfile -t args < <(rootfs_args "${agnhost_tools[@]}")
  python3 "$here/lib/oci.py" --out "$cache/$archive" --name "registry.k8s.io/e2e-test-images/agnhost:$tag" \
    --file "$cache/bin/agnhost:/agnhost" "${args[@]}" \
    --file "$src/test/images/agnhost/porter/localhost.crt:/localhost.crt" \
    --file "$src/test/images/agnhost/porter/localhost.key:/localhost.key" \
    --entrypoint /agnhost --cmd pause
  mapfile -t args < <(rootfs_args "${dns_testing_tools[@]}")
  python3 "$here/lib/oci.py" --out "$cache/$dns_archive" \
    --name "registry.k8s.io/e2e-test-images/glibc-dns-testing:$dns_tag" "${args[@]}" --cmd /bin/sh
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
if $check; then
  stale=()
  # Without a stamp a component was never built: no need to look further (nor to download).
  for w in "${want[@]}"; do [ -f "$cache/stamps/$w" ] || stale+=("$w"); done
  if ((${#stale[@]} == 0)); then
    for w in "${want[@]}"; do "build_$w" >/dev/null 2>&1; done
  fi
  if ((${#stale[@]})); then log "not built or out of date: ${stale[*]} (bash $0)"; exit 1; fi
  log "every component built and up to date ($cache)"
  exit 0
fi
for w in "${want[@]}"; do "build_$w"; done
log "done in $(elapsed "$t_all"); cache $cache: $(du -sh "$cache" | cut -f1) ($(du -sh "$cache/bin" | cut -f1) binaries)"
