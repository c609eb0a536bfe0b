//! The uplink's unicast filter: `bridge fdb add MAC dev UPLINK self permanent`
//! over netlink (RTM_NEWNEIGH, AF_BRIDGE, NTF_SELF, NUD_PERMANENT).

use rtnetlink::packet_route::neighbour::{
    NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::AddressFamily;

use super::{collect_dump, tolerate, Netlink, NlResult};
use crate::mac::{mac_to_string, Mac};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub mac: Mac,
    pub self_flag: bool,
    pub permanent: bool,
}

impl Netlink {
    /// Adds MAC to the uplink's unicast filter; EEXIST is success.
    pub async fn fdb_add_self(&self, uplink: u32, mac: Mac) -> NlResult<()> {
        // add_bridge() sets AF_BRIDGE, the ifindex, NUD_PERMANENT and NDA_LLADDR.
        let result = self
            .handle
            .neighbours()
            .add_bridge(uplink, &mac)
            .flags(NeighbourFlags::Own)
            .execute()
            .await;
        tolerate(result, &[libc::EEXIST], || {
            format!(
                "add fdb {} self permanent on link index {uplink}",
                mac_to_string(&mac)
            )
        })?;
        Ok(())
    }

    /// Removes it; Ok(false) when it was not there.
    pub async fn fdb_del_self(&self, uplink: u32, mac: Mac) -> NlResult<bool> {
        let result = self
            .handle
            .neighbours()
            .del(self_entry(uplink, mac))
            .execute()
            .await;
        tolerate(result, &[libc::ENOENT], || {
            format!(
                "delete fdb {} self on link index {uplink}",
                mac_to_string(&mac)
            )
        })
    }

    /// The fdb entries of one device.
    pub async fn fdb_list(&self, dev: u32) -> NlResult<Vec<FdbEntry>> {
        // A plain ndmsg dump of AF_BRIDGE walks every device's fdb (and its
        // uc/mc address lists, reported as "self permanent"); keep this device's.
        let request = self
            .handle
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute();
        let messages = collect_dump(request, || format!("dump fdb of link index {dev}")).await?;
        Ok(messages
            .iter()
            .filter(|m| m.header.ifindex == dev)
            .filter_map(parse_fdb_entry)
            .collect())
    }
}

/// The RTM_DELNEIGH message for `mac` on the device's own filter (NTF_SELF).
fn self_entry(uplink: u32, mac: Mac) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Bridge;
    message.header.ifindex = uplink;
    message.header.flags = NeighbourFlags::Own;
    message.header.state = NeighbourState::Permanent;
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    message
}

fn parse_fdb_entry(message: &NeighbourMessage) -> Option<FdbEntry> {
    let mac = message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            NeighbourAttribute::LinkLayerAddress(bytes) => <Mac>::try_from(bytes.as_slice()).ok(),
            _ => None,
        })?;
    Some(FdbEntry {
        mac,
        self_flag: message.header.flags.contains(NeighbourFlags::Own),
        permanent: message.header.state == NeighbourState::Permanent,
    })
}
