//! Deterministic names: the host-side veth and the pod MAC.
//!
//! Both derive from (container ID, ifname) alone, so DEL can find them without
//! the record, the netns or prevResult.

use sha2::{Digest, Sha256};

use crate::mac::Mac;

/// Prefix of every host-side veth this plugin makes.
pub const HOST_VETH_PREFIX: &str = "vx";

fn digest(container_id: &str, ifname: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(container_id.as_bytes());
    // ifnames cannot contain '/', so the pair is unambiguous.
    h.update(b"/");
    h.update(ifname.as_bytes());
    h.finalize().into()
}

/// "vx" + 13 hex digits (52 bits of SHA-256): 15 bytes, the kernel's IFNAMSIZ-1.
/// A collision is detected at creation (EEXIST with no record of ours) and
/// reported, never resolved by touching the other pod's link.
pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    let d = digest(container_id, ifname);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("{HOST_VETH_PREFIX}{}", &hex[..13])
}

/// A locally administered unicast MAC, stable for the attachment.
pub fn pod_mac(container_id: &str, ifname: &str) -> Mac {
    let d = digest(container_id, ifname);
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&d[16..22]);
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_stable_distinct() {
        let a = host_veth_name("abc", "eth0");
        assert_eq!(a.len(), 15);
        assert_eq!(a, host_veth_name("abc", "eth0"));
        assert_ne!(a, host_veth_name("abc", "eth1"));
        assert_ne!(host_veth_name("ab", "ceth0"), host_veth_name("abc", "eth0"));
    }

    #[test]
    fn mac_is_local_unicast() {
        let m = pod_mac("abc", "eth0");
        assert_eq!(m[0] & 0x01, 0, "unicast");
        assert_eq!(m[0] & 0x02, 2, "locally administered");
        assert_eq!(m, pod_mac("abc", "eth0"));
    }
}
