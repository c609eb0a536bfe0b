//! Test support shared by every integration test: one module, as the
//! reference plugins have one `pkg/testutils`. Each test file declares
//! `mod support;` and uses the parts it needs.
//!
//! - `cmd`: running commands (`run`, `succeeds`, `sh`, `must`), a temp dir
//!   guard, a tiny XDP object for tests that attach a program of their own.
//! - `ns`: `Netns`, the one throwaway network namespace (unique name, removed
//!   on drop), and unique interface names.
//! - `cni`: the plugin harness: a node namespace wired to a "wire" namespace,
//!   the built binary invoked as a runtime does (CNI env + stdin) through
//!   `nsenter --net=` (never `ip netns exec`, which remounts /sys and hides
//!   bpffs pins); result validation per spec version.
//! - `traces`: everything an attachment can leave on a node, datapath
//!   included; the "nothing left behind" check of ADD rollback, DEL and GC.
//! - `kube`: a real kube-apiserver + etcd in a test namespace (from the conformance build's cache).
//! - `frames`: Ethernet frame builders for BPF_PROG_TEST_RUN.
//! - `lab`: the datapath pinned in a namespace of its own, for the BPF
//!   program tests (BPF_PROG_TEST_RUN wrappers, a standard two-pod lab).
//! - `traffic`: ping, iperf3, TCP/UDP request/response (`echo.py`).
//! - `apiserver`: a fake Kubernetes API server (HTTPS, recorded-shape answers).
//! - `cluster`: three nodes on one bridge with two pods each, a client on
//!   the wire, and kube-proxy's nat rules (`kube_proxy_rules.py`).
//!
//! Set `VETH_XDP_KEEP_TEST_STATE=1` to keep namespaces, directories and pins
//! of a failing test for inspection.

// Each test binary uses only part of the support module.
#![allow(dead_code)]

pub mod apiserver;
pub mod cluster;
pub mod cmd;
pub mod cni;
pub mod frames;
pub mod kube;
pub mod lab;
pub mod ns;
pub mod traces;
pub mod traffic;

use std::sync::atomic::{AtomicU32, Ordering};

/// `vx<tag>-<pid>-<n>`: unique per test (the tag), per test process (the
/// pid, so parallel test binaries never meet) and per call (n).
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("vx{tag}-{}-{n}", std::process::id())
}

/// True (and says so) when `VETH_XDP_KEEP_TEST_STATE` asks to keep `what`.
pub fn keep_state(what: &dyn std::fmt::Display) -> bool {
    let keep = std::env::var_os("VETH_XDP_KEEP_TEST_STATE").is_some();
    if keep {
        eprintln!("keeping {what} (VETH_XDP_KEEP_TEST_STATE)");
    }
    keep
}

/// The current-thread runtime the CNI verbs use.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
