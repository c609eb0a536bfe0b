/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU per-slot counters: one call per event. */
#ifndef VX_COUNTERS_H
#define VX_COUNTERS_H

#include "vx_maps.h"

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

#endif /* VX_COUNTERS_H */
