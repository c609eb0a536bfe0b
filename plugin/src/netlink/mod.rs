//! rtnetlink operations, one socket per network namespace.
//!
//! Every function names the operation and the object in its error, and carries
//! the kernel errno so callers can treat EEXIST / ENOENT by name.
//! Submodules: `link` (veth, get, delete, up, MTU), `addr` (addresses),
//! `route` (routes), `fdb` (uplink unicast filter), `xdp` (IFLA_XDP).

pub mod addr;
mod error;
pub mod fdb;
pub mod link;
pub mod ndproxy;
pub mod route;
pub mod xdp;

use std::path::Path;

use rtnetlink::Handle;

pub use addr::*;
pub(crate) use error::{collect_dump, nl_error, tolerate};
pub use error::{kernel_errno, NlError, NlResult};
pub use fdb::*;
pub use link::*;
pub use route::*;
pub use xdp::*;

/// An rtnetlink socket bound to one network namespace. Create it inside a tokio
/// runtime (the connection task is spawned on the current runtime).
pub struct Netlink {
    pub(crate) handle: Handle,
}

impl Netlink {
    /// A socket in the calling thread's current namespace.
    pub fn current() -> NlResult<Self> {
        Self::spawn(rtnetlink::new_connection(), "current netns")
    }

    /// A socket in the namespace at `path` (entered on this thread only while the socket is made).
    pub fn in_netns(path: &Path) -> NlResult<Self> {
        let shown = path.display().to_string();
        let opened =
            crate::netns::with_netns(path, rtnetlink::new_connection).map_err(|e| NlError {
                op: format!("open rtnetlink socket in netns {shown}"),
                errno: e.errno(),
                msg: e.to_string(),
            })?;
        Self::spawn(opened, &format!("netns {shown}"))
    }

    /// A socket in the current namespace with NETLINK_GET_STRICT_CHK (4.20):
    /// the kernel then honours the filters of a dump request (an address dump
    /// of one link returns only that link's addresses, instead of every
    /// address of the node for us to filter: a node with kube-proxy in IPVS
    /// mode carries one per Service). Kept apart from the general socket,
    /// since strict checking refuses dump requests with stray header fields.
    pub fn current_strict() -> NlResult<Self> {
        use rtnetlink::sys::AsyncSocket;
        let op = || "open rtnetlink socket with NETLINK_GET_STRICT_CHK".to_string();
        let fail = |e: std::io::Error| NlError {
            op: op(),
            errno: e.raw_os_error(),
            msg: e.to_string(),
        };
        let (mut connection, handle, _) = rtnetlink::new_connection().map_err(fail)?;
        connection
            .socket_mut()
            .socket_ref()
            .set_netlink_get_strict_chk(true)
            .map_err(fail)?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// Spawns the connection task on the current tokio runtime and keeps the handle.
    fn spawn<C, M>(opened: std::io::Result<(C, Handle, M)>, netns: &str) -> NlResult<Self>
    where
        C: std::future::Future<Output = ()> + Send + 'static,
    {
        let (connection, handle, _) = opened.map_err(|e| NlError {
            op: format!("open rtnetlink socket in {netns}"),
            errno: e.raw_os_error(),
            msg: e.to_string(),
        })?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}
