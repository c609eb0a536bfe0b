//! The node's own addresses (`vx_node_v4` / `vx_node_v6`): ARP requests and
//! neighbour solicitations from pods for these go to the node (XDP_PASS).

use std::collections::HashSet;
use std::net::IpAddr;

use super::error::{Error, Result};
use super::maps::{remove_quiet, Maps};
use super::pods::v4_key;
use super::spec::{MAP_NODE_V4, MAP_NODE_V6};
use super::types::{VxIn6Key, VxNodeAddr};

impl Maps {
    /// Replaces the set of node addresses.
    pub fn set_node_addrs(&mut self, addrs: &[IpAddr]) -> Result<()> {
        let want4: HashSet<u32> = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(v4) => Some(v4_key(v4)),
                IpAddr::V6(_) => None,
            })
            .collect();
        let want6: HashSet<[u8; 16]> = addrs
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(v6) => Some(v6.octets()),
                IpAddr::V4(_) => None,
            })
            .collect();

        let old4: Vec<u32> = self
            .node_v4
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| !want4.contains(k))
            .collect();
        for k in old4 {
            remove_quiet(&mut self.node_v4, &k, MAP_NODE_V4)?;
        }
        for k in want4 {
            self.node_v4
                .insert(k, VxNodeAddr::default(), 0)
                .map_err(|error| insert_error(MAP_NODE_V4, error))?;
        }
        let old6: Vec<VxIn6Key> = self
            .node_v6
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| !want6.contains(&k.addr))
            .collect();
        for k in old6 {
            remove_quiet(&mut self.node_v6, &k, MAP_NODE_V6)?;
        }
        for addr in want6 {
            self.node_v6
                .insert(VxIn6Key { addr }, VxNodeAddr::default(), 0)
                .map_err(|error| insert_error(MAP_NODE_V6, error))?;
        }
        Ok(())
    }
}

fn insert_error(map: &'static str, error: aya::maps::MapError) -> Error {
    Error::Map {
        op: "insert (bpf_map_update_elem) into",
        map,
        error: Box::new(error),
    }
}
