/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Receiver: counts benchmark frames (UDP to VXB_UDP_PORT) per CPU and drops
 * them; everything else (ARP, pings, TCP) passes to the stack. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} rx_count SEC(".maps");

SEC("xdp")
int vxb_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u64 *n;

	if (!vxb_bench_udp(data, end))
		return XDP_PASS;
	n = bpf_map_lookup_elem(&rx_count, &zero);
	if (n)
		*n += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
