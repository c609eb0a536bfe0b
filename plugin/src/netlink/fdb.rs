//! The uplink's unicast filter: `bridge fdb add MAC dev UPLINK self permanent`
//! over netlink (RTM_NEWNEIGH, AF_BRIDGE, NTF_SELF, NUD_PERMANENT).

use super::{Mac, Netlink, NlResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub mac: Mac,
    pub self_flag: bool,
    pub permanent: bool,
}

impl Netlink {
    /// Adds MAC to the uplink's unicast filter; EEXIST is success.
    pub async fn fdb_add_self(&self, uplink: u32, mac: Mac) -> NlResult<()> {
        let _ = (uplink, mac);
        todo!("netlink helper")
    }

    /// Removes it; Ok(false) when it was not there.
    pub async fn fdb_del_self(&self, uplink: u32, mac: Mac) -> NlResult<bool> {
        let _ = (uplink, mac);
        todo!("netlink helper")
    }

    /// The fdb entries of one device.
    pub async fn fdb_list(&self, dev: u32) -> NlResult<Vec<FdbEntry>> {
        let _ = dev;
        todo!("netlink helper")
    }
}
