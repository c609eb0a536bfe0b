/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flows the node's stack must see both ways (design: docs/ARCHITECTURE.md,
 * "Services"). kube-proxy's NAT lives in conntrack: a reply redirected past
 * the stack skips the reverse NAT and the connection breaks. So:
 * - a pod's frame to a service address is handed to the stack, and the pod's
 *   side of the flow (its address and port, any peer) is remembered;
 * - every frame the stack delivers to a pod (host veth tc egress) remembers
 *   the flow exactly (pod side and peer side);
 * - a frame to a pod (from the wire) or from a pod whose flow is remembered
 *   goes to the stack instead of the fast path.
 * A pod gets VX_POD_STACK_FLOWS once a flow of it is remembered; pods that
 * never touched the stack pay one flag test per frame, nothing more.
 */
#ifndef VX_FLOWS_H
#define VX_FLOWS_H

#include "l4.h"
#include "config.h"
#include "vx_maps.h"

/* The flow seen from the pod: pod_is_src for frames the pod sends. */
static __always_inline void vx_flow_key_of(struct vx_flow_key *k, const struct vx_tuple *t,
					   int pod_is_src)
{
	__builtin_memcpy(k->pod_ip, pod_is_src ? t->src : t->dst, 16);
	__builtin_memcpy(k->peer_ip, pod_is_src ? t->dst : t->src, 16);
	k->pod_port = pod_is_src ? t->sport : t->dport;
	k->peer_port = pod_is_src ? t->dport : t->sport;
	k->proto = t->proto;
	k->pad[0] = 0;
	k->pad[1] = 0;
	k->pad[2] = 0;
}

/* The flow or, failing that, the pod side with any peer is remembered. */
static __always_inline int vx_flow_known(struct vx_flow_key *k)
{
	if (bpf_map_lookup_elem(&vx_flows, k))
		return 1;
	__builtin_memset(k->peer_ip, 0, 16);
	k->peer_port = 0;
	return bpf_map_lookup_elem(&vx_flows, k) != NULL;
}

/* Flags the pod (both records the programs read: by host veth and by MAC). */
static __always_inline void vx_pod_mark_flows(struct vx_pod *me)
{
	struct vx_mac_key key;
	struct vx_pod *by_mac;

	if (me->flags & VX_POD_STACK_FLOWS)
		return;
	me->flags |= VX_POD_STACK_FLOWS;
	vx_mac_key_from(&key, me->pod_mac);
	by_mac = bpf_map_lookup_elem(&vx_pod_mac, &key);
	if (by_mac)
		by_mac->flags |= VX_POD_STACK_FLOWS;
}

static __always_inline void vx_flow_remember(const struct vx_flow_key *k, __u32 reason,
					     struct vx_pod *me)
{
	struct vx_flow v = { .reason = reason };

	if (!bpf_map_lookup_elem(&vx_flows, k))
		bpf_map_update_elem(&vx_flows, k, &v, BPF_ANY);
	vx_pod_mark_flows(me);
}

static __always_inline int vx_prefix_match(const struct vx_prefix *p, const __u32 *a, int words)
{
	int i;

	if (!p->prefix_len)
		return 0;
#pragma unroll
	for (i = 0; i < 4; i++)
		if (i < words && (a[i] & p->mask[i]) != p->addr[i])
			return 0;
	return 1;
}

/* The frame's IPv4/IPv6 destination is in one of the service ranges. */
static __always_inline int vx_to_service(const struct vx_pkt *pkt, __be16 proto)
{
	struct vx_services *svc;
	struct ipv6hdr *ip6;
	struct iphdr *ip;
	__u32 key = 0, a4;
	int i;

	svc = bpf_map_lookup_elem(&vx_services, &key);
	if (!svc)
		return 0;
	if (proto == bpf_htons(ETH_P_IP)) {
		ip = vx_hdr(pkt, VX_ETH_HLEN, sizeof(struct iphdr));
		if (!ip)
			return 0;
		a4 = ip->daddr;
#pragma unroll
		for (i = 0; i < VX_MAX_SERVICE_CIDRS; i++)
			if (vx_prefix_match(&svc->v4[i], &a4, 1))
				return 1;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = vx_ip6_hdr(pkt);
		if (!ip6)
			return 0;
#pragma unroll
		for (i = 0; i < VX_MAX_SERVICE_CIDRS; i++)
			if (vx_prefix_match(&svc->v6[i], ip6->daddr.in6_u.u6_addr32, 4))
				return 1;
	}
	return 0;
}

#endif /* VX_FLOWS_H */
