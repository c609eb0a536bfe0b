/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The hook-neutral steering decision every hook turns into its return code. */
#ifndef VX_VERDICT_H
#define VX_VERDICT_H

#include <linux/types.h>
#include "vx_shared.h"

enum vx_kind {
	VX_PASS = 0,           /* to the node's own stack */
	VX_DROP_SPOOF = 1,     /* source is not the pod's (counted) */
	VX_DROP_MALFORMED = 2, /* truncated headers from a pod (counted) */
	VX_TO_POD = 3,         /* redirect to the pod `ifindex` / `slot` */
	VX_TO_UPLINK = 4,      /* redirect to the uplink */
};

struct vx_verdict {
	__u32 kind;
	__u32 src_slot; /* the sender's counters: VX_UPLINK_SLOT, a pod's slot, or VX_NO_SLOT */
	__u32 ifindex;  /* VX_TO_POD: target host veth (devmap key, tc redirect) */
	__u32 slot;     /* VX_TO_POD: target slot (counters) */
};

static __always_inline struct vx_verdict vx_verdict(__u32 kind, __u32 src_slot)
{
	struct vx_verdict v = { .kind = kind, .src_slot = src_slot };

	return v;
}

static __always_inline struct vx_verdict vx_verdict_to_pod(__u32 src_slot,
							   const struct vx_pod *pod)
{
	struct vx_verdict v = {
		.kind = VX_TO_POD,
		.src_slot = src_slot,
		.ifindex = pod->host_ifindex,
		.slot = pod->slot,
	};

	return v;
}

#endif /* VX_VERDICT_H */
