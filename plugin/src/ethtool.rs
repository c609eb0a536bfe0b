//! Offload features and channels over the ethtool genetlink family.
//!
//! The `ethtool` crate reads features and channels; it cannot set features, so
//! FEATURES_SET is one small genetlink message of our own, followed by a re-read
//! that confirms the kernel applied it (it may refuse a "[fixed]" feature or drag
//! dependent features along).
//!
//! Kernel feature names (not the ethtool CLI's aliases): `tx-checksum-ip-generic`,
//! `tx-checksum-sctp`, `tx-vlan-hw-insert`, `rx-vlan-hw-parse`, `rx-gro`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

/// An ethtool genetlink socket bound to one network namespace (devices are named
/// by ifname, which is only unique within a namespace).
pub struct Ethtool {
    _private: (),
}

/// Active state of every feature the device reports, by kernel name.
pub type Features = BTreeMap<String, bool>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    pub rx_max: u32,
    pub tx_max: u32,
    pub combined_max: u32,
    pub rx: u32,
    pub tx: u32,
    pub combined: u32,
}

impl Ethtool {
    /// A socket in the calling thread's namespace (call inside a tokio runtime).
    pub fn current() -> Result<Self> {
        todo!("genl helper")
    }

    /// A socket in the namespace at `path`.
    pub fn in_netns(path: &Path) -> Result<Self> {
        let _ = path;
        todo!("genl helper")
    }

    pub async fn features(&self, ifname: &str) -> Result<Features> {
        let _ = ifname;
        todo!("genl helper")
    }

    /// Sets each listed feature (only those bits change), then re-reads and fails
    /// naming every feature whose active state differs from what was asked.
    pub async fn set_features(&self, ifname: &str, wanted: &[(&str, bool)]) -> Result<()> {
        let _ = (ifname, wanted);
        todo!("genl helper")
    }

    pub async fn channels(&self, ifname: &str) -> Result<Channels> {
        let _ = ifname;
        todo!("genl helper")
    }
}
