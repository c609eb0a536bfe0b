#!/usr/bin/env bash
# The benchmark in one command: installs what it needs, builds release
# (veth-xdp and vx-bench), runs every column and writes the markdown table,
# JSON and PNG charts to bench-out/ (or --out DIR).
#   hack/bench.sh            full run (< 15 min)
#   hack/bench.sh --quick    short windows, fewer pods (< 3 min)
# Extra arguments go to vx-bench (see `vx-bench --help`). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $(id -u) == 0 ]] || { echo "bench: needs root (namespaces, XDP)" >&2; exit 1; }
bash hack/setup-deps.sh
cargo build --release -p vx-bench
# The plugin is built too when the workspace has it; the bench reports its
# columns as n/a (with the reason) when it is missing or its ADD fails.
cargo build --release -p veth-xdp || echo "bench: veth-xdp did not build; its columns will show n/a" >&2
exec ./target/release/vx-bench "$@"
