/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU per-slot counters: one call per event. */
#ifndef VX_COUNTERS_H
#define VX_COUNTERS_H

#include "vx_maps.h"
#include "verdict.h"

/* Adds one frame of len bytes to counter idx of slot (a pod's vx_pod.slot or
 * VX_UPLINK_SLOT). vx_counters is a per-CPU array, so the lookup is inlined
 * by the verifier; a slot past max_entries (VX_NO_SLOT) is not counted. */
static __always_inline void vx_count(__u32 slot, __u32 idx, __u64 len)
{
	struct vx_counters *c = bpf_map_lookup_elem(&vx_counters, &slot);

	if (!c || idx >= VX_CNT_MAX)
		return;
	/* Per-CPU value: no atomics needed. */
	c->c[idx].packets += 1;
	c->c[idx].bytes += len;
}

/* Counts a verdict that ends at this hook: a drop (by reason) or a pass to
 * the stack (PASS, plus its reason unless "other"). */
static __always_inline void vx_count_local(const struct vx_verdict *v, __u64 len)
{
	switch (v->kind) {
	case VX_DROP_SPOOF:
		vx_count(v->src_slot, VX_CNT_DROP_SPOOF, len);
		return;
	case VX_DROP_MALFORMED:
		vx_count(v->src_slot, VX_CNT_DROP_MALFORMED, len);
		return;
	case VX_DROP_ETHERTYPE:
		vx_count(v->src_slot, VX_CNT_DROP_ETHERTYPE, len);
		return;
	case VX_DROP_ROUTER:
		vx_count(v->src_slot, VX_CNT_DROP_ROUTER, len);
		return;
	case VX_DROP_NO_POD:
		vx_count(v->src_slot, VX_CNT_DROP_NO_POD, len);
		return;
	case VX_PASS_NODE:
		vx_count(v->src_slot, VX_CNT_PASS_NODE, len);
		break;
	case VX_TO_STACK_SERVICE:
		vx_count(v->src_slot, VX_CNT_PASS_SERVICE, len);
		break;
	case VX_TO_STACK_NAT:
		vx_count(v->src_slot, VX_CNT_PASS_NAT_RETURN, len);
		break;
	default:
		break;
	}
	vx_count(v->src_slot, VX_CNT_PASS, len);
}

#endif /* VX_COUNTERS_H */
