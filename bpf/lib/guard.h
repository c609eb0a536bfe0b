/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a pod may put on a shared L2 segment (a pod is untrusted). Without an
 * opt-in (vx_pod.flags, from the network config or a pod annotation):
 * - only IPv4, IPv6 and ARP, untagged: any other ethertype (MPLS, PPPoE, LLDP,
 *   802.1Q/802.1ad tags that would carry an IP header past our checks) is
 *   DROP_ETHERTYPE;
 * - no router frames: IPv6 Router Advertisements and ICMPv6 redirects (a pod
 *   sending RAs could become every host's default router: the
 *   CVE-2020-10749 class), ICMP redirects, DHCP and DHCPv6 server replies:
 *   DROP_ROUTER. The IPv6 extension-header chain is walked (RA guard evasion
 *   hides the ICMPv6 header behind one, RFC 7113); a chain too long to
 *   inspect counts as a router frame.
 */
#ifndef VX_GUARD_H
#define VX_GUARD_H

#include <linux/ip.h>
#include <linux/in.h>
#include "nd.h"
#include "verdict.h"

#define VX_ICMP_REDIRECT 5
#define VX_ICMPV6_RA 134
#define VX_ICMPV6_REDIRECT 137
#define VX_DHCP_SERVER_PORT 67
#define VX_DHCPV6_SERVER_PORT 547
/* Extension headers inspected before giving up, and the furthest L4 offset. */
#define VX_IPV6_EXT_MAX 4
#define VX_L4_OFF_MAX (VX_ETH_HLEN + VX_IPV6_HLEN + 64)

struct vx_ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 id;
};

/* Router frames in IPv4: ICMP redirect, DHCP server (source port 67). */
static __always_inline __u32 vx_guard_ipv4(const struct vx_pkt *pkt)
{
	struct iphdr *ip = vx_hdr(pkt, VX_ETH_HLEN, sizeof(struct iphdr));
	__u8 *l4;
	__u32 ihl;

	if (!ip)
		return VX_DROP_MALFORMED;
	if (ip->protocol != IPPROTO_ICMP && ip->protocol != IPPROTO_UDP)
		return VX_PASS;
	if (ip->frag_off & bpf_htons(0x1fff))
		return VX_PASS; /* not the first fragment: no L4 header */
	ihl = ip->ihl * 4;
	l4 = vx_hdr(pkt, VX_ETH_HLEN + ihl, 2);
	if (ihl < sizeof(struct iphdr) || !l4)
		return VX_DROP_MALFORMED;
	if (ip->protocol == IPPROTO_ICMP)
		return l4[0] == VX_ICMP_REDIRECT ? VX_DROP_ROUTER : VX_PASS;
	return *(__be16 *)l4 == bpf_htons(VX_DHCP_SERVER_PORT) ? VX_DROP_ROUTER : VX_PASS;
}

static __always_inline int vx_ipv6_is_ext(__u8 next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS ||
	       next == IPPROTO_FRAGMENT;
}

/* Router frames in IPv6: RA, redirect, DHCPv6 server (source port 547). */
static __always_inline __u32 vx_guard_ipv6(const struct vx_pkt *pkt, const struct ipv6hdr *ip6)
{
	__u32 off = VX_ETH_HLEN + VX_IPV6_HLEN;
	__u8 next = ip6->nexthdr;
	__u8 *h;
	int i;

#pragma unroll
	for (i = 0; i < VX_IPV6_EXT_MAX; i++) {
		if (!vx_ipv6_is_ext(next))
			break;
		if (next == IPPROTO_FRAGMENT) {
			struct vx_ipv6_frag *frag = vx_hdr(pkt, off, sizeof(*frag));

			if (!frag)
				return VX_DROP_MALFORMED;
			if (frag->frag_off & bpf_htons(0xfff8))
				return VX_PASS; /* not the first fragment: no L4 header */
			next = frag->nexthdr;
			off += sizeof(*frag);
		} else {
			h = vx_hdr(pkt, off, 2);
			if (!h)
				return VX_DROP_MALFORMED;
			next = h[0];
			off += (h[1] + 1) * 8;
		}
		if (off > VX_L4_OFF_MAX)
			return VX_DROP_ROUTER;
	}
	if (vx_ipv6_is_ext(next))
		return VX_DROP_ROUTER;
	if (next != IPPROTO_ICMPV6 && next != IPPROTO_UDP)
		return VX_PASS;
	h = vx_hdr(pkt, off, 2);
	if (!h)
		return VX_DROP_MALFORMED;
	if (next == IPPROTO_ICMPV6)
		return h[0] == VX_ICMPV6_RA || h[0] == VX_ICMPV6_REDIRECT ? VX_DROP_ROUTER : VX_PASS;
	return *(__be16 *)h == bpf_htons(VX_DHCPV6_SERVER_PORT) ? VX_DROP_ROUTER : VX_PASS;
}

#endif /* VX_GUARD_H */
