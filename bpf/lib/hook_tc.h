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
#include "verdict.h"

static __always_inline int vx_tc_host_apply(const struct vx_pkt *pkt, struct vx_verdict v)
{
	__u32 me = v.src_slot;
	struct vx_config cfg;

	switch (v.kind) {
	case VX_DROP_SPOOF:
		vx_count(me, VX_CNT_DROP_SPOOF, pkt->len);
		return TC_ACT_SHOT;
	case VX_DROP_MALFORMED:
		vx_count(me, VX_CNT_DROP_MALFORMED, pkt->len);
		return TC_ACT_SHOT;
	case VX_TO_POD:
		vx_count(me, VX_CNT_TX_POD, pkt->len);
		vx_count(v.slot, VX_CNT_RX_REDIRECT, pkt->len);
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
		vx_count(me, VX_CNT_PASS, pkt->len);
		return TC_ACT_OK;
	}
}

#endif /* VX_HOOK_TC_H */
