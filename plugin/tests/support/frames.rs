//! Ethernet frame builders for BPF_PROG_TEST_RUN (no checksums: the programs
//! never read them).

use std::net::{Ipv4Addr, Ipv6Addr};

pub const BROADCAST: [u8; 6] = [0xff; 6];
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// IPv4 header (20 bytes) + 8 bytes of UDP + 18 bytes of payload.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 26, 0, 0]);
    p.extend_from_slice(&[0xab; 18]);
    p
}

/// Ethernet/IPv4 ARP (28 bytes).
pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    eth(BROADCAST, sha, ETH_P_ARP, &arp(1, sha, spa, [0; 6], tpa))
}

/// IPv6 header (40 bytes) followed by `payload`.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, nexthdr: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(nexthdr);
    p.push(255);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// Solicited-node multicast address and MAC of `target`.
pub fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let t = target.octets();
    let ip = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let o = ip.octets();
    (ip, [0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// A neighbour solicitation for `target` from `src` (MAC `src_mac`), with
/// the source link-layer address option.
pub fn ns(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let (dst_ip, dst_mac) = solicited_node(target);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&src_mac);
    eth(dst_mac, src_mac, ETH_P_IPV6, &ipv6(src, dst_ip, 58, &icmp))
}

pub fn ipv6_udp(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    eth(
        dst_mac,
        src_mac,
        ETH_P_IPV6,
        &ipv6(src, dst, 17, &[0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0]),
    )
}

pub const ETH_P_MPLS: u16 = 0x8847;
pub const ETH_P_PPPOE_DISC: u16 = 0x8863;

/// IPv4 header (20 bytes) with `proto` and `payload`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A UDP (proto 17) or TCP (6) header with ports and 18 payload bytes
/// (no checksum: the programs never read it; a TCP header is 20 bytes).
pub fn l4(proto: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = sport.to_be_bytes().to_vec();
    p.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        p.extend_from_slice(&[0, 26, 0, 0]);
    }
    p.extend_from_slice(&[0xab; 18]);
    p
}

/// An Ethernet/IPv4 TCP or UDP frame with ports.
#[allow(clippy::too_many_arguments)]
pub fn flow4(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    proto: u8,
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
) -> Vec<u8> {
    eth(
        dst_mac,
        src_mac,
        ETH_P_IP,
        &ipv4(src, dst, proto, &l4(proto, sport, dport)),
    )
}

/// An ICMPv6 message of `icmp_type` (8 bytes of header + 8 bytes), behind
/// a hop-by-hop options header when `hop_by_hop` (as MLD sends it, and as RA
/// guard evasion hides an RA).
pub fn icmpv6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp_type: u8,
    hop_by_hop: bool,
) -> Vec<u8> {
    let icmp = [icmp_type, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let ip = if hop_by_hop {
        // next header ICMPv6, length 0 (8 bytes), router alert + PadN
        let mut ext = vec![58, 0, 5, 2, 0, 0, 1, 0];
        ext.extend_from_slice(&icmp);
        ipv6(src, dst, 0, &ext)
    } else {
        ipv6(src, dst, 58, &icmp)
    };
    eth(dst_mac, src_mac, ETH_P_IPV6, &ip)
}

/// `frame` with an 802.1Q (or 802.1ad) tag inserted after the MACs.
pub fn tagged(frame: &[u8], tpid: u16, vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// The first `len` bytes of `frame`.
pub fn truncated(frame: &[u8], len: usize) -> Vec<u8> {
    frame[..len].to_vec()
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_str(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
