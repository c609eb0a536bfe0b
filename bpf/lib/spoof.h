/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Pod egress anti-spoofing: a frame leaving a pod must carry the pod's MAC
 * and, for IPv4/ARP/IPv6, one of the pod's addresses as its source.
 * Exceptions that cannot impersonate anyone: IPv4 0.0.0.0 (DHCP discover, ARP
 * probes of RFC 5227), IPv6 :: (duplicate address detection) and IPv6
 * link-local sources (the pod derives its own; they never leave the link).
 * Then what the pod may send at all (guard.h): IPv4, IPv6 and ARP, no router
 * frames, unless the pod opted in.
 * Returns VX_PASS when the frame is fine, else the drop kind.
 */
#ifndef VX_SPOOF_H
#define VX_SPOOF_H

#include <linux/ip.h>
#include "arp.h"
#include "guard.h"
#include "nd.h"
#include "verdict.h"
#include "vx_maps.h"

/* IPv4 address ip (network order) may be used by pod `me`: 0.0.0.0, the
 * first address of its record (no map lookup: the common case), or another
 * address the pod map says is its own. */
static __always_inline int vx_v4_owned_by(__u32 ip, const struct vx_pod *me)
{
	struct vx_pod *owner;

	if (ip == 0 || ip == me->ipv4)
		return 1;
	owner = bpf_map_lookup_elem(&vx_pod_v4, &ip);
	return owner && owner->host_ifindex == me->host_ifindex;
}

static __always_inline __u32 vx_check_ipv4_src(const struct vx_pkt *pkt, const struct vx_pod *me)
{
	struct iphdr *ip = vx_hdr(pkt, VX_ETH_HLEN, sizeof(struct iphdr));

	if (!ip)
		return VX_DROP_MALFORMED;
	return vx_v4_owned_by(ip->saddr, me) ? VX_PASS : VX_DROP_SPOOF;
}

static __always_inline __u32 vx_check_arp_src(const struct vx_pkt *pkt, const struct vx_pod *me)
{
	struct vx_arp *arp = vx_arp_hdr(pkt);

	if (!arp)
		return VX_DROP_MALFORMED;
	/* Other hardware/protocol types have no business leaving a pod. */
	if (!vx_arp_is_eth_ipv4(arp) || !vx_mac_eq(arp->sha, me->pod_mac))
		return VX_DROP_SPOOF;
	return vx_v4_owned_by(vx_arp_ip(arp->spa), me) ? VX_PASS : VX_DROP_SPOOF;
}

static __always_inline __u32 vx_check_ipv6_src(const struct vx_pkt *pkt, const struct vx_pod *me)
{
	struct ipv6hdr *ip6 = vx_ip6_hdr(pkt);
	struct vx_in6_key src;
	struct vx_pod *owner;

	if (!ip6)
		return VX_DROP_MALFORMED;
	__builtin_memcpy(src.addr, &ip6->saddr, 16);
	if (!vx_in6_is_unspecified(&src) && !vx_in6_is_link_local(&src)) {
		owner = bpf_map_lookup_elem(&vx_pod_v6, &src);
		if (!owner || owner->host_ifindex != pkt->ifindex)
			return VX_DROP_SPOOF;
	}
	return me->flags & VX_POD_ALLOW_ROUTER ? VX_PASS : vx_guard_ipv6(pkt, ip6);
}

static __always_inline __u32 vx_check_ipv4(const struct vx_pkt *pkt, const struct vx_pod *me)
{
	__u32 src = vx_check_ipv4_src(pkt, me);

	if (src != VX_PASS || (me->flags & VX_POD_ALLOW_ROUTER))
		return src;
	return vx_guard_ipv4(pkt);
}

/* Source and content check of a frame sent by pod `me` (eth already
 * bounds-checked): VX_PASS, or the drop kind. */
static __always_inline __u32 vx_check_source(const struct vx_pkt *pkt, const struct ethhdr *eth,
					     const struct vx_pod *me)
{
	if (!vx_mac_eq(eth->h_source, me->pod_mac))
		return VX_DROP_SPOOF;
	if (pkt->vlan_tag)
		return me->flags & VX_POD_ALLOW_ETHERTYPES ? VX_PASS : VX_DROP_ETHERTYPE;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return vx_check_ipv4(pkt, me);
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return vx_check_arp_src(pkt, me);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return vx_check_ipv6_src(pkt, me);
	/* Anything else (a VLAN tag would also carry an IP header past the
	 * checks above) only with the opt-in. */
	return me->flags & VX_POD_ALLOW_ETHERTYPES ? VX_PASS : VX_DROP_ETHERTYPE;
}

#endif /* VX_SPOOF_H */
