#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "vif/vif.h"

int vif_open(struct vif *v, const char *pattern, uint32_t mtu)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int ret;

	v->fd = -1;
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", pattern);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		ret = -errno;
		log_err("TUNSETIFF %s: %s", pattern, strerror(errno));
		close(fd);
		return ret;
	}
	v->fd = fd;
	v->mtu = mtu;
	/* Best effort: without it packets come with complete checksums. */
	v->csum_offload = ioctl(fd, TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM) == 0;
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
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}

ssize_t vif_read(struct vif *v, uint8_t *buf, size_t cap, bool *partial)
{
	struct virtio_net_hdr h;
	struct iovec iov[2] = { { &h, sizeof(h) }, { buf, cap } };
	ssize_t n = readv(v->fd, iov, 2);

	if (n < 0)
		return -errno;
	if (n < (ssize_t)sizeof(h))
		return n == 0 ? -EAGAIN : -EMSGSIZE;
	if (h.gso_type != VIRTIO_NET_HDR_GSO_NONE)
		return -EMSGSIZE; /* not offered (no TSO flag), so never expected */
	*partial = (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) != 0;
	return n - (ssize_t)sizeof(h);
}

int vif_write(struct vif *v, const uint8_t *pkt, size_t len, bool partial)
{
	struct virtio_net_hdr h = { .gso_type = VIRTIO_NET_HDR_GSO_NONE };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)pkt, len } };

	if (partial && len >= 20) {
		h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.csum_start = (uint16_t)((pkt[0] & 15) * 4);
		h.csum_offset = pkt[9] == IPPROTO_TCP ? 16 : 6; /* TCP or UDP checksum field */
	}
	if (writev(v->fd, iov, 2) != (ssize_t)(sizeof(h) + len))
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
