/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * BTF map definitions shared by every program of the object. Pinned by name
 * (the loader points the pin directory at <root>/v<N>/maps), sized at load
 * time by the loader: the max_entries below are only defaults.
 * Names stay <= 15 bytes (BPF_OBJ_NAME_LEN) so kernel, pin and bpftool agree.
 */
#ifndef VX_MAPS_H
#define VX_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "vx_shared.h"

/* Pods by pod MAC: unicast steering. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct vx_mac_key);
	__type(value, struct vx_pod);
	__uint(max_entries, VX_DEFAULT_MAX_PODS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_pod_mac SEC(".maps");

/* Pods by IPv4 address (network order): ARP steering and anti-spoofing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct vx_pod);
	__uint(max_entries, VX_DEFAULT_MAX_PODS * VX_ADDRS_PER_POD);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_pod_v4 SEC(".maps");

/* Pods by IPv6 address: neighbour solicitation steering and anti-spoofing. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct vx_in6_key);
	__type(value, struct vx_pod);
	__uint(max_entries, VX_DEFAULT_MAX_PODS * VX_ADDRS_PER_POD);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_pod_v6 SEC(".maps");

/* Pods by host veth ifindex: who is sending on this host veth. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct vx_pod);
	__uint(max_entries, VX_DEFAULT_MAX_PODS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_pod_if SEC(".maps");

/* XDP redirect targets keyed by ifindex: every pod's host veth + the uplink. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(max_entries, VX_DEFAULT_MAX_PODS + 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_redirect SEC(".maps");

/* The node's own addresses: ARP/NS from a pod for them go to the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct vx_node_addr);
	__uint(max_entries, VX_MAX_NODE_ADDRS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_node_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct vx_in6_key);
	__type(value, struct vx_node_addr);
	__uint(max_entries, VX_MAX_NODE_ADDRS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_node_v6 SEC(".maps");

/* Per-CPU counters by slot (VX_UPLINK_SLOT = the uplink, pods 1..=max_pods).
 * An array: the verifier inlines the lookup (no hash on the fast path). The
 * loader zeroes a pod's slot when it allocates and when it frees it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct vx_counters);
	__uint(max_entries, VX_DEFAULT_MAX_PODS + 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_counters SEC(".maps");

/* Node config, one entry (key 0), written by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vx_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_config SEC(".maps");

/* The cluster's service ranges, one entry (key 0), written by the loader. An
 * array of prefixes compared with masks: clusters have one or two per
 * family, and a masked compare costs less than an LPM trie walk. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vx_services);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_services SEC(".maps");

/* Flows whose frames must pass through the node's stack (its conntrack holds
 * NAT state for them, or it delivered them): written by the programs that
 * hand a pod's frame to a service and by the host veth's tc egress program
 * (stack -> pod). LRU: an evicted flow falls back to the fast path, which is
 * wrong only for a NATed flow idle longer than 65536 others took to arrive. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct vx_flow_key);
	__type(value, struct vx_flow);
	__uint(max_entries, VX_MAX_FLOWS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vx_flows SEC(".maps");

#endif /* VX_MAPS_H */
