#!/usr/bin/env bash
# The one command of issue 10: builds everything (build.sh, and the veth-xdp release binary its
# image is made from), then for each configuration starts a two-worker cluster (cluster.sh up:
# for veth-xdp, `kubectl apply -k manifests/`), runs the upstream [sig-network] conformance tests
# (DNS ones included) against it, and tears it down; writes a report of every test in every
# configuration.
#
# Usage: conformance.sh [--configs LIST] [--procs N] [--no-build] [--results DIR] [--docs]
#   --configs LIST  comma-separated, from: bridge-iptables bridge-nftables veth-xdp-xdp-iptables
#                   veth-xdp-tc-iptables veth-xdp-xdp-nftables veth-xdp-tc-nftables
#                   (default: all six)
#   --procs N       e2e processes in parallel (ginkgo --procs; default 4)
#   --no-build      use the cache and target/dist/veth-xdp as they are
#   --results DIR   where each configuration's JUnit report, e2e log and cluster logs go
#                   (default /var/tmp/veth-xdp-k8s/conformance/<start time>)
#   --docs          also write the report into docs/CONFORMANCE.md (between its markers)
# Exit code: 0 when every configuration came up and every test passed. The cluster's run dir and
# namespace prefix are cluster.sh's (VETH_XDP_K8S_RUN, VETH_XDP_K8S_PREFIX).
#
# A failed `up` names the component and its log; a failed test is listed with the
# configuration's e2e log; every configuration's cluster logs are kept under the results dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

all=(bridge-iptables bridge-nftables veth-xdp-xdp-iptables veth-xdp-tc-iptables veth-xdp-xdp-nftables veth-xdp-tc-nftables)
configs=("${all[@]}")
procs=4 build=true docs=false
results=/var/tmp/veth-xdp-k8s/conformance/$(date -u +%Y%m%dT%H%M%SZ)
cmdline="bash conformance/kubernetes/conformance.sh $*"
while (($#)); do
  case "$1" in
    --configs) IFS=, read -r -a configs <<<"$2"; shift 2 ;;
    --procs) procs=$2; shift 2 ;;
    --no-build) build=false; shift ;;
    --results) results=$2; shift 2 ;;
    --docs) docs=true; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
  esac
done
for c in "${configs[@]}"; do
  [[ " ${all[*]} " == *" $c "* ]] || { echo "conformance.sh: unknown configuration $c (one of: ${all[*]})" >&2; exit 2; }
done
log() { echo "conformance.sh: $*" >&2; }

# The tests: every [sig-network] conformance spec of the release (the DNS ones among them).
focus='\[sig-network\].*\[Conformance\]'
# What this environment cannot provide: lib/skips (REGEX <TAB> reason; see docs/CONFORMANCE.md).
skip=$(grep -v '^#' "$here/lib/skips" | cut -f1 | grep . | paste -sd'|' || true)

if $build; then
  log "build.sh (the cache makes a rebuild quick)"
  bash "$here/build.sh"
  log "hack/build-release.sh (the DaemonSet's image is made from target/dist/veth-xdp)"
  (cd "$repo" && bash hack/build-release.sh --no-deps)
fi

mkdir -p "$results"
log "results: $results"
failed=0
for c in "${configs[@]}"; do
  out=$results/$c
  mkdir -p "$out"
  echo "$cmdline" >"$out/command"
  cni=${c%-*tables}; proxy=${c##*-}
  export VETH_XDP_K8S_WORKERS=2 VETH_XDP_K8S_PROXY_MODE=$proxy VETH_XDP_K8S_LOGS=$out/cluster-logs
  export VETH_XDP_K8S_E2E_PROCS=$procs
  case $cni in
    bridge) export VETH_XDP_K8S_CNI=bridge ;;
    veth-xdp-xdp) export VETH_XDP_K8S_CNI=veth-xdp VETH_XDP_K8S_EGRESS=xdp ;;
    veth-xdp-tc) export VETH_XDP_K8S_CNI=veth-xdp VETH_XDP_K8S_EGRESS=tc ;;
  esac
  log "== $c: cluster.sh up"
  start=$(date +%s)
  if ! bash "$here/cluster.sh" up >"$out/up.log" 2>&1; then
    tail -5 "$out/up.log" >&2
    # The step that failed (cluster.sh names it, its component and its log), not the teardown.
    echo "cluster.sh up failed: $(grep '^cluster.sh: ' "$out/up.log" | grep -v 'down:\|tearing down' | tail -1)" >"$out/error"
    log "== $c: up failed (log: $out/up.log; the cluster's logs: $out/cluster-logs)"
    failed=1
    continue
  fi
  log "== $c: e2e ($procs in parallel; log: $out/e2e.log)"
  e2e_start=$(date +%s)
  rc=0
  bash "$here/cluster.sh" e2e --ginkgo.focus="$focus" ${skip:+--ginkgo.skip="$skip"} \
    --ginkgo.timeout=90m >"$out/e2e.log" 2>&1 || rc=$?
  echo $(($(date +%s) - e2e_start)) >"$out/e2e-wall"
  echo "$rc" >"$out/e2e-rc"
  cp "${VETH_XDP_K8S_RUN:-/run/veth-xdp-k8s}/e2e/junit_01.xml" "$out/" 2>/dev/null || log "== $c: no JUnit report (see $out/e2e.log)"
  # The fast path was taken: each node's uplink counters after the tests.
  if [ "$cni" != bridge ]; then
    for n in w1 w2; do
      echo "$n $(bash "$here/cluster.sh" node $n /opt/cni/bin/veth-xdp stats 2>&1 | grep '^uplink')"
    done >"$out/datapath"
  fi
  bash "$here/cluster.sh" down >"$out/down.log" 2>&1 || { log "== $c: down left something (log: $out/down.log)"; failed=1; }
  echo $(($(date +%s) - start)) >"$out/wall"
  if [ "$rc" = 0 ]; then
    log "== $c: every test passed ($(cat "$out/e2e-wall") s of tests)"
  else
    failed=1
    log "== $c: e2e exit code $rc; failed (log: $out/e2e.log):"
    grep -E '^\s*\[FAIL\] ' "$out/e2e.log" | sed 's/^ */   /' | sort -u >&2 || true
  fi
done

python3 "$here/lib/report.py" "$results/report.md" "$results"
log "report: $results/report.md"
if $docs; then
  python3 - "$repo/docs/CONFORMANCE.md" "$results/report.md" "$(date -u +%Y-%m-%d)" <<'PY'
import sys
doc, report, day = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
text = open(doc).read()
begin, end = "<!-- report: begin -->", "<!-- report: end -->"
head, rest = text.split(begin)
_, tail = rest.split(end)
open(doc, "w").write(f"{head}{begin}\nRun of {day}:\n\n{report}{end}{tail}")
PY
  log "docs/CONFORMANCE.md updated"
fi
exit $failed
