/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TCP/UDP 5-tuple of a frame (IPv4 with options, IPv6 without extension
 * headers), addresses as 16 bytes (IPv4 as ::ffff:a.b.c.d), for the flow map.
 * Frames without ports (other protocols, IPv4 fragments past the first,
 * IPv6 behind extension headers) have no tuple: they are never looked up.
 */
#ifndef VX_L4_H
#define VX_L4_H

#include <linux/ip.h>
#include <linux/in.h>
#include "nd.h"

struct vx_tuple {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
};

/* IPv4 fragment offset bits of iphdr.frag_off (flags masked out). */
#define VX_IP_OFFSET 0x1fff

static __always_inline void vx_v4_mapped(__u8 *out, __be32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

static __always_inline int vx_is_tcp_udp(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

static __always_inline int vx_tuple_v4(const struct vx_pkt *pkt, struct vx_tuple *t)
{
	struct iphdr *ip = vx_hdr(pkt, VX_ETH_HLEN, sizeof(struct iphdr));
	__be16 *ports;
	__u32 ihl;

	if (!ip || !vx_is_tcp_udp(ip->protocol) || (ip->frag_off & bpf_htons(VX_IP_OFFSET)))
		return 0;
	ihl = ip->ihl * 4;
	if (ihl < sizeof(struct iphdr))
		return 0;
	ports = vx_hdr(pkt, VX_ETH_HLEN + ihl, 4);
	if (!ports)
		return 0;
	vx_v4_mapped(t->src, ip->saddr);
	vx_v4_mapped(t->dst, ip->daddr);
	t->sport = ports[0];
	t->dport = ports[1];
	t->proto = ip->protocol;
	return 1;
}

static __always_inline int vx_tuple_v6(const struct vx_pkt *pkt, struct vx_tuple *t)
{
	struct ipv6hdr *ip6 = vx_ip6_hdr(pkt);
	__be16 *ports;

	if (!ip6 || !vx_is_tcp_udp(ip6->nexthdr))
		return 0;
	ports = vx_hdr(pkt, VX_ETH_HLEN + VX_IPV6_HLEN, 4);
	if (!ports)
		return 0;
	__builtin_memcpy(t->src, &ip6->saddr, 16);
	__builtin_memcpy(t->dst, &ip6->daddr, 16);
	t->sport = ports[0];
	t->dport = ports[1];
	t->proto = ip6->nexthdr;
	return 1;
}

/* Fills *t for a TCP/UDP frame of ethertype proto; 0 if it has no tuple. */
static __always_inline int vx_tuple(const struct vx_pkt *pkt, __be16 proto, struct vx_tuple *t)
{
	if (proto == bpf_htons(ETH_P_IP))
		return vx_tuple_v4(pkt, t);
	if (proto == bpf_htons(ETH_P_IPV6))
		return vx_tuple_v6(pkt, t);
	return 0;
}

#endif /* VX_L4_H */
