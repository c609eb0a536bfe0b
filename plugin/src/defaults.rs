//! Every default of the network config and the operator commands, defined once.

/// Attachment records (and the GC lock) live here.
pub const STATE_DIR: &str = "/var/lib/veth-xdp";
/// The plugin's log file.
pub const LOG_FILE: &str = "/var/log/veth-xdp.log";
/// Where programs, maps and links are pinned (on bpffs).
pub const BPF_ROOT: &str = "/sys/fs/bpf/veth-xdp";
/// Datapath map capacity in pods.
pub const MAX_PODS: u32 = 1024;
