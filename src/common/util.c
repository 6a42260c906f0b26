#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ip4_parse(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	int parts = 0;

	if (!s || !*s)
		return -EINVAL;
	while (parts < 4) {
		unsigned n = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (unsigned)(*s - '0');
			if (++digits > 3 || n > 255)
				return -EINVAL;
			s++;
		}
		if (digits == 0)
			return -EINVAL;
		v = (v << 8) | n;
		parts++;
		if (parts < 4 && *s++ != '.')
			return -EINVAL;
	}
	if (*s)
		return -EINVAL;
	*out = v;
	return 0;
}

const char *ip4_str(uint32_t a, char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	return buf;
}

uint32_t cidr4_mask(uint8_t len)
{
	return len == 0 ? 0 : len >= 32 ? 0xffffffffu : ~((1u << (32 - len)) - 1);
}

int cidr4_parse(const char *s, struct cidr4 *out)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	uint64_t len;
	uint32_t addr;

	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = 0;
	if (ip4_parse(buf, &addr) < 0 || u64_parse(slash + 1, 32, &len) < 0)
		return -EINVAL;
	if (addr & ~cidr4_mask((uint8_t)len))
		return -EINVAL;
	out->addr = addr;
	out->len = (uint8_t)len;
	return 0;
}

const char *cidr4_str(const struct cidr4 *c, char buf[20])
{
	char ip[16];
	snprintf(buf, 20, "%s/%u", ip4_str(c->addr, ip), c->len);
	return buf;
}

bool cidr4_contains(const struct cidr4 *c, uint32_t addr)
{
	return (addr & cidr4_mask(c->len)) == c->addr;
}

bool cidr4_overlap(const struct cidr4 *a, const struct cidr4 *b)
{
	uint8_t len = MIN(a->len, b->len);
	return (a->addr & cidr4_mask(len)) == (b->addr & cidr4_mask(len));
}

int cidr_list_parse(const char *s, struct cidr_list *out)
{
	char buf[512];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	out->n = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (out->n == CIDR_LIST_MAX || cidr4_parse(tok, &out->v[out->n]) < 0)
			return -EINVAL;
		out->n++;
	}
	return out->n ? 0 : -EINVAL;
}

bool cidr_list_contains(const struct cidr_list *l, uint32_t addr)
{
	for (int i = 0; i < l->n; i++)
		if (cidr4_contains(&l->v[i], addr))
			return true;
	return false;
}

int u64_parse(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if ((uint64_t)(*s - '0') > max || v > (max - (uint64_t)(*s - '0')) / 10)
			return -ERANGE; /* (a digit above a small max: max - digit would wrap) */
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

char *hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
	return out;
}

long hex_decode(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(s[2 * i]), lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);
		if (hi < 0)
			return (long)(2 * i);
		if (lo < 0)
			return (long)(2 * i + 1);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return -1;
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int port_parse(const char *s, uint16_t *out)
{
	uint64_t v;
	if (u64_parse(s, 65535, &v) < 0 || v == 0)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int endpoint_parse(const char *s, uint32_t *addr, uint16_t *port)
{
	char buf[32];
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(colon - s));
	buf[colon - s] = 0;
	if (ip4_parse(buf, addr) < 0 || port_parse(colon + 1, port) < 0)
		return -EINVAL;
	return 0;
}

uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int cpus_usable(int max)
{
	cpu_set_t set;
	int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;

	return n < 1 ? 1 : n > max ? max : n;
}

uint64_t now_ms(void)
{
	return now_us() / 1000u;
}

ssize_t file_read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return -errno;
	while (off + 1 < size) {
		ssize_t n = read(fd, buf + off, size - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			close(fd);
			return e;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = 0;
	return (ssize_t)off;
}

int file_write(const char *path, const void *data, size_t len, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	const char *p = data;
	int ret = 0;

	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

int mkdir_p(const char *path, int mode)
{
	char buf[4096];

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

const char *str_cut(const char *s, size_t len, char *buf, size_t size)
{
	size_t n = 0, max = size > 4 ? size - 4 : 0;

	for (; n < len && n < max && s[n]; n++)
		buf[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
	if (n < len && s[n] && size > 4)
		for (int i = 0; i < 3; i++)
			buf[n++] = '.';
	if (size)
		buf[n] = 0;
	return buf;
}

ssize_t str_pct_encode(const void *p, size_t n, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	const uint8_t *b = p;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		bool plain = b[i] > 0x20 && b[i] < 0x7f && b[i] != '%';
		if (o + (plain ? 1 : 3) >= size)
			return -ENOSPC;
		if (plain) {
			out[o++] = (char)b[i];
			continue;
		}
		out[o++] = '%';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	if (size)
		out[o] = 0;
	return (ssize_t)o;
}

ssize_t str_pct_decode(const char *s, size_t n, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1, lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
			if (lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		}
		if (o + 1 >= size)
			return -ENOSPC;
		out[o++] = (char)c;
	}
	if (size)
		out[o] = 0;
	return (ssize_t)o;
}
