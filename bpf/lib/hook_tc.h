/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tc side of the hooks (sched_cls at the host veth's ingress = pod egress):
 * a verdict becomes TC_ACT_OK / TC_ACT_SHOT / bpf_redirect of the skb.
 */
#ifndef VX_HOOK_TC_H
#define VX_HOOK_TC_H

#include <linux/pkt_cls.h>
#include "config.h"
#include "counters.h"
#include "steer.h"
#include "verdict.h"

/* Marks an skb our tc program redirects pod -> pod, for the target host
 * veth's egress program (vx_track_from_stack) to tell it from the stack's:
 * set right before bpf_redirect, cleared there, scrubbed anyway when the skb
 * crosses into the pod's namespace. No frame from a pod carries a mark
 * (veth_xmit scrubs it), so the value is ours alone. */
#define VX_MARK_POD_REDIRECT 0x56580001 /* "VX" 1 */
/* linux/if_packet.h */
#define VX_PACKET_HOST 0

static __always_inline int vx_tc_host_apply(struct __sk_buff *skb, const struct vx_pkt *pkt,
					    struct vx_verdict v)
{
	__u32 me = v.src_slot;
	struct vx_config cfg;

	if (vx_is_drop(v.kind)) {
		vx_count_local(&v, pkt->len);
		return TC_ACT_SHOT;
	}
	switch (v.kind) {
	case VX_TO_POD:
		vx_count(me, VX_CNT_TX_POD, pkt->len);
		vx_count(v.slot, VX_CNT_RX_REDIRECT, pkt->len);
		skb->mark = VX_MARK_POD_REDIRECT;
		return bpf_redirect(v.ifindex, 0);
	case VX_TO_UPLINK:
		cfg = vx_config_get();
		if (!cfg.uplink_ifindex) {
			/* No uplink configured yet: the stack, counted as a failure. */
			vx_count(me, VX_CNT_REDIRECT_FAIL, pkt->len);
			return TC_ACT_OK;
		}
		vx_count(me, VX_CNT_TX_UPLINK, pkt->len);
		return bpf_redirect(cfg.uplink_ifindex, 0);
	default:
		if (vx_is_to_stack(v.kind)) {
			/* A helper, not a direct write: a program that writes packet
			 * data directly gets a verifier prologue that unclones every
			 * cloned skb it sees (bpf_skb_pull_data), which cost the tc
			 * fast path a quarter of its rate. eth_type_trans ran before
			 * tc: the new destination MAC alone would leave the skb
			 * PACKET_OTHERHOST, which ip_rcv drops. */
			bpf_skb_store_bytes(skb, 0, v.to_mac, 6, 0);
			bpf_skb_change_type(skb, VX_PACKET_HOST);
		}
		vx_count_local(&v, pkt->len);
		return TC_ACT_OK;
	}
}

/* linux/if_packet.h */
#define VX_PACKET_OTHERHOST 3

/*
 * tcx ingress after an XDP program that readdressed a frame to this device
 * (veth in the skb path: the uplink when it is a veth, host veths in egress
 * mode xdp). veth_xdp_rcv_skb re-runs eth_type_trans after XDP_PASS, but
 * eth_type_trans only ever lowers pkt_type: the PACKET_OTHERHOST of the first
 * pass (__dev_forward_skb, when the frame was for another MAC) survives the
 * new destination MAC, and ip_rcv drops the frame (seen on 6.18; generic
 * XDP, netif_receive_generic_xdp, resets pkt_type itself, and a native
 * driver builds the skb after XDP). So: a frame for this device's own MAC
 * that the skb calls someone else's becomes PACKET_HOST. Nothing else.
 */
static __always_inline int vx_tc_readdressed_apply(struct __sk_buff *skb, const struct vx_pkt *pkt)
{
	struct vx_config cfg = vx_config_get();
	__u32 ifindex = pkt->ifindex;
	struct ethhdr *eth = vx_eth(pkt);
	const __u8 *own = NULL;
	struct vx_pod *me;

	if (!eth || skb->pkt_type != VX_PACKET_OTHERHOST)
		return TC_ACT_OK;
	if (ifindex == cfg.uplink_ifindex) {
		own = cfg.uplink_mac;
	} else {
		me = bpf_map_lookup_elem(&vx_pod_if, &ifindex);
		if (me)
			own = me->host_mac;
	}
	if (own && vx_mac_eq(eth->h_dest, own))
		bpf_skb_change_type(skb, VX_PACKET_HOST);
	return TC_ACT_OK;
}

/* Host veth tc egress (stack -> pod): remember the flows the stack delivers. */
static __always_inline int vx_tc_egress_apply(struct __sk_buff *skb, const struct vx_pkt *pkt)
{
	if (skb->mark == VX_MARK_POD_REDIRECT)
		skb->mark = 0;
	else
		vx_track_from_stack(pkt);
	return TC_ACT_OK;
}

#endif /* VX_HOOK_TC_H */
