#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

static void sock_addr(struct sockaddr_in *sa, uint32_t addr, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(addr);
	sa->sin_port = htons(port);
}

int sock_listen_tcp(uint32_t addr, uint16_t port, int backlog)
{
	struct sockaddr_in sa;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -errno;
	sock_addr(&sa, addr, port);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int sock_connect_tcp(uint32_t addr, uint16_t port, uint8_t tos)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -errno;
	if (tos) {
		int v = tos;
		setsockopt(fd, IPPROTO_IP, IP_TOS, &v, sizeof(v));
	}
	sock_nodelay(fd);
	sock_addr(&sa, addr, port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int sock_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

ssize_t sock_recv(int fd, void *buf, size_t cap, uint32_t *from)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	ssize_t n = recvfrom(fd, buf, cap, 0, from ? (struct sockaddr *)&sa : NULL, from ? &len : NULL);

	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (from)
		*from = ntohl(sa.sin_addr.s_addr);
	return n;
}

static int sock_name(int fd, uint32_t *addr, uint16_t *port, bool peer)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int r = peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
		     : getsockname(fd, (struct sockaddr *)&sa, &len);

	if (r < 0)
		return -errno;
	if (sa.sin_family != AF_INET)
		return -EAFNOSUPPORT;
	if (addr)
		*addr = ntohl(sa.sin_addr.s_addr);
	if (port)
		*port = ntohs(sa.sin_port);
	return 0;
}

int sock_local(int fd, uint32_t *addr, uint16_t *port)
{
	return sock_name(fd, addr, port, false);
}

int sock_peer(int fd, uint32_t *addr, uint16_t *port)
{
	return sock_name(fd, addr, port, true);
}

int sock_delack(int fd)
{
	int zero = 0;

	return setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero)) < 0 ? -errno : 0;
}

int sock_nodelay(int fd)
{
	int one = 1;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

int sock_linger_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 ? -errno : 0;
}

int sock_linger_default(int fd)
{
	struct linger lg = { .l_onoff = 0, .l_linger = 0 };
	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0 ? -errno : 0;
}

int sock_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

void sock_raise_nofile(uint64_t want)
{
	struct rlimit rl;
	char buf[32];

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (geteuid() == 0 && file_read_small("/proc/sys/fs/nr_open", buf, sizeof(buf)) > 0) {
		uint64_t nr = strtoull(buf, NULL, 10);
		if (nr > rl.rlim_max)
			rl.rlim_max = nr;
	}
	rl.rlim_cur = MIN(want, rl.rlim_max);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = MIN(want, rl.rlim_max);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int sock_keepalive(int fd, int idle_s, int intvl_s, int cnt)
{
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl_s, sizeof(intvl_s)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
		return -errno;
	return 0;
}
