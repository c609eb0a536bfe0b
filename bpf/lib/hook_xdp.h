/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP side of the hooks: a verdict becomes XDP_PASS / XDP_DROP / a devmap
 * redirect, and is counted. A redirect whose target is missing from the
 * devmap falls back to XDP_PASS (bpf_redirect_map's flags argument) and is
 * counted as a redirect failure: never a silent drop.
 */
#ifndef VX_HOOK_XDP_H
#define VX_HOOK_XDP_H

#include <linux/if_ether.h>
#include "config.h"
#include "counters.h"
#include "verdict.h"

/* Redirects through the devmap entry `key`; counts a failure on src_slot. */
static __always_inline int vx_xdp_redirect(__u32 key, __u32 src_slot, __u64 len)
{
	int rc = bpf_redirect_map(&vx_redirect, key, XDP_PASS);

	if (rc != XDP_REDIRECT)
		vx_count(src_slot, VX_CNT_REDIRECT_FAIL, len);
	return rc;
}

static __always_inline int vx_xdp_to_pod(const struct vx_verdict *v, __u64 len)
{
	int rc = vx_xdp_redirect(v->ifindex, v->src_slot, len);

	if (rc == XDP_REDIRECT) {
		vx_count(v->src_slot, VX_CNT_TX_POD, len);
		vx_count(v->slot, VX_CNT_RX_REDIRECT, len);
	}
	return rc;
}

/* Readdresses a frame handed to the stack so the stack takes it as its own. */
static __always_inline void vx_readdress(const struct vx_pkt *pkt, const struct vx_verdict *v)
{
	struct ethhdr *eth;

	if (!vx_is_to_stack(v->kind))
		return;
	eth = vx_hdr(pkt, 0, sizeof(struct ethhdr));
	if (eth)
		__builtin_memcpy(eth->h_dest, v->to_mac, 6);
}

/* Uplink: to a pod, or to the node (readdressed when it is a NAT return). */
static __always_inline int vx_xdp_uplink_apply(const struct vx_pkt *pkt, struct vx_verdict v)
{
	if (v.kind == VX_TO_POD)
		return vx_xdp_to_pod(&v, pkt->len);
	vx_readdress(pkt, &v);
	vx_count_local(&v, pkt->len);
	return XDP_PASS;
}

/*
 * Host veth. When the uplink cannot take redirected frames (no ndo_xdp_xmit),
 * the tc program on the same veth is the fallback: wire-bound frames pass to
 * the stack, where tc redirects the skb; frames for the stack pass unchanged
 * too and tc steers, readdresses and counts them, so nothing is counted twice.
 */
static __always_inline int vx_xdp_host_apply(const struct vx_pkt *pkt, struct vx_verdict v)
{
	struct vx_config cfg = vx_config_get();
	int tc_fallback = !(cfg.flags & VX_CFG_UPLINK_CAN_XMIT);
	int rc;

	if (vx_is_drop(v.kind)) {
		vx_count_local(&v, pkt->len);
		return XDP_DROP;
	}
	switch (v.kind) {
	case VX_TO_POD:
		return vx_xdp_to_pod(&v, pkt->len);
	case VX_TO_UPLINK:
		if (tc_fallback)
			return XDP_PASS;
		rc = vx_xdp_redirect(cfg.uplink_ifindex, v.src_slot, pkt->len);
		if (rc == XDP_REDIRECT)
			vx_count(v.src_slot, VX_CNT_TX_UPLINK, pkt->len);
		return rc;
	default:
		if (!tc_fallback) {
			vx_readdress(pkt, &v);
			vx_count_local(&v, pkt->len);
		}
		return XDP_PASS;
	}
}

#endif /* VX_HOOK_XDP_H */
