#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/bpf.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "vif/vif.h"

/* One queue of the device: the first names it (pattern), the others join. */
static int vif_queue_open(struct ifreq *ifr, bool multi)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ifr->ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	if (ioctl(fd, TUNSETIFF, ifr) < 0) {
		ret = -errno;
		log_err("TUNSETIFF %s: %s", ifr->ifr_name, strerror(errno));
		close(fd);
		return ret;
	}
	return fd;
}

int vif_open(struct vif *v, const char *pattern, uint32_t mtu, int queues)
{
	struct ifreq ifr;
	int ret;

	memset(v, 0, sizeof(*v));
	if (queues < 1 || queues > VIF_QUEUES_MAX)
		return -EINVAL;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", pattern);
	for (int i = 0; i < queues; i++) {
		if ((ret = vif_queue_open(&ifr, queues > 1)) < 0) {
			vif_close(v);
			return ret;
		}
		v->fds[v->n_queues++] = ret;
	}
	v->mtu = mtu;
	/* Best effort: without it packets come with complete checksums. */
	v->csum_offload = ioctl(v->fds[0], TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM) == 0;
	snprintf(v->name, sizeof(v->name), "%s", ifr.ifr_name);
	v->ifindex = (int)if_nametoindex(v->name);
	if (!v->ifindex) {
		ret = -errno;
		vif_close(v);
		return ret;
	}
	return 0;
}

void vif_close(struct vif *v)
{
	for (int i = 0; i < v->n_queues; i++)
		close(v->fds[i]);
	v->n_queues = 0;
}

/* The steering program (vif.h), in eBPF: a socket filter's packet loads
 * (LD_ABS/LD_IND read the packet from its IP header, in host order). */
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

int vif_steer_load(uint32_t nat_base)
{
	const struct bpf_insn prog[] = {
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),       /* r6 = skb (LD_ABS wants it there) */
		INSN(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 9),          /* r0 = protocol */
		INSN(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 11, IPPROTO_TCP), /* not TCP: queue 0 */
		INSN(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, 16),         /* r0 = destination address */
		INSN(BPF_ALU | BPF_ADD | BPF_K, 0, 0, 0, (int32_t)(0u - nat_base)), /* w0 -= nat_base */
		INSN(BPF_JMP | BPF_JLT | BPF_K, 0, 0, 7, 64),        /* a NAT address: its index */
		INSN(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 0),          /* r0 = version and IHL */
		INSN(BPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, 15),
		INSN(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 2),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 7, 0, 0, 0),       /* r7 = header length */
		INSN(BPF_LD | BPF_IND | BPF_W, 0, 7, 0, 0),          /* r0 = the ports */
		INSN(BPF_ALU | BPF_MUL | BPF_K, 0, 0, 0, (int32_t)0x9E3779B1u), /* mixed (Fibonacci hashing) */
		INSN(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 0, 24), /* its top byte: every bit of the ports in it */
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	union bpf_attr a;
	long fd;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (uint64_t)(uintptr_t)prog;
	a.insn_cnt = ARRAY_SIZE(prog);
	a.license = (uint64_t)(uintptr_t)"MIT";
	snprintf(a.prog_name, sizeof(a.prog_name), "subway_steer");
	fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (fd < 0)
		return -errno;
	fcntl((int)fd, F_SETFD, FD_CLOEXEC);
	return (int)fd;
}

int vif_steer(struct vif *v, int prog_fd)
{
	return ioctl(v->fds[0], TUNSETSTEERINGEBPF, &prog_fd) < 0 ? -errno : 0;
}

ssize_t vif_read(int fd, uint8_t *buf, size_t cap, bool *partial)
{
	struct virtio_net_hdr h;
	struct iovec iov[2] = { { &h, sizeof(h) }, { buf, cap } };
	ssize_t n = readv(fd, iov, 2);

	if (n < 0)
		return -errno;
	if (n < (ssize_t)sizeof(h))
		return n == 0 ? -EAGAIN : -EMSGSIZE;
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
		return -EMSGSIZE; /* not offered (no TSO flag), so never expected */
	*partial = (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0;
	return n - (ssize_t)sizeof(h);
}

int vif_write(int fd, const uint8_t *pkt, size_t len, bool partial)
{
	struct virtio_net_hdr h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)pkt, len } };

	if (partial && len >= 20) {
		h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.csum_start = (uint16_t)((pkt[0] & 15) * 4);
		h.csum_offset = pkt[9] == IPPROTO_TCP ? 16 : 6; /* TCP or UDP checksum field */
	}
	if (writev(fd, iov, 2) != (ssize_t)(sizeof(h) + len))
		return -EIO;
	return 0;
}

int vif_routes_parse(const char *text, struct local_route *out, int max)
{
	const char *line = strchr(text, '\n'); /* skip the header line */
	int n = 0;

	while (line && *++line && n < max) {
		char dev[VIF_NAME_MAX];
		unsigned dst, gw, flags, mask;
		if (sscanf(line, "%15s %x %x %x %*d %*d %*d %x", dev, &dst, &gw, &flags, &mask) != 5)
			return -EINVAL;
		line = strchr(line, '\n');
		if (!mask || !(flags & 1)) /* default route, or not up */
			continue;
		/* /proc/net/route prints addresses in network byte order as a raw u32. */
		uint32_t d = __builtin_bswap32(dst), m = __builtin_bswap32(mask);
		uint8_t len = (uint8_t)__builtin_popcount(m);
		if (m != cidr4_mask(len))
			continue;
		out[n].dst.addr = d & m;
		out[n].dst.len = len;
		snprintf(out[n].dev, sizeof(out[n].dev), "%s", dev);
		n++;
	}
	return n;
}

int vif_routes_read(struct local_route *out, int max)
{
	char buf[65536];
	ssize_t n = file_read_small("/proc/net/route", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	return vif_routes_parse(buf, out, max);
}
