/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Where a frame goes, decided once for every hook:
 * - vx_steer_uplink: frames from the wire (uplink XDP);
 * - vx_steer_host:   frames a pod sends (host veth XDP or tc).
 */
#ifndef VX_STEER_H
#define VX_STEER_H

#include "arp.h"
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

/* Frames from the wire: to a pod by unicast MAC, ARP request or NS target;
 * anything else (including tagged and truncated frames) is the node's. */
static __always_inline struct vx_verdict vx_steer_uplink(const struct vx_pkt *pkt)
{
	struct ethhdr *eth = vx_eth(pkt);
	struct vx_in6_key target;
	struct vx_pod *pod = NULL;
	__u32 tpa;

	if (!eth || vx_is_vlan(eth->h_proto))
		return vx_verdict(VX_PASS, VX_UPLINK_SLOT);
	if (!vx_mac_is_multicast(eth->h_dest))
		pod = vx_pod_by_mac(eth->h_dest);
	else if (eth->h_proto == bpf_htons(ETH_P_ARP))
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
			return vx_verdict(VX_PASS, me);
	} else if (proto == bpf_htons(ETH_P_IPV6) && vx_ns_target(pkt, &target)) {
		pod = bpf_map_lookup_elem(&vx_pod_v6, &target);
		if (pod)
			return vx_verdict_to_pod(me, pod);
		if (bpf_map_lookup_elem(&vx_node_v6, &target))
			return vx_verdict(VX_PASS, me);
	}
	return vx_verdict(VX_TO_UPLINK, me);
}

/* Frames a pod sends (pkt->ifindex is its host veth). */
static __always_inline struct vx_verdict vx_steer_host(const struct vx_pkt *pkt)
{
	__u32 ifindex = pkt->ifindex;
	struct vx_pod *me, *pod;
	struct ethhdr *eth;
	__u32 src, slot;

	/* A host veth without a pod record has no legitimate sender (and no
	 * counters: VX_NO_SLOT). */
	me = bpf_map_lookup_elem(&vx_pod_if, &ifindex);
	if (!me)
		return vx_verdict(VX_DROP_SPOOF, VX_NO_SLOT);
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
		return vx_verdict(VX_PASS, slot);
	pod = vx_pod_by_mac(eth->h_dest);
	if (pod)
		return vx_verdict_to_pod(slot, pod);
	return vx_verdict(VX_TO_UPLINK, slot);
}

#endif /* VX_STEER_H */
