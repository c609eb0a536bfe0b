/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPv6 header access and neighbour solicitation recognition. */
#ifndef VX_ND_H
#define VX_ND_H

#include <linux/ipv6.h>
#include <linux/in.h>
#include "parse.h"

#define VX_IPV6_HLEN 40
#define VX_ICMPV6_NS 135

/* ICMPv6 neighbour solicitation up to its target address (RFC 4861 4.3). */
struct vx_ns {
	__u8 type;
	__u8 code;
	__be16 csum;
	__be32 reserved;
	__u8 target[16];
};

static __always_inline struct ipv6hdr *vx_ip6_hdr(const struct vx_pkt *pkt)
{
	return vx_hdr(pkt, VX_ETH_HLEN, VX_IPV6_HLEN);
}

/*
 * The NS target if the frame is an IPv6 neighbour solicitation whose ICMPv6
 * header directly follows the IPv6 header, else 0. NS never carries extension
 * headers in practice (RFC 4861 messages are link-local and sent without
 * them); a solicitation behind extension headers is simply not steered by
 * target (the uplink passes it to the stack, a pod's goes to the uplink).
 */
static __always_inline int vx_ns_target(const struct vx_pkt *pkt, struct vx_in6_key *target)
{
	struct ipv6hdr *ip6 = vx_ip6_hdr(pkt);
	struct vx_ns *ns;

	if (!ip6 || ip6->nexthdr != IPPROTO_ICMPV6)
		return 0;
	ns = vx_hdr(pkt, VX_ETH_HLEN + VX_IPV6_HLEN, sizeof(struct vx_ns));
	if (!ns || ns->type != VX_ICMPV6_NS || ns->code != 0)
		return 0;
	__builtin_memcpy(target->addr, ns->target, 16);
	return 1;
}

#endif /* VX_ND_H */
