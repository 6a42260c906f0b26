/* The virtual interface: a TUN device plus its address and routes, all
 * set over rtnetlink and all attached to the link, so the kernel removes
 * every one of them when the device goes away (daemon exit or crash). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"

#define VIF_NAME_MAX 16
#define VIF_QUEUES_MAX 4

struct vif {
	int fds[VIF_QUEUES_MAX]; /* every queue (IFF_MULTI_QUEUE when more than one) */
	int n_queues;            /* 0: closed */
	bool csum_offload; /* TUN_F_CSUM took: TCP/UDP may come with NEEDS_CSUM */
	int ifindex;
	char name[VIF_NAME_MAX];
	uint32_t mtu;
};

/* Creates a TUN device (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, non-blocking)
 * named after pattern (e.g. "subway%d"), with checksum offload where the
 * kernel has it, and `queues` queues (1..VIF_QUEUES_MAX; more than one:
 * IFF_MULTI_QUEUE, each queue a file descriptor of its own).  0 or -errno
 * (-ENOENT: no /dev/net/tun). */
int vif_open(struct vif *v, const char *pattern, uint32_t mtu, int queues);
void vif_close(struct vif *v);

/* Steering for a multi-queue VIF: which queue the kernel puts a packet
 * on, decided by a small BPF program (TUNSETSTEERINGEBPF) so that both
 * directions of a hairpinned TCP flow land on the queue of the thread
 * that owns it, for the flow's whole life:
 *   TCP to a NAT address (nat_base + i, i < 64)   queue i % n
 *   any other TCP (an app's, to the cluster)        a hash of its ports % n
 *   everything else                                 queue 0
 * (A hash, not the source port itself: Linux gives connect() even ports.)
 * vif_steer_load loads the program (needs CAP_BPF or CAP_SYS_ADMIN: the
 * daemon loads it before dropping them); its fd, or -errno.
 * vif_steer attaches it: 0 or -errno. */
int vif_steer_load(uint32_t nat_base);
int vif_steer(struct vif *v, int prog_fd);

/* Packets cross the VIF with a virtio_net_hdr in front.  With checksum
 * offload the kernel hands locally sent TCP/UDP packets with the L4
 * checksum left to complete (NEEDS_CSUM: the field holds the pseudo-header
 * sum), and takes such packets back the same way: a hairpinned segment is
 * then never summed, neither by the kernel nor by the daemon.
 *
 * vif_read: one IPv4 packet into buf; its length, -EAGAIN when none is
 * waiting, or -EMSGSIZE for one the daemon cannot take (a GSO packet).
 * *partial tells whether its checksum is left to complete. */
ssize_t vif_read(int fd, uint8_t *buf, size_t cap, bool *partial);
/* vif_write: one IPv4 packet; partial as above (TCP or UDP only).  0 or -errno.
 * fd: one of the VIF's queues. */
int vif_write(int fd, const uint8_t *pkt, size_t len, bool partial);
/* Brings the link up with v->mtu. */
int vif_up(struct vif *v);
int vif_addr_add(struct vif *v, uint32_t addr, uint8_t prefix);
/* Route for dst via the link, with preferred source src (0: none). */
int vif_route_add(struct vif *v, const struct cidr4 *dst, uint32_t src);

/* The route the kernel picks for dst (`ip route get`): its output
 * interface index and gateway (0: directly attached).  0 or -errno
 * (-ENETUNREACH: no route). */
int vif_route_get(uint32_t dst, int *oif, uint32_t *gw);

/* Local IPv4 routes, from /proc/net/route text (pure parser; the default
 * route is skipped).  Returns the number found (<= max) or -EINVAL. */
struct local_route {
	struct cidr4 dst;
	char dev[VIF_NAME_MAX];
};
int vif_routes_parse(const char *text, struct local_route *out, int max);
int vif_routes_read(struct local_route *out, int max);
