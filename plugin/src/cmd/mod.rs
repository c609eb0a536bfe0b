//! The CNI verbs, one file each, handed to the protocol module as a table
//! ([`VERBS`]). Verbs share only lower modules: `datapath` (the XDP side of
//! every verb), `node` (uplink, MTU, queues) and `policy` (offloads); no verb
//! imports another, except GC, which runs DEL's teardown.

pub mod add;
pub mod check;
pub mod datapath;
pub mod del;
pub mod gc;
pub mod node;
pub mod policy;
pub mod status;

use std::future::Future;

use crate::cni::{CniError, CniResult, Code, Verbs};

/// The plugin's verbs, for `cni::main`.
pub const VERBS: Verbs = Verbs {
    add: |req| on_runtime(add::run(req)),
    del: |req| on_runtime(del::run(req)),
    check: |req| on_runtime(check::run(req)),
    gc: |req| on_runtime(gc::run(req)),
    status: |req| on_runtime(status::run(req)),
};

/// Runs a verb on a current-thread runtime (netlink sockets are bound to the
/// thread's namespace at creation, so everything stays on this thread).
fn on_runtime<T>(verb: impl Future<Output = CniResult<T>>) -> CniResult<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::new(Code::Io, format!("cannot start runtime: {e}")))?
        .block_on(verb)
}

/// Test hook: with the `fault-injection` feature, `VETH_XDP_FAIL_AFTER=<step>`
/// makes ADD fail right after that step, to prove the rollback leaves nothing;
/// with `VETH_XDP_FAIL_MODE=panic` it panics there instead, and with
/// `VETH_XDP_FAIL_MODE=kill` the process SIGKILLs itself there (no undo: what
/// a crash or an OOM kill leaves, for the runtime's DEL or GC to clean).
pub fn fault_point(step: &str) -> CniResult<()> {
    #[cfg(feature = "fault-injection")]
    if std::env::var("VETH_XDP_FAIL_AFTER").as_deref() == Ok(step) {
        match std::env::var("VETH_XDP_FAIL_MODE").as_deref() {
            Ok("panic") => panic!("fault injected after step {step} (panic)"),
            Ok("kill") => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL);
            }
            _ => {}
        }
        return Err(CniError::new(
            Code::Io,
            format!("fault injected after step {step}"),
        ));
    }
    let _ = step;
    Ok(())
}
