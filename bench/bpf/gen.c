/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Traffic generator: run by BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 * (kernel >= 5.18, commit b530e9e1063e). Every frame gets the header of the
 * next target (round robin) and is redirected out of the
 * device in gen_tx[0]. gen_sent counts frames handed to the redirect. */
#include "common.h"

/* The whole Ethernet+IPv4+UDP header of a frame to one target. Live frames
 * come back from the page pool as the stack left them (ip_forward decrements
 * the TTL in place, the routed path rewrites MACs), so every run rewrites the
 * full header rather than patching fields. */
#define VXB_HDR_LEN 42
struct vxb_target {
	__u8 hdr[VXB_HDR_LEN];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} gen_tx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vxb_target);
	__uint(max_entries, 64);
} gen_targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} gen_sent SEC(".maps");

static volatile const __u32 n_targets = 1;

SEC("xdp")
int vxb_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0, idx = 0;
	struct vxb_target *t;
	__u64 *sent;

	if (data + VXB_HDR_LEN > end)
		return XDP_ABORTED;
	sent = bpf_map_lookup_elem(&gen_sent, &zero);
	if (!sent)
		return XDP_ABORTED;
	if (n_targets > 1)
		idx = (__u32)(*sent % n_targets);
	t = bpf_map_lookup_elem(&gen_targets, &idx);
	if (!t)
		return XDP_ABORTED;
	__builtin_memcpy(data, t->hdr, VXB_HDR_LEN);
	*sent += 1;
	return bpf_redirect_map(&gen_tx, 0, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
