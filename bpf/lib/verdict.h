/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The hook-neutral steering decision every hook turns into its return code. */
#ifndef VX_VERDICT_H
#define VX_VERDICT_H

#include <linux/types.h>
#include "vx_shared.h"

enum vx_kind {
	VX_PASS = 0,           /* to the node's stack, for no particular reason (counted "other") */
	VX_DROP_SPOOF = 1,     /* source is not the pod's (counted) */
	VX_DROP_MALFORMED = 2, /* truncated headers from a pod (counted) */
	VX_TO_POD = 3,         /* redirect to the pod `ifindex` / `slot` */
	VX_TO_UPLINK = 4,      /* redirect to the uplink */
	VX_PASS_NODE = 5,      /* to the node itself */
	/* To the stack, readdressed to `to_mac` so the stack takes it as its own: */
	VX_TO_STACK_SERVICE = 6, /* a service address (kube-proxy DNATs it) */
	VX_TO_STACK_NAT = 7,     /* a flow the stack NATed or delivered (reverse NAT) */
	VX_DROP_ETHERTYPE = 8,   /* an ethertype or VLAN tag a pod may not send */
	VX_DROP_ROUTER = 9,      /* a router frame a pod may not send */
	VX_DROP_NO_POD = 10,     /* a host veth without a pod record */
};

struct vx_verdict {
	__u32 kind;
	__u32 src_slot; /* the sender's counters: VX_UPLINK_SLOT, a pod's slot, or VX_NO_SLOT */
	__u32 ifindex;  /* VX_TO_POD: target host veth (devmap key, tc redirect) */
	__u32 slot;     /* VX_TO_POD: target slot (counters) */
	__u8 to_mac[6]; /* VX_TO_STACK_*: the destination MAC the stack accepts */
	__u8 pad[2];
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

static __always_inline struct vx_verdict vx_verdict_to_stack(__u32 kind, __u32 src_slot,
							     const __u8 *mac)
{
	struct vx_verdict v = { .kind = kind, .src_slot = src_slot };

	__builtin_memcpy(v.to_mac, mac, 6);
	return v;
}

static __always_inline int vx_is_drop(__u32 kind)
{
	return kind == VX_DROP_SPOOF || kind == VX_DROP_MALFORMED || kind == VX_DROP_ETHERTYPE ||
	       kind == VX_DROP_ROUTER || kind == VX_DROP_NO_POD;
}

static __always_inline int vx_is_to_stack(__u32 kind)
{
	return kind == VX_TO_STACK_SERVICE || kind == VX_TO_STACK_NAT;
}

#endif /* VX_VERDICT_H */
