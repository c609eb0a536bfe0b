//! Interface addresses.

use ipnetwork::IpNetwork;

use super::{Netlink, NlResult};

impl Netlink {
    /// Adds an address; an identical existing address is not an error.
    pub async fn addr_add(&self, index: u32, addr: IpNetwork) -> NlResult<()> {
        let _ = (index, addr);
        todo!("netlink helper")
    }

    /// Addresses on one link (global and link-local).
    pub async fn addr_list(&self, index: u32) -> NlResult<Vec<IpNetwork>> {
        let _ = index;
        todo!("netlink helper")
    }

    /// Every address in the namespace, with its link index.
    pub async fn addr_list_all(&self) -> NlResult<Vec<(u32, IpNetwork)>> {
        todo!("netlink helper")
    }
}
