//! rtnetlink operations, one socket per network namespace.
//!
//! Every function names the operation and the object in its error, and carries
//! the kernel errno so callers can treat EEXIST / ENOENT by name.
//! Submodules: `link` (veth, get, delete, up, MTU), `addr` (addresses),
//! `route` (routes), `fdb` (uplink unicast filter), `xdp` (IFLA_XDP).

pub mod addr;
pub mod fdb;
pub mod link;
pub mod route;
pub mod xdp;

use std::net::IpAddr;
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

/// An rtnetlink socket bound to one network namespace. Create it inside a tokio
/// runtime (the connection task is spawned on the current runtime).
pub struct Netlink {
    pub(crate) handle: Handle,
}

impl Netlink {
    /// A socket in the calling thread's current namespace.
    pub fn current() -> NlResult<Self> {
        todo!("netlink helper")
    }

    /// A socket in the namespace at `path` (entered on this thread only while the socket is made).
    pub fn in_netns(path: &Path) -> NlResult<Self> {
        let _ = path;
        todo!("netlink helper")
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Formats a MAC as aa:bb:cc:dd:ee:ff.
pub fn mac_to_string(mac: &Mac) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
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

/// Used by route helpers; re-exported for callers building routes.
pub fn is_ipv4(a: &IpAddr) -> bool {
    a.is_ipv4()
}
