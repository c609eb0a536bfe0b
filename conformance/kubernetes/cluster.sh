#!/usr/bin/env bash
# A Kubernetes cluster inside network namespaces of its own, from the binaries build.sh put in
# the cache (conformance/kubernetes/README.md):
#
#   <p>-fabric  bridge br0 10.78.0.1/16: the L2 segment the nodes share (the "wire": every port
#               with tx checksum offload off and GRO on, like a real NIC's segment)
#   <p>-cp      10.78.0.10: etcd, kube-apiserver, kube-controller-manager (--allocate-node-cidrs,
#               cluster CIDR 10.78.128.0/17 carved out of the fabric's subnet, a /24 per node),
#               kube-scheduler
#   <p>-wI      10.78.0.(10+I), I = 1..VETH_XDP_K8S_WORKERS (default 1): containerd (own root,
#               state, socket), kubelet (cgroupfs driver, own root dir, own cgroup root),
#               kube-proxy (iptables or nftables mode), all in a mount namespace of the node's own
#               where /etc/cni/net.d, /opt/cni/bin, /var/lib/cni, /var/lib/veth-xdp and /var/log
#               are the node's directories under the run dir and /sys/fs/bpf is a bpffs of its own
#   <p>-fabric2 (VETH_XDP_K8S_MULTUS=1) bridge br0 10.79.0.1/16: a second segment, wired as the
#               first, with an eth1 on every worker (no node address on it): Multus (the thin
#               plugin from build.sh --only multus) becomes each node's CNI config
#               (00-multus.conflist, delegating pods' eth0 to veth-xdp's 05-veth-xdp.conflist), and
#               the NetworkAttachmentDefinition default/net1 gives pods that ask for it a net1 from
#               veth-xdp on eth1 (its own bpfRoot and stateDir, static IPAM: the address and MAC
#               the pod's k8s.v1.cni.cncf.io/networks annotation asks for); multus-check.sh tests it
#
# Pods get (VETH_XDP_K8S_CNI) veth-xdp, installed as a user does: its image (hack/image.sh, from
# target/dist/veth-xdp) imported into every node's containerd, then `kubectl apply -k manifests/`
# (the DaemonSet writes each node's conflist: L2 mode, pods on the fabric's subnet) — or the
# reference `bridge` plugin (host-local on the node's spec.podCIDR, routes to each podCIDR via
# its node). The pause image is the one build.sh compiled. PKI (openssl) and every file of a run
# live in the run dir; each component logs to <run>/logs/<component>.log.
#
# Usage: cluster.sh up|down|status|kubectl ARGS...
#   up       start the cluster; waits for Ready nodes, a running pod on each, CoreDNS answering
#            (fails naming the component and its log otherwise); any failure or interrupt tears
#            down what was made
#   down     stop everything and leave nothing: processes, pod sandboxes, mounts, cgroups,
#            namespaces (and the iptables rules in them), libcni cache entries, the run dir
#   kubectl  kubectl with the run's admin kubeconfig
#   node     node wI CMD...: CMD in that node's namespaces (e.g. /opt/cni/bin/veth-xdp stats)
#   e2e      the upstream e2e.test against the cluster (e.g. --ginkgo.focus=REGEX)
# Env: VETH_XDP_K8S_CACHE (build.sh's cache), VETH_XDP_K8S_RUN (run dir, default
# /run/veth-xdp-k8s), VETH_XDP_K8S_LOGS (where down keeps each run's logs, default
# /var/tmp/veth-xdp-k8s/runs), VETH_XDP_K8S_PREFIX (namespace prefix, default vxk8s),
# VETH_XDP_K8S_PROXY_MODE (kube-proxy's mode: iptables, the default, or nftables),
# VETH_XDP_K8S_WORKERS (worker nodes, 1 to 9, default 1), VETH_XDP_K8S_CNI (veth-xdp, the
# default, or bridge), VETH_XDP_K8S_EGRESS (veth-xdp's egress mode: xdp, the default, or tc),
# VETH_XDP_K8S_MULTUS (1: Multus and the second fabric above, with veth-xdp only; default 0).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

cache=${VETH_XDP_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veth-xdp/k8s}
bin=$cache/bin
run=${VETH_XDP_K8S_RUN:-/run/veth-xdp-k8s}
# Where down keeps each run's logs (the one thing a run leaves, on purpose): <keep>/<start time>.
keep=${VETH_XDP_K8S_LOGS:-/var/tmp/veth-xdp-k8s/runs}
p=${VETH_XDP_K8S_PREFIX:-vxk8s}
ns_fabric=$p-fabric ns_cp=$p-cp
cp_ip=10.78.0.10 gw_ip=10.78.0.1
# Worker nodes w1..wN (VETH_XDP_K8S_WORKERS, default 1): namespace <p>-wI, address 10.78.0.(10+I).
workers=${VETH_XDP_K8S_WORKERS:-1}
[[ $workers =~ ^[1-9]$ ]] || { echo "cluster.sh: VETH_XDP_K8S_WORKERS: 1 to 9" >&2; exit 2; }
nodes=(); for ((i = 1; i <= workers; i++)); do nodes+=("w$i"); done
# use_node wI: the worker the functions below work on.
use_node() {
  node=$1
  local i=${node#w}
  w_ip=10.78.0.$((10 + i)) ns_w=$p-$node cgroup_root=/$p-$node
}
use_node w1
service_cidr=10.96.0.0/16 kubernetes_svc_ip=10.96.0.1 dns_ip=10.96.0.10
# L2 mode: the pods are stations on the fabric, so their addresses come out of its subnet.
fabric_len=16 cluster_cidr=10.78.128.0/17
cni=${VETH_XDP_K8S_CNI:-veth-xdp}
egress=${VETH_XDP_K8S_EGRESS:-xdp}
case $cni in veth-xdp|bridge) ;; *) echo "cluster.sh: VETH_XDP_K8S_CNI: veth-xdp or bridge" >&2; exit 2 ;; esac
case $egress in xdp|tc) ;; *) echo "cluster.sh: VETH_XDP_K8S_EGRESS: xdp or tc" >&2; exit 2 ;; esac
cni_net=$p-bridge
# Multus (VETH_XDP_K8S_MULTUS=1): the second fabric, and the veth-xdp secondary network net1 on
# each worker's eth1 with a pin root of its own (one datapath per uplink) and a state dir of its
# own (a node directory like /var/lib/veth-xdp: `veth-xdp stats --state-dir` shows net1 alone).
multus=${VETH_XDP_K8S_MULTUS:-0}
case $multus in 0|1) ;; *) echo "cluster.sh: VETH_XDP_K8S_MULTUS: 0 or 1" >&2; exit 2 ;; esac
[ "$multus" = 0 ] || [ "$cni" = veth-xdp ] || { echo "cluster.sh: VETH_XDP_K8S_MULTUS=1 needs VETH_XDP_K8S_CNI=veth-xdp" >&2; exit 2; }
ns_fabric2=$p-fabric2 gw2_ip=10.79.0.1 fabric2_len=16
net1_bpf_root=/sys/fs/bpf/veth-xdp-net1 net1_state_dir=/var/lib/veth-xdp-net1
# The node's own directories (a real node's paths), bind-mounted in its mount namespace.
node_dirs=(etc/cni/net.d opt/cni/bin var/lib/cni var/lib/veth-xdp var/log)
[ "$multus" = 0 ] || node_dirs+=("${net1_state_dir#/}")
proxy_mode=${VETH_XDP_K8S_PROXY_MODE:-iptables}
case $proxy_mode in iptables|nftables) ;; *) echo "cluster.sh: VETH_XDP_K8S_PROXY_MODE: iptables or nftables" >&2; exit 2 ;; esac

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }
inns() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" "$@"; }

# start NAME NS [on_node] CMD...: a component in the background, in network namespace NS (and,
# with on_node, the current node's mount namespace), in its own session, logging to
# logs/NAME.log; its pid in pids/NAME.
start() {
  local name=$1 ns=$2; shift 2
  local enter=(nsenter --net="/var/run/netns/$ns")
  if [ "$1" = on_node ]; then
    shift; enter+=(--mount="/proc/$(cat "$run/pids/$node-mntns")/ns/mnt")
  fi
  log "start $name (log: $run/logs/$name.log)"
  "${enter[@]}" setsid "$@" >"$run/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$run/pids/$name"
}

# on_node CMD...: CMD in the current node's network and mount namespaces (node_mntns_up).
on_node() {
  nsenter --net="/var/run/netns/$ns_w" --mount="/proc/$(cat "$run/pids/$node-mntns")/ns/mnt" "$@"
}

# wait_for WHAT COMPONENT SECONDS CMD...: polls CMD until it succeeds; on timeout names the
# component whose log explains it.
wait_for() {
  local what=$1 comp=$2 secs=$3; shift 3
  local i
  for ((i = 0; i < secs; i++)); do
    "$@" >/dev/null 2>&1 && { log "$what: ok (${i}s)"; return 0; }
    if [ -f "$run/pids/$comp" ] && ! kill -0 "$(cat "$run/pids/$comp")" 2>/dev/null; then
      tail -15 "$run/logs/$comp.log" >&2 || true
      die "$what: $comp exited (log: $run/logs/$comp.log)"
    fi
    sleep 1
  done
  tail -15 "$run/logs/$comp.log" >&2 || true
  die "$what: not after ${secs}s (component $comp, log: $run/logs/$comp.log)"
}

# kubectl as admin, from the control-plane namespace (the apiserver is reachable only there and
# from the nodes: nothing of the cluster is in the machine's own network namespace).
kc() { nsenter --net="/var/run/netns/$ns_cp" "$bin/kubectl" --kubeconfig "$run/pki/admin.kubeconfig" "$@"; }
kc_sh="nsenter --net=/var/run/netns/$ns_cp $bin/kubectl --kubeconfig $run/pki/admin.kubeconfig"

# ---------------------------------------------------------------------------------------- PKI
pki() {
  local d=$run/pki
  mkdir -p "$d"
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$d/ca.key" -subj "/CN=$p-ca" -days 2 -out "$d/ca.crt" 2>/dev/null
  # The service-account signing key (RSA: what every Kubernetes release accepts).
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  cert apiserver "kube-apiserver" "" "IP:$cp_ip,IP:$kubernetes_svc_ip,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost" server
  cert apiserver-kubelet-client "kube-apiserver-kubelet-client" "system:masters" "" client
  cert admin "admin" "system:masters" "" client
  cert controller-manager "system:kube-controller-manager" "" "" client
  cert scheduler "system:kube-scheduler" "" "" client
  cert kube-proxy "system:kube-proxy" "" "" client
  for c in admin controller-manager scheduler kube-proxy; do kubeconfig "$c"; done
  # Multus' own identity (multus_up grants it what it reads and writes).
  if [ "$multus" = 1 ]; then cert multus "multus" "" "" client; kubeconfig multus; fi
  local n
  for n in "${nodes[@]}"; do
    use_node "$n"
    cert kubelet-$node "system:node:$node" "system:nodes" "" client
    cert kubelet-$node-serving "$node" "" "IP:$w_ip,DNS:$node" server
    kubeconfig kubelet-$node
  done
}

# cert NAME CN O SANS server|client
cert() {
  local d=$run/pki name=$1 cn=$2 o=$3 sans=$4 usage=$5 subj ext
  subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  ext="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
  if [ "$usage" = server ]; then ext+="extendedKeyUsage=serverAuth\nsubjectAltName=$sans\n"
  else ext+="extendedKeyUsage=clientAuth\n"; fi
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/$name.key" 2>/dev/null
  openssl req -new -key "$d/$name.key" -subj "$subj" -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf "$ext") -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr"
}

kubeconfig() {
  local d=$run/pki name=$1
  cat >"$d/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $p
  cluster:
    certificate-authority: $d/ca.crt
    server: https://$cp_ip:6443
users:
- name: $name
  user:
    client-certificate: $d/$name.crt
    client-key: $d/$name.key
contexts:
- name: $name@$p
  context: {cluster: $p, user: $name}
current-context: $name@$p
EOF
}

# ------------------------------------------------------------------------------- namespaces
netns_up() {
  local ns
  for ns in "$ns_fabric" "$ns_cp" "${nodes[@]/#/$p-}"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  ip -n "$ns_fabric" link add br0 type bridge
  ip -n "$ns_fabric" addr add "$gw_ip/$fabric_len" dev br0
  ip -n "$ns_fabric" link set br0 up
  local pair pairs=("$ns_cp:$cp_ip:cp") n
  for n in "${nodes[@]}"; do use_node "$n"; pairs+=("$ns_w:$w_ip:$node"); done
  for pair in "${pairs[@]}"; do
    IFS=: read -r ns addr short <<<"$pair"
    ip link add eth0 netns "$ns" type veth peer name "$short" netns "$ns_fabric"
    ip -n "$ns_fabric" link set "$short" master br0 up
    ip -n "$ns" addr add "$addr/$fabric_len" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$gw_ip"
    # A veth standing in for a wire: frames leave with full checksums (tx checksum offload off,
    # as a real NIC puts them on the wire), and the fabric's end takes XDP-redirected frames
    # (a veth drops them unless its peer has GRO on or an XDP program).
    inns "$ns" ethtool -K eth0 tx off >/dev/null
    inns "$ns_fabric" ethtool -K "$short" tx off gro on >/dev/null
  done
  inns "$ns_fabric" ethtool -K br0 tx off >/dev/null
  [ "$multus" = 0 ] || fabric2_up
  # The workers route pods and Services: forwarding on in their own namespaces only.
  for n in "${nodes[@]}"; do use_node "$n"; inns "$ns_w" sysctl -qw net.ipv4.ip_forward=1; done
}

# The second fabric (Multus' net1): eth1 on every worker, the same wire settings as eth0's, no
# address on the node's side (the pods on net1 are the stations of this segment); the bridge's
# 10.79.0.1 is an outside station for checks.
fabric2_up() {
  ip netns add "$ns_fabric2"
  ip -n "$ns_fabric2" link set lo up
  ip -n "$ns_fabric2" link add br0 type bridge
  ip -n "$ns_fabric2" addr add "$gw2_ip/$fabric2_len" dev br0
  ip -n "$ns_fabric2" link set br0 up
  local n
  for n in "${nodes[@]}"; do
    use_node "$n"
    ip link add eth1 netns "$ns_w" type veth peer name "$node" netns "$ns_fabric2"
    ip -n "$ns_fabric2" link set "$node" master br0 up
    ip -n "$ns_w" link set eth1 up
    inns "$ns_w" ethtool -K eth1 tx off >/dev/null
    inns "$ns_fabric2" ethtool -K "$node" tx off gro on >/dev/null
  done
  inns "$ns_fabric2" ethtool -K br0 tx off >/dev/null
  use_node w1
}

# ------------------------------------------------------------------------------ control plane
control_plane_up() {
  mkdir -p "$run/etcd"
  start etcd "$ns_cp" "$bin/etcd" --name "$p" --data-dir "$run/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$p=http://127.0.0.1:2380" --log-outputs stderr
  wait_for "etcd health" etcd 60 inns "$ns_cp" "$bin/etcdctl" --endpoints http://127.0.0.1:2379 endpoint health

  local d=$run/pki
  start kube-apiserver "$ns_cp" "$bin/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --bind-address "$cp_ip" --advertise-address "$cp_ip" --secure-port 6443 \
    --service-cluster-ip-range "$service_cidr" \
    --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" \
    --kubelet-client-certificate "$d/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$d/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$d/ca.crt" \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --cert-dir "$run/apiserver-certs"
  wait_for "kube-apiserver ready" kube-apiserver 120 kc get --raw /readyz

  start kube-controller-manager "$ns_cp" "$bin/kube-controller-manager" \
    --kubeconfig "$d/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$d/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$d/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --allocate-node-cidrs=true --cluster-cidr "$cluster_cidr" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$service_cidr" \
    --cluster-signing-cert-file "$d/ca.crt" --cluster-signing-key-file "$d/ca.key" \
    --root-ca-file "$d/ca.crt" --service-account-private-key-file "$d/sa.key" \
    --use-service-account-credentials=true
  start kube-scheduler "$ns_cp" "$bin/kube-scheduler" \
    --kubeconfig "$d/scheduler.kubeconfig" \
    --authentication-kubeconfig "$d/scheduler.kubeconfig" \
    --authorization-kubeconfig "$d/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false
  wait_for "kube-controller-manager healthy" kube-controller-manager 60 \
    inns "$ns_cp" curl -sfk https://127.0.0.1:10257/healthz
  wait_for "kube-scheduler healthy" kube-scheduler 60 inns "$ns_cp" curl -sfk https://127.0.0.1:10259/healthz
}

# ------------------------------------------------------------------------------------ worker
# The node's mount namespace: a process holding it (pids/<node>-mntns, in the node's network
# namespace, so down kills it with the rest), in which the paths a real node's CNI, agent and
# DaemonSet use are the node's own: its directories under <run>/<node>/host bind-mounted on
# /etc/cni/net.d, /opt/cni/bin, /var/lib/cni (libcni's cache, host-local's leases),
# /var/lib/veth-xdp and /var/log, and a bpffs of its own on /sys/fs/bpf (shared: the DaemonSet
# mounts it Bidirectional; the machine's copy is unmounted first: containerd checks the first
# mount it finds on the path, and a private one under ours fails the check). So the manifests are applied unchanged, and two nodes on one machine
# never see each other's pins, records or leases. Every mount of the machine is private (no
# systemd): nothing made here propagates out, except under the run dir (a shared mount, so
# kubelet volumes reach containerd and runc). The mount points are created on the machine if
# missing (and removed by down when it created them).
node_mntns_up() {
  local w=$run/$node d binds=""
  for d in "${node_dirs[@]}"; do
    mkdir -p "$w/host/$d"
    if [ ! -d "/$d" ]; then
      # Record the topmost directory made, for down.
      local top=/$d
      while [ ! -d "$(dirname "$top")" ]; do top=$(dirname "$top"); done
      mkdir -p "/$d" && echo "$top" >>"$run/created-dirs"
    fi
    binds+="mount --bind $w/host/$d /$d && "
  done
  start $node-mntns "$ns_w" unshare --mount --propagation unchanged bash -c \
    "$binds while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf; done && mount -t bpf bpffs /sys/fs/bpf && mount --make-shared /sys/fs/bpf && touch $w/mntns.ready && exec sleep infinity"
  wait_for "$node: mount namespace" $node-mntns 10 test -e "$w/mntns.ready"
}

worker_up() {
  local w=$run/$node
  mkdir -p "$w"/{containerd/root,containerd/state,kubelet,kube-proxy}
  node_mntns_up
  # The CNI bin dir: the reference plugins (containerd wants loopback there too, CALLERS.md).
  local pl
  for pl in bridge host-local loopback portmap; do
    [ -x "/usr/lib/cni/$pl" ] || die "/usr/lib/cni/$pl missing (apt-get install containernetworking-plugins)"
    ln -sf "/usr/lib/cni/$pl" "$w/host/opt/cni/bin/$pl"
  done
  if [ "$multus" = 1 ]; then
    # Multus (build.sh's), and the static IPAM plugin net1 uses.
    [ -x /usr/lib/cni/static ] || die "/usr/lib/cni/static missing (apt-get install containernetworking-plugins)"
    ln -sf /usr/lib/cni/static "$w/host/opt/cni/bin/static"
    ln -sf "$bin/multus" "$w/host/opt/cni/bin/multus"
  fi
  local pause_tag; pause_tag=$(cat "$cache/images/pause.tag")
  cat >"$w/containerd/config.toml" <<EOF
version = 2
root = "$w/containerd/root"
state = "$w/containerd/state"
[grpc]
  address = "$w/containerd/containerd.sock"
[ttrpc]
  address = "$w/containerd/containerd.sock.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$w/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:$pause_tag"
  # root lacks CAP_SYS_RESOURCE here (shared/CALLERS.md): lowering oom_score_adj fails.
  restrict_oom_score_adj = true
  enable_selinux = false
  # Pod netns bind mounts under the state dir, not /var/run/netns: down unmounts them with the
  # rest of the run dir.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    # The node's own (node_mntns_up), where the DaemonSet writes.
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
EOF
  start $node-containerd "$ns_w" on_node containerd --config "$w/containerd/config.toml" --log-level info
  wait_for "$node: containerd socket" $node-containerd 30 ctr --address "$w/containerd/containerd.sock" version
  ctr --address "$w/containerd/containerd.sock" -n k8s.io images import \
    "$cache/images/pause-$pause_tag.oci.tar" >"$run/logs/$node-image-import.log" 2>&1 \
    || die "pause image import failed (log: $run/logs/$node-image-import.log)"
  local img
  for img in "$cache"/images/*.oci.tar ${vethxdp_image:+"$vethxdp_image"}; do
    [[ $img == */pause-* ]] && continue
    ctr --address "$w/containerd/containerd.sock" -n k8s.io images import "$img" >>"$run/logs/$node-image-import.log" 2>&1 \
      || die "image import $img failed (log: $run/logs/$node-image-import.log)"
  done

  # The kubelet's pods go under a cgroup root of their own in every v1 hierarchy (and the
  # unified one), so down can kill and remove exactly them.
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] && mkdir -p "$h$cgroup_root"
  done
  # A new v1 cpuset cgroup has no CPUs and no memory nodes: no task could join it.
  local c
  for c in cpus mems; do
    cat "/sys/fs/cgroup/cpuset/cpuset.$c" >"/sys/fs/cgroup/cpuset$cgroup_root/cpuset.$c"
  done
  local d=$run/pki
  cp /etc/resolv.conf "$w/resolv.conf"
  cat >"$w/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Kubernetes >= 1.35 refuses to start on cgroup v1 unless told (this host is cgroup v1 hybrid).
failCgroupV1: false
# containerd 1.6 has no RuntimeConfig CRI call: the kubelet falls back to this (until 1.37).
cgroupDriver: cgroupfs
cgroupRoot: $cgroup_root
containerRuntimeEndpoint: unix://$w/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $d/ca.crt}
authorization: {mode: Webhook}
address: $w_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $d/kubelet-$node-serving.crt
tlsPrivateKeyFile: $d/kubelet-$node-serving.key
clusterDNS: [$dns_ip]
clusterDomain: cluster.local
resolvConf: $w/resolv.conf
failSwapOn: false
# Check, never write, the machine-wide sysctls it wants (see the kubelet's start below).
protectKernelDefaults: true
podLogsDir: $w/pod-logs
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
  # The kubelet sets vm.overcommit_memory=1, kernel.panic=10 and kernel.panic_on_oops=1 at start
  # (pkg/kubelet/cm/container_manager_linux.go setupKernelTunables), or with
  # protectKernelDefaults refuses to start when they differ; they are machine-wide, and
  # panic_on_oops=1 would turn any oops on this shared machine into a reboot. So it runs in a
  # mount namespace of its own where those three /proc/sys files are files of ours holding the
  # values it wants (the bind mounts sit on /proc, private: nothing propagates back), with
  # protectKernelDefaults on so it never writes. The run dir is a shared mount, so what the
  # kubelet mounts under its root dir (volumes) propagates to the machine's mount namespace, where
  # containerd and runc see it.
  mkdir -p "$w/sysctl"
  local kv k v shadow=""
  for kv in vm/overcommit_memory=1 kernel/panic=10 kernel/panic_on_oops=1; do
    k=${kv%=*} v=${kv#*=}
    echo "$v" >"$w/sysctl/${k//\//.}"
    shadow+="mount --bind $w/sysctl/${k//\//.} /proc/sys/$k && "
  done
  start $node-kubelet "$ns_w" on_node unshare --mount --propagation unchanged bash -c "$shadow exec \"\$@\"" kubelet \
    "$bin/kubelet" --config "$w/kubelet/config.yaml" \
    --kubeconfig "$d/kubelet-$node.kubeconfig" --root-dir "$w/kubelet" --cert-dir "$w/kubelet/pki" \
    --hostname-override "$node" --node-ip "$w_ip" --v 2
  wait_for "node $node registered" $node-kubelet 90 kc get node "$node"

  cat >"$w/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $d/kube-proxy.kubeconfig}
mode: $proxy_mode
clusterCIDR: $cluster_cidr
hostnameOverride: $node
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# nf_conntrack_max is machine-wide (read-only outside the initial namespace): leave it alone.
conntrack: {maxPerCore: 0, min: 0}
EOF
  start $node-kube-proxy "$ns_w" on_node "$bin/kube-proxy" --config "$w/kube-proxy/config.yaml" --v 2
  wait_for "$node: kube-proxy healthy" $node-kube-proxy 60 inns "$ns_w" curl -sf http://127.0.0.1:10256/healthz
}

# The reference bridge plugin on the node's podCIDR (what the controller-manager allocated), and
# a route on every other node and on the control plane to that podCIDR via this node.
bridge_up() {
  local w=$run/$node cidr="" n
  wait_for "podCIDR of $node" kube-controller-manager 60 \
    bash -c "[ -n \"\$($kc_sh get node $node -o jsonpath='{.spec.podCIDR}')\" ]"
  cidr=$(kc get node "$node" -o jsonpath='{.spec.podCIDR}')
  local gw; gw=$(python3 -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[1])" "$cidr")
  local conf=$w/host/etc/cni/net.d
  cat >"$conf/.10-$cni_net.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$cni_net",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$cidr", "gateway": "$gw"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  mv "$conf/.10-$cni_net.conflist" "$conf/10-$cni_net.conflist"
  log "$node: CNI bridge on $cidr (gateway $gw)"
  local me=$node my_ip=$w_ip
  for n in "${nodes[@]}"; do
    [ "$n" = "$me" ] && continue
    use_node "$n"; ip -n "$ns_w" route add "$cidr" via "$my_ip"
  done
  use_node "$me"
  # The control plane reaches pods too: the apiserver's proxy to pods and Services
  # (kubectl proxy, `/api/v1/namespaces/N/pods/P:port/proxy`) dials pod IPs.
  ip -n "$ns_cp" route add "$cidr" via "$my_ip"
  wait_node_ready "$node" $node-kubelet
}

# wait_node_ready NODE COMPONENT
wait_node_ready() {
  wait_for "node $1 Ready" "$2" 180 \
    bash -c "$kc_sh get node $1 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
}

# veth-xdp as a user installs it: `kubectl apply -k manifests/` (egress tc: an overlay made in
# the run dir that adds "egress": "tc" to the ConfigMap's conflist template); the DaemonSet's
# agent on each node copies the plugin, sets up the datapath and writes the conflist, which is
# what turns the node Ready. L2 mode: the pod CIDRs lie inside the fabric's subnet, so pods,
# nodes and the control plane reach each other on the segment, without routes.
vethxdp_up() {
  local k=$repo/manifests n
  [ "$egress" = tc ] && k=$(egress_tc_overlay)
  log "kubectl apply -k $k (log: $run/logs/kubectl-apply.log)"
  kc apply -k "$k" >"$run/logs/kubectl-apply.log" 2>&1 \
    || { cat "$run/logs/kubectl-apply.log" >&2; die "kubectl apply -k $k failed"; }
  for n in "${nodes[@]}"; do
    wait_for "veth-xdp agent on $n Ready" $n-kubelet 180 \
      bash -c "$kc_sh -n veth-xdp get pods --field-selector spec.nodeName=$n -o jsonpath='{.items[*].status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
    wait_node_ready "$n" $n-kubelet
    log "$n: conflist $(tr -d ' \n' <"$run/$n/host/etc/cni/net.d/05-veth-xdp.conflist" \
      | grep -o '"egress":"[a-z]*"\|"rangeStart":"[0-9.]*"\|"rangeEnd":"[0-9.]*"' | tr '\n' ' ')"
  done
}

# Multus as each node's CNI config, delegating to veth-xdp: the NetworkAttachmentDefinition CRD
# (from build.sh), RBAC for Multus' client certificate (pki: user "multus"; what upstream's
# ClusterRole grants the multus ServiceAccount), 00-multus.conflist on every node — written only
# now that the DaemonSet wrote 05-veth-xdp.conflist, and sorting before it: containerd
# (max_conf_num 1) takes the first — with clusterNetwork the name of veth-xdp's network, and the
# NetworkAttachmentDefinition default/net1: veth-xdp on eth1 (fabric2).
# clusterNetwork is the network's name, not the conflist's path: Multus v4.3.0 keeps, for a
# delegate given as a .conflist path, a copy re-marshalled from its typed structs (only cniVersion,
# name, type, capabilities, ipam.type, dns) and hands that to DEL: veth-xdp then got no uplink,
# no ranges, and host-local's DEL failed ("no IP ranges specified"), so the pods stayed
# Terminating (multus-cni PR #1521, merged after v4.3.0). A name is looked up first as a
# NetworkAttachmentDefinition in kube-system (not found: a Warning event NoNetworkFound on the
# pod), then as the "name" of a file in confDir, whose bytes Multus keeps as they are.
multus_up() {
  local crd=$cache/manifests/multus-nad-crd.yaml n
  kc apply -f "$crd" >/dev/null || die "kubectl apply -f $crd failed"
  wait_for "CRD network-attachment-definitions.k8s.cni.cncf.io established" kube-apiserver 60 \
    kc wait --for condition=established --timeout=1s crd/network-attachment-definitions.k8s.cni.cncf.io
  kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: multus}
rules:
- apiGroups: [k8s.cni.cncf.io]
  resources: [network-attachment-definitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods, pods/status]
  verbs: [get, update]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: multus}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: multus}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: multus}]
EOF
  # net1: static IPAM (the pod's annotation names its address and MAC: the ips and mac
  # capabilities), no routes (the pod's default route stays on eth0), the run's egress mode.
  kc apply -f - >/dev/null <<EOF
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: net1, namespace: default}
spec:
  config: |
    {
      "cniVersion": "1.0.0",
      "name": "net1",
      "plugins": [
        {
          "type": "veth-xdp",
          "uplink": "eth1",
          "egress": "$egress",
          "bpfRoot": "$net1_bpf_root",
          "stateDir": "$net1_state_dir",
          "logFile": "/var/log/veth-xdp-net1.log",
          "capabilities": { "mac": true, "ips": true },
          "ipam": { "type": "static" }
        }
      ]
    }
EOF
  local version; version=$("$bin/multus" -version | sed -n 's/^multus: version:\([^(]*\).*/\1/p')
  for n in "${nodes[@]}"; do
    local conf=$run/$n/host/etc/cni/net.d
    [ -f "$conf/05-veth-xdp.conflist" ] || die "$n: no 05-veth-xdp.conflist: Multus has nothing to delegate to"
    cat >"$conf/.00-multus.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "multus-cni-network",
  "plugins": [
    {
      "type": "multus",
      "kubeconfig": "$run/pki/multus.kubeconfig",
      "clusterNetwork": "veth-xdp",
      "confDir": "/etc/cni/net.d",
      "cniDir": "/var/lib/cni/multus",
      "binDir": "/opt/cni/bin",
      "capabilities": { "portMappings": true },
      "logFile": "/var/log/multus.log",
      "logLevel": "verbose"
    }
  ]
}
EOF
    mv "$conf/.00-multus.conflist" "$conf/00-multus.conflist"
    log "$n: 00-multus.conflist (Multus $version; cluster network: veth-xdp, 05-veth-xdp.conflist)"
  done
  # containerd reloads its CNI config on the directory's inotify event; the smoke pods made next
  # show whether Multus made their eth0 (multus_primary_check).
  sleep 2
}

# The smoke pods' eth0 came through Multus: it writes the k8s.v1.cni.cncf.io/network-status
# annotation (veth-xdp's network, eth0, the pod's address).
multus_primary_check() {
  local n st
  for n in "${nodes[@]}"; do
    st=$(kc get pod "smoke-$n" -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}')
    python3 -c '
import json, sys
st = json.loads(sys.argv[1] or "[]")
assert any(e.get("interface") == "eth0" and e.get("name") == "veth-xdp" and e.get("default") for e in st), st
' "$st" 2>/dev/null || die "pod smoke-$n: no network-status from Multus with veth-xdp's eth0 (got: '$st'; log: $run/$n/host/var/log/multus.log)"
    log "pod smoke-$n: eth0 through Multus (network-status: $(tr -d ' \n' <<<"$st"))"
  done
}

# A kustomize overlay of manifests/ for egress mode tc, in the run dir; prints its path.
egress_tc_overlay() {
  local o=$run/kustomize-egress-tc
  mkdir -p "$o"
  python3 - "$repo/manifests/configmap.yaml" "$o/configmap-egress-tc.yaml" <<'PY'
import sys
text = open(sys.argv[1]).read()
anchor = '        {\n          "type": "veth-xdp",\n'
assert text.count(anchor) == 1, "manifests/configmap.yaml: the template's veth-xdp entry not found"
open(sys.argv[2], "w").write(text.replace(anchor, anchor + '          "egress": "tc",\n'))
PY
  cat >"$o/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$(realpath --relative-to="$o" "$repo/manifests")]
patches: [{path: configmap-egress-tc.yaml}]
EOF
  echo "$o"
}

# ------------------------------------------------------------------------------- smoke pod
smoke_pod() {
  local pause_tag n ip me; pause_tag=$(cat "$cache/images/pause.tag")
  # The ServiceAccount admission plugin refuses pods until the controller-manager made the
  # namespace's default ServiceAccount.
  wait_for "ServiceAccount default/default" kube-controller-manager 60 kc get serviceaccount default
  # One pod per node (nodeName: the scheduler is not involved).
  for n in "${nodes[@]}"; do
    kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: smoke-$n, namespace: default}
spec:
  nodeName: $n
  containers:
  - name: pause
    image: registry.k8s.io/pause:$pause_tag
    imagePullPolicy: Never
EOF
  done
  for n in "${nodes[@]}"; do
    wait_for "pod smoke-$n Running" $n-kubelet 120 \
      bash -c "$kc_sh get pod smoke-$n -o jsonpath='{.status.phase}' | grep -qx Running"
    ip=$(kc get pod "smoke-$n" -o jsonpath='{.status.podIP}')
    log "pod smoke-$n Running at $ip"
    # Every node reaches every pod (its own over the bridge, the others' through their node).
    for me in "${nodes[@]}"; do
      use_node "$me"
      inns "$ns_w" ping -c1 -W2 "$ip" >/dev/null || die "node $me cannot reach pod smoke-$n ($ip)"
    done
    log "every node reaches pod smoke-$n ($ip)"
  done
  # kube-proxy's DNAT of the kubernetes Service (10.96.0.1:443 -> the apiserver), from each node.
  for n in "${nodes[@]}"; do
    use_node "$n"
    wait_for "Service kubernetes ($kubernetes_svc_ip:443) from $n" $n-kube-proxy 30 \
      inns "$ns_w" curl -sfk --max-time 2 "https://$kubernetes_svc_ip/readyz"
  done
  use_node w1
}

# ----------------------------------------------------------------------------------- CoreDNS
# Kubernetes' own addon manifest (cluster/addons/dns/coredns/coredns.yaml.base of the release,
# copied by build.sh): a Deployment behind the kube-dns Service at the cluster DNS address; the
# image is build.sh's, imported with the others.
coredns_up() {
  local base=$cache/manifests/coredns.yaml.base
  sed -e "s/__MACHINE_GENERATED_WARNING__/from $(basename "$base") by cluster.sh/" \
      -e "s/__DNS__DOMAIN__/cluster.local/g" -e "s/__DNS__SERVER__/$dns_ip/g" \
      -e "s/__DNS__MEMORY__LIMIT__/170Mi/g" "$base" >"$run/coredns.yaml"
  kc apply -f "$run/coredns.yaml" >/dev/null
  wait_for "CoreDNS pod Ready" w1-kubelet 180 \
    kc -n kube-system wait --for=condition=Ready --timeout=1s pod -l k8s-app=kube-dns
  # From the node: the kube-dns ClusterIP, DNATed by kube-proxy to the CoreDNS pod on the bridge.
  use_node w1
  wait_for "DNS kubernetes.default.svc.cluster.local via $dns_ip" w1-kube-proxy 30 \
    bash -c "nsenter --net=/var/run/netns/$ns_w python3 '$here/lib/dnsq.py' $dns_ip kubernetes.default.svc.cluster.local | grep -qx $kubernetes_svc_ip"
  log "CoreDNS answers kubernetes.default.svc.cluster.local = $kubernetes_svc_ip through the kube-dns Service"
}

# ------------------------------------------------------------------------------------- down
down() {
  set +e
  # Whatever workers a run had: found by name, so down needs nothing from up (nor its run dir).
  local wns=() roots=() f
  for f in /var/run/netns/"$p"-w[0-9]; do [ -e "$f" ] && wns+=("$(basename "$f")"); done
  for f in /sys/fs/cgroup/*/"$p"-w[0-9]; do [ -d "$f" ] && roots+=("$f"); done
  # kubelets first (they would restart containers), then the rest.
  for f in "$run"/pids/*-kubelet "$run"/pids/*; do
    [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
  done
  sleep 1
  # Every process left in our cgroup roots (containers, pause) and in our namespaces
  # (containerd, its shims, anything else started there).
  local round ns
  for round in 1 2 3; do
    local pids=()
    for f in $(find "${roots[@]}" -name cgroup.procs 2>/dev/null); do
      mapfile -t -O "${#pids[@]}" pids <"$f"
    done
    for ns in "${wns[@]}" "$ns_cp" "$ns_fabric" "$ns_fabric2"; do
      [ -e "/var/run/netns/$ns" ] && mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null)
    done
    ((${#pids[@]})) || break
    kill -KILL "${pids[@]}" 2>/dev/null
    sleep 1
  done
  # libcni (containerd's CRI) caches results in /var/lib/cni whatever the config says: the pod
  # network's and containerd's own cni-loopback, per sandbox ID.
  local sb
  for sb in "$run"/w[0-9]/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*; do
    [ -e "$sb" ] && rm -f /var/lib/cni/results/*-"$(basename "$sb")"-*
  done
  rm -f /var/lib/cni/results/"$cni_net"-* 2>/dev/null
  # Mounts under the run dir (kubelet volumes, containerd's rootfs, shm and pod netns mounts:
  # netns_mounts_under_state_dir), deepest first.
  if [ -d "$run" ]; then
    awk -v r="$run" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m"
    done
  fi
  # Our cgroups, deepest first, in every hierarchy.
  for f in "${roots[@]}"; do find "$f" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  for ns in "${wns[@]}" "$ns_cp" "$ns_fabric" "$ns_fabric2"; do
    [ -e "/var/run/netns/$ns" ] && ip netns del "$ns"
  done
  if [ -d "$run/logs" ]; then
    local kept; kept="$keep/$(cat "$run/started" 2>/dev/null || date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$kept" && cp -a "$run/logs/." "$kept/" && log "down: logs of the run kept in $kept"
    # Each node's pod logs (the veth-xdp agent's among them) and its /var/log (the plugin's log).
    for f in "$run"/w[0-9]; do
      [ -d "$f/pod-logs" ] && mkdir -p "$kept/$(basename "$f")" && cp -a "$f/pod-logs" "$kept/$(basename "$f")/"
      [ -d "$f/host/var/log" ] && mkdir -p "$kept/$(basename "$f")" && cp -a "$f/host/var/log" "$kept/$(basename "$f")/var-log"
    done
  fi
  # The mount points node_mntns_up made on the machine: only those it made, only if empty, and
  # only if no other mount namespace has a mount on or under one (another run's node, with
  # another prefix, that found the directory there): removing a mount point detaches the mounts on
  # it in every namespace (seen: a node lost its /opt/cni/bin, and its containerd failed every
  # CNI DEL with 'failed to find plugin "loopback" in path [/opt/cni/bin]').
  if [ -f "$run/created-dirs" ]; then
    sort -ru "$run/created-dirs" | while read -r f; do
      [ -d "$f" ] || continue
      if grep -qsF -e " $f " -e " $f/" /proc/[0-9]*/mountinfo; then
        log "down: kept $f: another mount namespace has a mount on it (another run's node)"
        continue
      fi
      find "$f" -depth -type d -empty -delete 2>/dev/null
    done
  fi
  rm -rf "$run"
  local left=""
  for f in /var/run/netns/"$p"-*; do [ -e "$f" ] && left+=" netns:$(basename "$f")"; done
  for f in /sys/fs/cgroup/*/"$p"-w[0-9]; do [ -d "$f" ] && left+=" cgroup:$f"; done
  grep -q " $run" /proc/self/mounts && left+=" mounts under $run"
  [ -e "$run" ] && left+=" $run"
  if [ -n "$left" ]; then log "down: left behind:$left"; return 1; fi
  log "down: nothing left"
}

up() {
  [ -e "$run" ] && die "$run exists: a cluster is up (or a run was interrupted): cluster.sh down first"
  local b
  for b in etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [ -x "$bin/$b" ] || die "$bin/$b missing: bash $here/build.sh"
  done
  [ -f "$cache/images/pause.tag" ] || die "pause image missing: bash $here/build.sh --only pause"
  [ -f "$cache/manifests/coredns.yaml.base" ] || die "CoreDNS image/manifest missing: bash $here/build.sh --only coredns"
  if [ "$multus" = 1 ]; then
    [ -x "$bin/multus" ] && [ -f "$cache/manifests/multus-nad-crd.yaml" ] \
      || die "Multus missing: bash $here/build.sh --only multus"
  fi
  for b in containerd ctr runc openssl curl iptables ethtool unshare; do
    command -v "$b" >/dev/null || die "$b missing (bash hack/setup-deps.sh; apt-get install $b)"
  done
  # kube-proxy's nftables mode runs the nft command (knftables).
  [ "$proxy_mode" = iptables ] || command -v nft >/dev/null || die "nft missing (apt-get install nftables)"
  local f
  for f in /var/run/netns/"$p"-*; do
    [ -e "$f" ] && die "netns $(basename "$f") exists: another run uses prefix $p (VETH_XDP_K8S_PREFIX)"
  done
  # From here on, every way out of up but success tears down what was made.
  up_ok=0
  trap '[ "$up_ok" = 1 ] || { log "up failed or was interrupted: tearing down"; down; }' EXIT
  trap 'exit 130' INT TERM
  mkdir -p "$run"/{logs,pids}
  date -u +%Y%m%dT%H%M%SZ >"$run/started"
  # A shared mount: the kubelet's mount namespace and the machine's see each other's mounts here.
  mount --bind "$run" "$run"
  mount --make-shared "$run"
  log "run dir $run, namespaces $ns_fabric $ns_cp ${nodes[*]/#/$p-}$([ "$multus" = 0 ] || echo " $ns_fabric2"), CNI $cni$([ "$cni" = bridge ] || echo " (egress $egress)")$([ "$multus" = 0 ] || echo ", Multus with net1 on eth1")"
  if [ "$cni" = veth-xdp ]; then
    # The image the DaemonSet runs, from the release binary (hack/build-release.sh).
    [ -x "$repo/target/dist/veth-xdp" ] \
      || die "$repo/target/dist/veth-xdp missing: bash hack/build-release.sh (the DaemonSet's image is made from it)"
    vethxdp_image=$run/images/veth-xdp.oci.tar
    mkdir -p "$run/images"
    bash "$repo/hack/image.sh" --out "$vethxdp_image" >"$run/logs/image.log" 2>&1 \
      || die "hack/image.sh failed (log: $run/logs/image.log)"
    log "veth-xdp image from target/dist/veth-xdp ($(date -r "$repo/target/dist/veth-xdp" -u +%FT%TZ)): $vethxdp_image"
  fi
  pki
  netns_up
  control_plane_up
  local n
  for n in "${nodes[@]}"; do use_node "$n"; worker_up; done
  if [ "$cni" = bridge ]; then
    for n in "${nodes[@]}"; do use_node "$n"; bridge_up; done
  else
    vethxdp_up
    [ "$multus" = 0 ] || multus_up
  fi
  smoke_pod
  [ "$multus" = 0 ] || multus_primary_check
  coredns_up
  up_ok=1
  log "up: ${#nodes[@]} node(s) Ready (${nodes[*]}), a pod Running on each, CoreDNS answering, kube-proxy $proxy_mode$([ "$multus" = 0 ] || echo ", Multus (net1: bash $here/multus-check.sh)"); kubectl: $0 kubectl get pods -A; stop: $0 down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  kubectl) shift; kc "$@" ;;
  node)
    # cluster.sh node wI CMD...: CMD in that node's network and mount namespaces (its CNI dirs,
    # bpffs and state), e.g. `cluster.sh node w1 /opt/cni/bin/veth-xdp stats`.
    [[ ${2:-} =~ ^w[1-9]$ ]] || die "node: which node (w1, w2, ...)?"
    [ -f "$run/pids/$2-mntns" ] || die "node $2 is not up ($run)"
    use_node "$2"; shift 2; on_node "$@" ;;
  e2e)
    # The upstream e2e binary against the running cluster, from the control-plane namespace:
    # cluster.sh e2e --ginkgo.focus=REGEX [more e2e.test flags]. Log: <run>/logs/e2e.log.
    shift
    [ -x "$bin/e2e.test" ] || die "$bin/e2e.test missing: bash $here/build.sh --only e2e"
    [ -f "$run/pki/admin.kubeconfig" ] || die "no cluster is up ($run): cluster.sh up first"
    mkdir -p "$run/e2e"
    # The cache's kubectl (the release's), not whatever kubectl is first in PATH: the tests exec
    # it (`kubectl exec`, `kubectl run`). VETH_XDP_K8S_E2E_PROCS > 1: ginkgo runs that many
    # e2e.test processes in parallel ([Serial] tests last, alone), as upstream's CI does.
    e2e=("$bin/e2e.test")
    procs=${VETH_XDP_K8S_E2E_PROCS:-1}
    [ "$procs" -gt 1 ] && e2e=("$bin/ginkgo" --procs="$procs" --no-color "$bin/e2e.test" --)
    inns "$ns_cp" "${e2e[@]}" --kubeconfig "$run/pki/admin.kubeconfig" --provider skeleton \
      --kubectl-path "$bin/kubectl" --report-dir "$run/e2e" --ginkgo.no-color "$@" 2>&1 \
      | tee "$run/logs/e2e.log"
    exit "${PIPESTATUS[0]}" ;;
  status)
    for f in "$run"/pids/*; do
      [ -f "$f" ] || continue
      n=$(basename "$f"); pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then echo "$n: running ($pid)"; else echo "$n: exited (log: $run/logs/$n.log)"; fi
    done ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac
