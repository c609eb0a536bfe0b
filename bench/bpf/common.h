/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared definitions of the benchmark's BPF programs (not the product's). */
#ifndef __VXB_COMMON_H__
#define __VXB_COMMON_H__

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* UDP destination port of every benchmark frame; counters count only these. */
#define VXB_UDP_PORT 9999

static __always_inline struct udphdr *vxb_bench_udp(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	if (udp->dest != bpf_htons(VXB_UDP_PORT))
		return 0;
	return udp;
}

#endif
