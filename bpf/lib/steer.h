/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where a frame goes, decided once for every hook:
 * - vx_steer_uplink: frames from the wire (uplink XDP);
 * - vx_steer_host:   frames a pod sends (host veth XDP or tc).
 */
#ifndef VX_STEER_H
#define VX_STEER_H

#include "arp.h"
#include "flows.h"
#include "nd.h"
#include "spoof.h"
#include "verdict.h"
#include "vx_maps.h"

static __always_inline struct vx_pod *vx_pod_by_mac(const __u8 *mac)
{
	struct vx_mac_key key;

	vx_mac_key_from(&key, mac);
	return bpf_map_lookup_elem(&vx_pod_mac, &key);
}

/* The pod an ARP request asks for, or NULL. *tpa receives the target IP. */
static __always_inline struct vx_pod *vx_arp_request_pod(const struct vx_pkt *pkt, __u32 *tpa)
{
	struct vx_arp *arp = vx_arp_hdr(pkt);

	if (!arp || !vx_arp_is_request(arp))
		return NULL;
	*tpa = vx_arp_ip(arp->tpa);
	return bpf_map_lookup_elem(&vx_pod_v4, tpa);
}

/* A frame from the wire to `pod` belongs to a flow the stack must see (it
 * NATed or delivered it): the reverse NAT happens there. */
static __always_inline int vx_flow_to_pod(const struct vx_pkt *pkt, __be16 proto,
					  const struct vx_pod *pod)
{
	struct vx_flow_key k;
	struct vx_tuple t;

	if (!(pod->flags & VX_POD_STACK_FLOWS) || !vx_tuple(pkt, proto, &t))
		return 0;
	vx_flow_key_of(&k, &t, 0);
	return vx_flow_known(&k);
}

/* Frames from the wire: to a pod by unicast MAC, ARP request or NS target;
 * anything else (including tagged and truncated frames) is the node's. A
 * frame of a flow the stack must see goes to the stack, readdressed to the
 * uplink. */
static __always_inline struct vx_verdict vx_steer_uplink(const struct vx_pkt *pkt)
{
	struct ethhdr *eth = vx_eth(pkt);
	struct vx_in6_key target;
	struct vx_pod *pod = NULL;
	__u32 tpa;

	if (!eth || vx_is_vlan(eth->h_proto))
		return vx_verdict(VX_PASS, VX_UPLINK_SLOT);
	if (!vx_mac_is_multicast(eth->h_dest)) {
		pod = vx_pod_by_mac(eth->h_dest);
		if (pod && vx_flow_to_pod(pkt, eth->h_proto, pod)) {
			struct vx_config cfg = vx_config_get();

			return vx_verdict_to_stack(VX_TO_STACK_NAT, VX_UPLINK_SLOT, cfg.uplink_mac);
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_ARP))
		pod = vx_arp_request_pod(pkt, &tpa);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6) && vx_ns_target(pkt, &target))
		pod = bpf_map_lookup_elem(&vx_pod_v6, &target);
	if (pod)
		return vx_verdict_to_pod(VX_UPLINK_SLOT, pod);
	return vx_verdict(VX_PASS, VX_UPLINK_SLOT);
}

/* Broadcast/multicast from pod `me`: ARP/NS for a node address → node, for
 * a local pod → that pod; everything else → the wire. */
static __always_inline struct vx_verdict vx_steer_host_multicast(const struct vx_pkt *pkt,
								  __be16 proto, __u32 me)
{
	struct vx_in6_key target;
	struct vx_pod *pod;
	__u32 tpa = 0;

	if (proto == bpf_htons(ETH_P_ARP)) {
		pod = vx_arp_request_pod(pkt, &tpa);
		if (pod)
			return vx_verdict_to_pod(me, pod);
		if (tpa && bpf_map_lookup_elem(&vx_node_v4, &tpa))
			return vx_verdict(VX_PASS_NODE, me);
	} else if (proto == bpf_htons(ETH_P_IPV6) && vx_ns_target(pkt, &target)) {
		pod = bpf_map_lookup_elem(&vx_pod_v6, &target);
		if (pod)
			return vx_verdict_to_pod(me, pod);
		if (bpf_map_lookup_elem(&vx_node_v6, &target))
			return vx_verdict(VX_PASS_NODE, me);
	}
	return vx_verdict(VX_TO_UPLINK, me);
}

/* Why pod `me`'s unicast frame must go to the stack (0: it need not): it is
 * for a service, or its flow is one the stack NATed or delivered. Nothing
 * to do on networks without service ranges. */
static __always_inline __u32 vx_host_to_stack(const struct vx_pkt *pkt, __be16 proto,
					      struct vx_pod *me)
{
	struct vx_config cfg = vx_config_get();
	struct vx_flow_key k;
	struct vx_tuple t;

	if (!(cfg.flags & VX_CFG_SERVICES))
		return 0;
	if (vx_to_service(pkt, proto)) {
		/* Remember the pod's side: the backend, not known yet, answers it. */
		if (vx_tuple(pkt, proto, &t)) {
			vx_flow_key_of(&k, &t, 1);
			__builtin_memset(k.peer_ip, 0, 16);
			k.peer_port = 0;
			vx_flow_remember(&k, VX_FLOW_SERVICE, me);
		}
		return VX_TO_STACK_SERVICE;
	}
	if ((me->flags & VX_POD_STACK_FLOWS) && vx_tuple(pkt, proto, &t)) {
		vx_flow_key_of(&k, &t, 1);
		if (bpf_map_lookup_elem(&vx_flows, &k))
			return VX_TO_STACK_NAT;
	}
	return 0;
}

/* Frames a pod sends (pkt->ifindex is its host veth). */
static __always_inline struct vx_verdict vx_steer_host(const struct vx_pkt *pkt)
{
	__u32 ifindex = pkt->ifindex;
	struct vx_pod *me, *pod;
	struct ethhdr *eth;
	__u32 src, slot, stack;

	/* A host veth without a pod record (its entries not inserted yet, or
	 * already removed) has no legitimate sender: counted on slot 0. */
	me = bpf_map_lookup_elem(&vx_pod_if, &ifindex);
	if (!me)
		return vx_verdict(VX_DROP_NO_POD, VX_UPLINK_SLOT);
	slot = me->slot;
	eth = vx_eth(pkt);
	if (!eth)
		return vx_verdict(VX_DROP_MALFORMED, slot);
	src = vx_check_source(pkt, eth, me);
	if (src != VX_PASS)
		return vx_verdict(src, slot);

	if (vx_mac_is_multicast(eth->h_dest))
		return vx_steer_host_multicast(pkt, eth->h_proto, slot);
	if (vx_mac_eq(eth->h_dest, me->host_mac))
		return vx_verdict(VX_PASS_NODE, slot);
	stack = vx_host_to_stack(pkt, eth->h_proto, me);
	if (stack)
		return vx_verdict_to_stack(stack, slot, me->host_mac);
	pod = vx_pod_by_mac(eth->h_dest);
	if (pod)
		return vx_verdict_to_pod(slot, pod);
	return vx_verdict(VX_TO_UPLINK, slot);
}

/* A frame the stack hands to a pod (host veth tc egress): remember its flow,
 * so the pod's answers go back through the stack. Frames our own tc program
 * redirected pod -> pod carry VX_MARK_POD_REDIRECT and are not the stack's. */
static __always_inline void vx_track_from_stack(const struct vx_pkt *pkt)
{
	struct vx_config cfg = vx_config_get();
	__u32 ifindex = pkt->ifindex;
	struct vx_flow_key k;
	struct ethhdr *eth;
	struct vx_tuple t;
	struct vx_pod *me;

	if (!(cfg.flags & VX_CFG_SERVICES))
		return;
	me = bpf_map_lookup_elem(&vx_pod_if, &ifindex);
	eth = vx_eth(pkt);
	if (!me || !eth || !vx_tuple(pkt, eth->h_proto, &t))
		return;
	vx_flow_key_of(&k, &t, 0);
	vx_flow_remember(&k, VX_FLOW_FROM_STACK, me);
}

#endif /* VX_STEER_H */
