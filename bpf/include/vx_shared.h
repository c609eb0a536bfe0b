/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The ABI between the BPF programs and the Rust loader: map keys and values,
 * counter indices, config flags. Mirrored by plugin/src/bpf/types.rs, which
 * asserts every size. Change one, change the other, and bump
 * VX_LAYOUT_VERSION when a pinned map's key or value changes (the pin path
 * carries it, so old and new layouts never share a map).
 *
 * All structs have explicit padding: no implicit holes, no bools, no enums in
 * map values.
 */
#ifndef VX_SHARED_H
#define VX_SHARED_H

#include <linux/types.h>

#define VX_LAYOUT_VERSION 2

/* Default map sizes; the loader overrides them (EbpfLoader::map_max_entries). */
#define VX_DEFAULT_MAX_PODS 1024
/* Addresses per pod the IPv4 and IPv6 maps make room for (each). */
#define VX_ADDRS_PER_POD 4
#define VX_MAX_NODE_ADDRS 256
/* Service prefixes per family (vx_services). */
#define VX_MAX_SERVICE_CIDRS 4
/* Flows whose replies must go through the node's stack (vx_flows, LRU). */
#define VX_MAX_FLOWS 65536

/* Slot of the uplink: index 0 of vx_counters. Pods get
 * slots 1..=max_pods (vx_pod.slot), allocated by the loader. */
#define VX_UPLINK_SLOT 0
/* No slot: array lookups miss, so nothing is counted under it. A frame on a
 * host veth without a pod record is counted as DROP_NO_POD on slot 0. */
#define VX_NO_SLOT 0xffffffffU

/* vx_config.flags */
/* The uplink has ndo_xdp_xmit: host-veth XDP may redirect to it. Without it
 * the host-veth XDP program passes wire-bound frames to the stack and the tc
 * program on the same veth redirects the skb. */
#define VX_CFG_UPLINK_CAN_XMIT (1U << 0)
/* Informational: the uplink program runs in generic (skb) mode. */
#define VX_CFG_UPLINK_GENERIC (1U << 1)
/* vx_services holds at least one prefix: pods' frames to those addresses go
 * to the node's stack (kube-proxy), and NATed flows are tracked. */
#define VX_CFG_SERVICES (1U << 2)

/* vx_config: the single entry (key 0) of the vx_config array. */
struct vx_config {
	__u32 uplink_ifindex;
	__u32 flags;
	__u8 uplink_mac[6]; /* frames handed to the stack from the wire are readdressed to it */
	__u8 pad[2];
};

/* One service prefix: addr & mask == addr (network order words; IPv4 uses
 * word 0 only). prefix_len 0 = unused slot. */
struct vx_prefix {
	__u32 addr[4];
	__u32 mask[4];
	__u32 prefix_len;
};

/* vx_services: the single entry (key 0), the cluster's service ranges. */
struct vx_services {
	struct vx_prefix v4[VX_MAX_SERVICE_CIDRS];
	struct vx_prefix v6[VX_MAX_SERVICE_CIDRS];
};

/* vx_pod.flags */
/* Set by the loader (network config or pod annotation): the pod may send
 * router frames (IPv6 RA, ICMP/ICMPv6 redirects, DHCP/DHCPv6 server replies). */
#define VX_POD_ALLOW_ROUTER (1U << 0)
/* Set by the loader: the pod may send any ethertype, VLAN tags included. */
#define VX_POD_ALLOW_ETHERTYPES (1U << 1)
/* Set by the programs: vx_flows may hold flows of this pod, so frames to it
 * (and from it) are looked up there. Never cleared while the pod lives. */
#define VX_POD_STACK_FLOWS (1U << 2)

/* Key of vx_flows: one side of a TCP/UDP flow, seen from the pod. Addresses
 * are 16 bytes (IPv4 as ::ffff:a.b.c.d). peer_ip/peer_port zero: any peer
 * (the pod's frame went to a service address; the backend is not known). */
struct vx_flow_key {
	__u8 pod_ip[16];
	__u8 peer_ip[16];
	__be16 pod_port;
	__be16 peer_port;
	__u8 proto;
	__u8 pad[3];
};

/* Value of vx_flows. */
struct vx_flow {
	__u32 reason; /* VX_FLOW_* */
};

#define VX_FLOW_SERVICE 1   /* the pod's frame was handed to the stack for a service */
#define VX_FLOW_FROM_STACK 2 /* the stack delivered the flow's frame to the pod */

/* Key of vx_pod_mac. */
struct vx_mac_key {
	__u8 addr[6];
	__u8 pad[2]; /* always zero */
};

/* Key of vx_pod_v6 and vx_node_v6 (network byte order). IPv4 keys are a
 * __u32 in network byte order. */
struct vx_in6_key {
	__u8 addr[16];
};

/* One pod, as every pod map stores it (value of vx_pod_mac, vx_pod_v4,
 * vx_pod_v6, vx_pod_if), so one lookup answers "which pod, where". */
struct vx_pod {
	__u32 host_ifindex; /* host-side veth (tc redirect target) */
	__u32 slot;         /* 1..=max_pods: index of vx_counters */
	__u32 ipv4;         /* first IPv4 (network order), 0 = none: spoof-check fast path */
	__u8 host_mac[6];   /* host-side veth MAC: frames to it are for the node */
	__u8 pod_mac[6];    /* pod eth0 MAC: the only source MAC the pod may use */
	__u32 flags;        /* VX_POD_* */
};

/* Per-CPU counters (vx_counters, index = the pod's slot, or VX_UPLINK_SLOT). */
enum vx_counter_idx {
	VX_CNT_RX_REDIRECT = 0, /* redirected into this pod (from uplink or a pod) */
	VX_CNT_TX_UPLINK = 1,   /* from this pod, redirected to the uplink */
	VX_CNT_TX_POD = 2,      /* from this pod (or the uplink) redirected to a pod */
	VX_CNT_PASS = 3,        /* passed to the node's stack (all reasons) */
	VX_CNT_DROP_SPOOF = 4,  /* dropped: source MAC/IP not the pod's */
	VX_CNT_DROP_MALFORMED = 5, /* dropped: truncated headers from a pod */
	VX_CNT_REDIRECT_FAIL = 6,  /* redirect call failed (target not in devmap) */
	/* PASS split by reason (PASS minus these three: other) */
	VX_CNT_PASS_NODE = 7,       /* to the node itself (host veth MAC, ARP/NS for a node address) */
	VX_CNT_PASS_SERVICE = 8,    /* to a service address (kube-proxy rewrites it) */
	VX_CNT_PASS_NAT_RETURN = 9, /* a flow the stack NATed or delivered: back through it */
	VX_CNT_DROP_ETHERTYPE = 10, /* dropped: not IPv4/IPv6/ARP, or VLAN-tagged (no opt-in) */
	VX_CNT_DROP_ROUTER = 11,    /* dropped: RA, redirect, DHCP server frame (no opt-in) */
	VX_CNT_DROP_NO_POD = 12,    /* dropped on a host veth without a pod record (slot 0) */
	VX_CNT_MAX = 13,
};

struct vx_count {
	__u64 packets;
	__u64 bytes;
};

struct vx_counters {
	struct vx_count c[VX_CNT_MAX];
};

/* Value of vx_node_v4 / vx_node_v6 (presence is what matters). */
struct vx_node_addr {
	__u32 flags; /* reserved, zero */
};

#endif /* VX_SHARED_H */
