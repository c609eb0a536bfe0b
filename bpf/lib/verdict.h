/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The hook-neutral steering decision every hook turns into its return code. */
#ifndef VX_VERDICT_H
#define VX_VERDICT_H

#include <linux/types.h>

enum vx_kind {
	VX_PASS = 0,           /* to the node's own stack */
	VX_DROP_SPOOF = 1,     /* source is not the pod's (counted) */
	VX_DROP_MALFORMED = 2, /* truncated headers from a pod (counted) */
	VX_TO_POD = 3,         /* redirect to the host veth `target` */
	VX_TO_UPLINK = 4,      /* redirect to the uplink */
};

struct vx_verdict {
	__u32 kind;
	__u32 target; /* host veth ifindex for VX_TO_POD */
};

static __always_inline struct vx_verdict vx_verdict(__u32 kind, __u32 target)
{
	struct vx_verdict v = { .kind = kind, .target = target };

	return v;
}

#endif /* VX_VERDICT_H */
