//! The CNI verbs. Each file is one verb; shared node-side helpers live here.

pub mod add;
pub mod check;
pub mod datapath;
pub mod del;
pub mod gc;
pub mod node;
pub mod policy;
pub mod status;

use crate::cni::error::{CniError, CniResult, Code};
use crate::cni::{version, Request, Verb};

/// Runs the verb on a current-thread runtime (netlink sockets are bound to the
/// thread's namespace at creation, so everything stays on this thread).
pub fn dispatch(req: &Request) -> CniResult<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::new(Code::Io, format!("cannot start runtime: {e}")))?;
    rt.block_on(async {
        match req.verb {
            Verb::Add => add::run(req).await,
            Verb::Del => del::run(req).await.map(|()| String::new()),
            Verb::Check => check::run(req).await.map(|()| String::new()),
            Verb::Gc => gc::run(req).await.map(|()| String::new()),
            Verb::Status => status::run(req).await.map(|()| String::new()),
            Verb::Version => Ok(version::version_reply(&req.conf.cni_version)),
        }
    })
}

/// Test hook: with the `fault-injection` feature, `VETH_XDP_FAIL_AFTER=<step>`
/// makes ADD fail right after that step, to prove the rollback leaves nothing.
pub fn fault_point(step: &str) -> CniResult<()> {
    #[cfg(feature = "fault-injection")]
    if std::env::var("VETH_XDP_FAIL_AFTER").as_deref() == Ok(step) {
        return Err(CniError::new(
            Code::Io,
            format!("fault injected after step {step}"),
        ));
    }
    let _ = step;
    Ok(())
}
