#!/usr/bin/env bash
# The Multus secondary-network check, against a cluster made by
# `VETH_XDP_K8S_MULTUS=1 VETH_XDP_K8S_WORKERS=2 cluster.sh up` (run it with the same VETH_XDP_K8S_*
# environment): veth-xdp as net1 on the second fabric, traffic through its XDP fast path.
#
#   1. a pod on w1 and one on w2 (agnhost), each asking for net1 with a static address and MAC
#      (annotation k8s.v1.cni.cncf.io/networks; NetworkAttachmentDefinition default/net1:
#      veth-xdp on eth1, pin root /sys/fs/bpf/veth-xdp-net1, state dir /var/lib/veth-xdp-net1);
#   2. both Running, Multus' network-status annotation lists eth0 (veth-xdp) and net1 with the
#      address and MAC asked for, and in each pod net1 has them (`ip`), the default route on eth0;
#   3. `veth-xdp stats --state-dir /var/lib/veth-xdp-net1 --json` on both nodes, then PINGS pings
#      each way between the net1 addresses (0% loss), then the stats again: each pod's IN (frames
#      eth1's XDP program redirected into it) and OUT-WIRE (frames its host veth's program
#      redirected to eth1), and eth1's "frames redirected to pods", each grew by at least 2 x PINGS;
#   4. the bridge of the second fabric (10.79.0.1, a station outside the nodes) pings both pods;
#   5. the pods deleted (gone within 60 s: the kubelet tore their sandboxes down, Multus' DEL of
#      eth0 and net1 succeeded), and their net1 records are gone from both nodes.
#
# Prints each step and PASS or FAIL (exit 0 or 1). Usage: multus-check.sh [--keep] (--keep: leave
# the pods). Env: PINGS (default 20), and cluster.sh's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VETH_XDP_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veth-xdp/k8s}
p=${VETH_XDP_K8S_PREFIX:-vxk8s}
pings=${PINGS:-20}
keep=false
[ "${1:-}" = --keep ] && keep=true
state_dir=/var/lib/veth-xdp-net1
nodes=(w1 w2)

log() { echo "multus-check: $*" >&2; }
fails=()
fail() { log "FAIL: $*"; fails+=("$*"); }
kc() { bash "$here/cluster.sh" kubectl "$@"; }
node() { bash "$here/cluster.sh" node "$@"; }
pod_of() { echo "net1-$1"; }
ip_of() { echo "10.79.128.$((10 + ${1#w}))"; }
mac_of() { printf '02:00:0a:4f:80:%02x' $((10 + ${1#w})); }
stats() { node "$1" /opt/cni/bin/veth-xdp stats --state-dir "$state_dir" --json; }

# counters JSON NODE: "IN OUT-WIRE TO-PODS" of this node's test pod (its net1 attachment, found by
# its MAC) and of the uplink eth1.
counters() {
  python3 -c '
import json, sys
s = json.loads(sys.argv[1])
att = [a for a in s["attachments"] if a["ifname"] == "net1" and a["podMac"].lower() == sys.argv[2]]
up = [u for u in s["uplinks"] if u["uplink"] == "eth1"]
if len(att) != 1 or len(up) != 1 or not att[0]["inDatapath"]:
    sys.exit("no single net1 attachment with MAC %s in the datapath, or no uplink eth1: %s" % (sys.argv[2], s))
c = att[0]["counters"]
print(c["redirectedIn"]["packets"], c["redirectedToUplink"]["packets"], up[0]["redirectedToPods"])
' "$1" "$(mac_of "$2")"
}

[ -d "${VETH_XDP_K8S_RUN:-/run/veth-xdp-k8s}/w2" ] \
  || { log "no two-worker cluster at ${VETH_XDP_K8S_RUN:-/run/veth-xdp-k8s} (VETH_XDP_K8S_MULTUS=1 VETH_XDP_K8S_WORKERS=2 cluster.sh up)"; exit 2; }
kc get network-attachment-definitions.k8s.cni.cncf.io net1 >/dev/null \
  || { log "no NetworkAttachmentDefinition net1: the cluster was not made with VETH_XDP_K8S_MULTUS=1"; exit 2; }
tag=$(basename "$(ls "$cache"/images/agnhost-*.oci.tar | head -1)" .oci.tar); tag=${tag#agnhost-}

cleanup() {
  $keep && return
  local n
  for n in "${nodes[@]}"; do kc delete pod "$(pod_of "$n")" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true; done
}
done_ok=0
trap 'rc=$?; [ "$done_ok" = 1 ] || cleanup; exit $rc' EXIT

# 1. The pods.
t0=$(date +%s)
for n in "${nodes[@]}"; do
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $(pod_of "$n")
  namespace: default
  annotations:
    k8s.v1.cni.cncf.io/networks: '[{"name": "net1", "interface": "net1", "mac": "$(mac_of "$n")", "ips": ["$(ip_of "$n")/16"]}]'
spec:
  nodeName: $n
  terminationGracePeriodSeconds: 1
  containers:
  - name: agnhost
    image: registry.k8s.io/e2e-test-images/agnhost:$tag
    imagePullPolicy: Never
    args: [pause]
EOF
done

# 2. Running, with net1 as asked.
for n in "${nodes[@]}"; do
  pod=$(pod_of "$n")
  if ! kc wait --for=condition=Ready --timeout=120s pod "$pod" >/dev/null; then
    kc describe pod "$pod" | tail -15 >&2
    fail "pod $pod not Ready (Multus' log: the node's /var/log/multus.log; veth-xdp's: /var/log/veth-xdp-net1.log)"
    continue
  fi
  st=$(kc get pod "$pod" -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}')
  if python3 -c '
import json, sys
st = json.loads(sys.argv[1])
eth0 = [e for e in st if e.get("interface") == "eth0" and e.get("name") == "veth-xdp" and e.get("default")]
net1 = [e for e in st if e.get("interface") == "net1" and e.get("name") == "default/net1"
        and e.get("ips") == [sys.argv[2]] and e.get("mac", "").lower() == sys.argv[3]]
sys.exit(0 if eth0 and net1 else 1)
' "$st" "$(ip_of "$n")" "$(mac_of "$n")"; then
    log "pod $pod Running on $n; network-status: $(tr -d ' \n' <<<"$st")"
  else
    fail "pod $pod: network-status lacks eth0 (veth-xdp) or net1 ($(ip_of "$n"), $(mac_of "$n")): $st"
  fi
  addr=$(kc exec "$pod" -- ip -o addr show dev net1 2>&1 || true)
  link=$(kc exec "$pod" -- ip -o link show dev net1 2>&1 || true)
  route=$(kc exec "$pod" -- ip route 2>&1 | grep '^default' || true)
  log "pod $pod: $(grep -o 'inet [0-9./]*' <<<"$addr"), $(grep -o 'link/ether [0-9a-f:]*' <<<"$link"), default route: $route"
  grep -q "inet $(ip_of "$n")/16 " <<<"$addr" || fail "pod $pod: net1 has not $(ip_of "$n")/16: $addr"
  grep -q "link/ether $(mac_of "$n") " <<<"$link" || fail "pod $pod: net1's MAC is not $(mac_of "$n"): $link"
  grep -q "dev eth0" <<<"$route" || fail "pod $pod: the default route is not on eth0: $route"
done
((${#fails[@]} == 0)) || { log "FAIL (${#fails[@]}): the pods did not get net1 as asked"; exit 1; }
log "both pods Running with net1 in $(( $(date +%s) - t0 ))s"

# 3. The fast path: counters, pings both ways, counters.
declare -A before after
for n in "${nodes[@]}"; do
  log "$n: veth-xdp stats --state-dir $state_dir (before):"
  node "$n" /opt/cni/bin/veth-xdp stats --state-dir "$state_dir" >&2
  before[$n]=$(counters "$(stats "$n")" "$n") || { fail "$n: no counters of the net1 attachment"; exit 1; }
done
for pair in "w1 w2" "w2 w1"; do
  read -r from to <<<"$pair"
  out=$(kc exec "$(pod_of "$from")" -- ping -c "$pings" -i 0.2 -W 2 "$(ip_of "$to")" 2>&1 || true)
  log "ping from $(pod_of "$from") ($from, $(ip_of "$from")) to $(pod_of "$to") ($to, $(ip_of "$to")): $(grep -E 'packets transmitted|min/avg/max' <<<"$out" | tr '\n' ' ')"
  grep -q " $pings packets received, 0% packet loss" <<<"$out" || fail "ping $(ip_of "$from") -> $(ip_of "$to"): $out"
done
for n in "${nodes[@]}"; do
  log "$n: veth-xdp stats --state-dir $state_dir (after):"
  node "$n" /opt/cni/bin/veth-xdp stats --state-dir "$state_dir" >&2
  after[$n]=$(counters "$(stats "$n")" "$n") || { fail "$n: no counters of the net1 attachment"; exit 1; }
  read -r in0 wire0 up0 <<<"${before[$n]}"
  read -r in1 wire1 up1 <<<"${after[$n]}"
  log "$n: pod $(pod_of "$n") IN $in0 -> $in1 (+$((in1 - in0))), OUT-WIRE $wire0 -> $wire1 (+$((wire1 - wire0))); uplink eth1: frames redirected to pods $up0 -> $up1 (+$((up1 - up0)))"
  (( in1 - in0 >= 2 * pings )) || fail "$n: IN of $(pod_of "$n") grew by $((in1 - in0)), fewer than the $((2 * pings)) echo requests and replies it received"
  (( wire1 - wire0 >= 2 * pings )) || fail "$n: OUT-WIRE of $(pod_of "$n") grew by $((wire1 - wire0)), fewer than the $((2 * pings)) it sent"
  (( up1 - up0 >= 2 * pings )) || fail "$n: eth1's frames redirected to pods grew by $((up1 - up0)), fewer than $((2 * pings))"
done

# 4. From a station on the segment that is not a node: the second fabric's bridge.
for n in "${nodes[@]}"; do
  out=$(nsenter --net="/var/run/netns/$p-fabric2" ping -c 5 -i 0.2 -W 2 "$(ip_of "$n")" 2>&1 || true)
  log "ping from the fabric2 bridge (10.79.0.1) to $(pod_of "$n") ($(ip_of "$n")): $(grep -E 'packets transmitted' <<<"$out")"
  grep -q " 0% packet loss" <<<"$out" || fail "ping 10.79.0.1 -> $(ip_of "$n"): $out"
done

# 5. DEL through Multus: the pods go (a failed CNI DEL keeps a pod Terminating), and so do
# their net1 records.
if ! $keep; then
  t0=$(date +%s)
  for n in "${nodes[@]}"; do kc delete pod "$(pod_of "$n")" --wait=false >/dev/null; done
  for n in "${nodes[@]}"; do
    if kc wait --for=delete --timeout=60s pod "$(pod_of "$n")" >/dev/null 2>&1; then
      log "pod $(pod_of "$n") deleted ($(( $(date +%s) - t0 ))s)"
    else
      kc get events --field-selector "involvedObject.name=$(pod_of "$n")" 2>&1 | grep -i fail | tail -3 >&2
      fail "pod $(pod_of "$n") not gone 60 s after its deletion (its sandbox's CNI DEL fails?)"
    fi
  done
  for n in "${nodes[@]}"; do
    left=$(stats "$n" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["attachments"]))')
    if [ "$left" = 0 ]; then log "$n: pod deleted, no net1 attachment left in $state_dir"
    else fail "$n: $left net1 attachment(s) left in $state_dir after the pods were deleted"; fi
  done
fi
done_ok=1

if ((${#fails[@]})); then
  log "FAIL (${#fails[@]}):"; printf '  %s\n' "${fails[@]}" >&2; exit 1
fi
log "PASS: net1 (veth-xdp on eth1, through Multus) on both nodes; $pings pings each way at 0% loss; on each node the pod's IN and OUT-WIRE and eth1's frames redirected to pods grew by $((2 * pings)) or more (XDP redirects)"
