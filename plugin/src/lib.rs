//! veth-xdp: a CNI plugin that gives every pod a veth pair built for native XDP.
//!
//! Module map (one concept each; see docs/ARCHITECTURE.md):
//! - `cni`      the CNI protocol: env + stdin in, result or error JSON out
//! - `cmd`      the verbs: ADD, DEL, CHECK, GC, STATUS
//! - `netlink`  rtnetlink link/addr/route/fdb/xdp operations
//! - `ethtool`  offload features and channels (ethtool genetlink)
//! - `ethtool_stats` driver statistics (ethtool -S) over SIOCETHTOOL: the drops a veth hides
//! - `kernel`   kernel version probing
//! - `genl`     generic-netlink sockets and their error (ethtool, netdev)
//! - `netdev`   xdp-features (netdev genetlink)
//! - `bpf`      the embedded XDP/tc object: node setup, pins, maps, attach
//! - `ipam`     a verb's IPAM: delegation to the plugin on CNI_PATH, or the built-in one
//! - `ipam_lease` the built-in IPAM's leases: the attachment records, under its lock
//! - `ipam_pool` the built-in IPAM's configuration and choice of addresses
//! - `k8s`      the node agent's API client: the node's pod CIDRs, the cluster's ServiceCIDRs
//! - `record`   per-attachment records on disk
//! - `events`   one JSON line per verb for the node agent's metrics (when it runs)
//! - `atomic`   files replaced atomically (records, the installed binary and conflist)
//! - `rollback` the undo stack of a failing ADD
//! - `lock`     exclusive flocks on directories (node lock, pod slots, GC)
//! - `naming`   host veth names and pod MACs
//! - `netns`    namespace paths and entering them
//! - `logging`  the file logger
//! - `stats`    attachments with their counters, read once (for `veth-xdp stats` and /metrics)
//! - `install`  the node installer: conflist template, binary copy, node datapath, host paths
//! - `agent`    the node agent: reconcile loop, Prometheus metrics, health endpoints
//! - `cli`      operator commands (setup, stats, teardown, install, version; clap)
//! - `mac`, `egress`, `defaults`, `causes`  small shared types, the config defaults, error chains on one line

pub mod agent;
pub mod atomic;
pub mod bpf;
pub mod causes;
pub mod cli;
pub mod cmd;
pub mod cni;
pub mod defaults;
pub mod egress;
pub mod ethtool;
pub mod ethtool_stats;
pub mod events;
pub mod genl;
pub mod install;
pub mod ipam;
pub mod ipam_lease;
pub mod ipam_pool;
pub mod k8s;
pub mod kernel;
pub mod lock;
pub mod logging;
pub mod mac;
pub mod naming;
pub mod netdev;
pub mod netlink;
pub mod netns;
pub mod record;
pub mod rollback;
pub mod stats;
pub mod sysctl;
