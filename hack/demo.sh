#!/usr/bin/env bash
# A local demo node: a "node" namespace whose uplink is a veth to a "wire"
# namespace (the physical network, with the gateway), two pods attached by the
# veth-xdp plugin through the CNI protocol with host-local IPAM, traffic, and
# the state the plugin built. Everything is removed at the end (also on error
# or Ctrl-C). Needs root. Set KEEP=1 to leave the topology up for poking.
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/setup-deps.sh
[ "$(id -u)" = 0 ] || { echo "hack/demo.sh: run as root" >&2; exit 1; }
cargo build --quiet -p veth-xdp -p vx-bench
BIN=$PWD/target/debug/veth-xdp
INJECT=$PWD/target/debug/vx-bench

P=vxdemo
NODE=${P}-node WIRE=${P}-wire
DIR=/tmp/${P}
BPF_ROOT=/sys/fs/bpf/${P}
PODS=(${P}-pod1 ${P}-pod2)

cleanup() {
  [ "${KEEP:-0}" = 1 ] && { echo "KEEP=1: left namespaces ${NODE} ${WIRE} ${PODS[*]} up"; return; }
  for ns in "${PODS[@]}" "$NODE" "$WIRE"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$DIR" "$BPF_ROOT"
}
trap cleanup EXIT
cleanup

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
innode() { nsenter --net=/var/run/netns/$NODE "$@"; }

say "topology: wire (10.88.0.1, gateway) <-veth-> node uplink0 (10.88.0.2)"
ip netns add $NODE; ip netns add $WIRE
ip link add uplink0 netns $NODE type veth peer name wire0 netns $WIRE
ip -n $NODE link set lo up; ip -n $WIRE link set lo up
ip -n $NODE addr add 10.88.0.2/24 dev uplink0; ip -n $NODE link set uplink0 up
ip -n $WIRE addr add 10.88.0.1/24 dev wire0; ip -n $WIRE link set wire0 up
ip -n $NODE route add default via 10.88.0.1
# A veth standing in for the wire: GRO on (it receives XDP-redirected frames),
# tx checksum offload off (a physical wire carries full checksums).
nsenter --net=/var/run/netns/$WIRE ethtool -K wire0 gro on tx off >/dev/null

mkdir -p $DIR
cat > $DIR/net.conf <<CONF
{
  "cniVersion": "1.0.0",
  "name": "demo",
  "type": "veth-xdp",
  "uplink": "uplink0",
  "stateDir": "$DIR/state",
  "logFile": "$DIR/veth-xdp.log",
  "bpfRoot": "$BPF_ROOT",
  "ipam": {
    "type": "host-local",
    "ranges": [[{"subnet": "10.88.0.0/24", "rangeStart": "10.88.0.10", "rangeEnd": "10.88.0.99", "gateway": "10.88.0.1"}]],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dataDir": "$DIR/ipam"
  }
}
CONF

cni() { # verb pod
  CNI_COMMAND=$1 CNI_CONTAINERID=demo-$2 CNI_NETNS=/var/run/netns/$2 CNI_IFNAME=eth0 \
    CNI_PATH=/usr/lib/cni innode "$BIN" < $DIR/net.conf
}

declare -A IP
for pod in "${PODS[@]}"; do
  say "CNI ADD $pod (plugin runs in the node namespace via nsenter --net)"
  ip netns add $pod; ip -n $pod link set lo up
  cni ADD $pod | tee $DIR/$pod.json | jq .
  IP[$pod]=$(jq -r '.ips[0].address' $DIR/$pod.json | cut -d/ -f1)
done

say "node -> pods (the kubelet probe path: host routes via the host veths)"
for pod in "${PODS[@]}"; do innode ping -c 2 -W 2 ${IP[$pod]} | tail -2; done

P1=${PODS[0]} P2=${PODS[1]}
say "wire -> both pods (ARP answered through the uplink XDP program, frames redirected in)"
for pod in "${PODS[@]}"; do nsenter --net=/var/run/netns/$WIRE ping -c 2 -W 2 ${IP[$pod]} | tail -2; done
say "pod -> pod and pod -> gateway (host veth XDP redirects)"
nsenter --net=/var/run/netns/$P1 ping -c 2 -W 2 ${IP[$P2]} | tail -2
nsenter --net=/var/run/netns/$P2 ping -c 2 -W 2 10.88.0.1 | tail -2

say "datapath counters (veth-xdp stats)"
innode "$BIN" stats --state-dir $DIR/state

say "1,000,000 frames injected at the uplink from the wire (XDP live frames) to $P1's MAC"
MAC1=$(jq -r '.interfaces[1].mac' $DIR/$P1.json)
IN_BEFORE=$(innode "$BIN" stats --json --state-dir $DIR/state | jq "[.attachments[] | select(.containerID==\"demo-$P1\") | .counters.redirectedIn.packets][0]")
"$INJECT" inject --netns $WIRE --dev wire0 --dst-mac $MAC1 --dst-ip ${IP[$P1]} --src-ip 10.88.0.1 --frames 1000000
sleep 0.5
IN_AFTER=$(innode "$BIN" stats --json --state-dir $DIR/state | jq "[.attachments[] | select(.containerID==\"demo-$P1\") | .counters.redirectedIn.packets][0]")
echo "$P1: redirected in by XDP_REDIRECT: $((IN_AFTER - IN_BEFORE)) frames during the injection"
innode "$BIN" stats --state-dir $DIR/state

say "attachment state"
echo "-- node: links"; ip -n $NODE -br link
echo "-- node: routes"; ip -n $NODE route
echo "-- uplink unicast filter (bridge fdb show dev uplink0)"; bridge -n $NODE fdb show dev uplink0 | grep -v '^33:33\|^01:00:5e'
pod=${PODS[0]}
echo "-- $pod eth0"; ip -n $pod -d link show eth0 | sed -n '1,3p'
echo "-- $pod eth0 channels"; nsenter --net=/var/run/netns/$pod ethtool -l eth0 | sed -n '/Current/,$p'
echo "-- $pod eth0 offloads"; nsenter --net=/var/run/netns/$pod ethtool -k eth0 | grep -E '^(tx-checksumming|tx-vlan-offload|generic-receive-offload)'
echo "-- records"; ls -l $DIR/state/networks/demo/
echo "-- XDP programs: uplink (driver mode = 'xdp'), host veths"; ip -n $NODE -d link | grep -E '^[0-9]+:|prog/xdp'
echo "-- pinned datapath"; find $BPF_ROOT -maxdepth 3 | sort

say "CNI DEL both pods"
for pod in "${PODS[@]}"; do cni DEL $pod && echo "DEL $pod ok"; done
echo "-- node links after DEL"; ip -n $NODE -br link
say "done (plugin log: $DIR/veth-xdp.log, removed on exit)"
