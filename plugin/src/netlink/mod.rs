//! rtnetlink operations, one socket per network namespace.
//!
//! Every function names the operation and the object in its error, and carries
//! the kernel errno so callers can treat EEXIST / ENOENT by name.
//! Submodules: `link` (veth, get, delete, up, MTU), `addr` (addresses),
//! `route` (routes), `fdb` (uplink unicast filter), `xdp` (IFLA_XDP).

pub mod addr;
pub mod fdb;
pub mod link;
pub mod ndproxy;
pub mod route;
pub mod xdp;

use std::path::Path;

use rtnetlink::Handle;

pub use addr::*;
pub use fdb::*;
pub use link::*;
pub use route::*;
pub use xdp::*;

/// A MAC address.
pub type Mac = [u8; 6];

/// A failed netlink operation: what was tried, on what, and the errno if the kernel gave one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op}: {msg}")]
pub struct NlError {
    /// e.g. "create veth vx1234 (peer eth0)"
    pub op: String,
    /// positive errno (libc::EEXIST, ...) when the kernel answered with one
    pub errno: Option<i32>,
    pub msg: String,
}

impl NlError {
    pub fn is(&self, errno: i32) -> bool {
        self.errno == Some(errno)
    }
}

pub type NlResult<T> = std::result::Result<T, NlError>;

/// The errno behind an anyhow error from `with_netns` (a nix or io error at its root).
fn anyhow_errno(e: &anyhow::Error) -> Option<i32> {
    let root = e.root_cause();
    root.downcast_ref::<nix::errno::Errno>()
        .map(|errno| *errno as i32)
        .or_else(|| {
            root.downcast_ref::<std::io::Error>()
                .and_then(|io| io.raw_os_error())
        })
}

/// The positive errno of a kernel NACK (`ErrorMessage.code` is the negative errno).
pub fn kernel_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|code| -code.get()),
        _ => None,
    }
}

/// Wraps an rtnetlink error with the operation and object it was about.
pub(crate) fn nl_error(op: impl Into<String>, err: rtnetlink::Error) -> NlError {
    let errno = kernel_errno(&err);
    let msg = match errno {
        // "File exists (os error 17)"
        Some(errno) => std::io::Error::from_raw_os_error(errno).to_string(),
        None => err.to_string(),
    };
    NlError {
        op: op.into(),
        errno,
        msg,
    }
}

/// Turns a result whose kernel errno is in `tolerated` into `Ok(false)`, success into `Ok(true)`.
pub(crate) fn tolerate(
    result: Result<(), rtnetlink::Error>,
    tolerated: &[i32],
    op: impl FnOnce() -> String,
) -> NlResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if kernel_errno(&e).is_some_and(|errno| tolerated.contains(&errno)) => Ok(false),
        Err(e) => Err(nl_error(op(), e)),
    }
}

/// Collects a dump stream into a Vec, naming the operation on failure.
pub(crate) async fn collect_dump<T>(
    stream: impl futures::Stream<Item = Result<T, rtnetlink::Error>>,
    op: impl FnOnce() -> String,
) -> NlResult<Vec<T>> {
    use futures::TryStreamExt;
    stream.try_collect().await.map_err(|e| nl_error(op(), e))
}

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
                errno: anyhow_errno(&e),
                msg: format!("{e:#}"),
            })?;
        Self::spawn(opened, &format!("netns {shown}"))
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

/// Formats a MAC as aa:bb:cc:dd:ee:ff.
pub fn mac_to_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses aa:bb:cc:dd:ee:ff (case-insensitive; '-' accepted as separator).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}
