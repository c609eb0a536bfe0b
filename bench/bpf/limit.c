/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The "limit" column: no CNI, the least work a redirect datapath can do.
 * vxb_limit (XDP) redirects every frame to lim_tx[lim_by_mac[dst MAC]] or
 * lim_tx[0] when the MAC is unknown. vxb_tc_fwd (tc) redirects every skb to
 * the device tc_target, the bare counterpart of a tc egress datapath. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 64);
} lim_tx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64); /* MAC in the low 6 bytes, as laid out in the frame */
	__type(value, __u32);
	__uint(max_entries, 64);
} lim_by_mac SEC(".maps");

static volatile const __u32 tc_target = 0;

SEC("xdp")
int vxb_limit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u64 key = 0;
	__u32 idx = 0, *found;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	__builtin_memcpy(&key, eth->h_dest, ETH_ALEN);
	found = bpf_map_lookup_elem(&lim_by_mac, &key);
	if (found)
		idx = *found;
	return bpf_redirect_map(&lim_tx, idx, 0);
}

SEC("classifier")
int vxb_tc_fwd(struct __sk_buff *skb)
{
	return bpf_redirect(tc_target, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
