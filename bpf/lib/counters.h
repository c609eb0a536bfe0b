/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU per-pod counters: one call per event. */
#ifndef VX_COUNTERS_H
#define VX_COUNTERS_H

#include "vx_maps.h"

/* Adds one frame of len bytes to counter idx of key (a host veth ifindex or
 * VX_UPLINK_KEY). Keys the loader has not created are not counted. */
static __always_inline void vx_count(__u32 key, __u32 idx, __u64 len)
{
	struct vx_counters *c = bpf_map_lookup_elem(&vx_counters, &key);

	if (!c || idx >= VX_CNT_MAX)
		return;
	/* Per-CPU value: no atomics needed. */
	c->c[idx].packets += 1;
	c->c[idx].bytes += len;
}

#endif /* VX_COUNTERS_H */
