/* Small pure helpers: IPv4 addresses and CIDRs, numbers, strings, time. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
/* The struct holding member at p. */
#define container_of(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* IPv4 addresses are kept in host byte order throughout. */
struct cidr4 {
	uint32_t addr; /* network address, host order, host bits cleared */
	uint8_t len;
};

#define CIDR_LIST_MAX 16
struct cidr_list {
	int n;
	struct cidr4 v[CIDR_LIST_MAX];
};

int ip4_parse(const char *s, uint32_t *out);          /* 0 or -EINVAL */
const char *ip4_str(uint32_t addr, char buf[16]);     /* returns buf */
int cidr4_parse(const char *s, struct cidr4 *out);    /* "a.b.c.d/n"; host bits must be 0 */
const char *cidr4_str(const struct cidr4 *c, char buf[20]);
bool cidr4_contains(const struct cidr4 *c, uint32_t addr);
bool cidr4_overlap(const struct cidr4 *a, const struct cidr4 *b);
uint32_t cidr4_mask(uint8_t len);
int cidr_list_parse(const char *s, struct cidr_list *out); /* comma separated */
bool cidr_list_contains(const struct cidr_list *l, uint32_t addr);

/* "HOST:PORT" with HOST an IPv4 literal. */
int endpoint_parse(const char *s, uint32_t *addr, uint16_t *port);
int port_parse(const char *s, uint16_t *out);        /* 1..65535 */
int u64_parse(const char *s, uint64_t max, uint64_t *out);
int hex_digit(char c); /* 0..15, or -1 for anything but [0-9a-fA-F] */
/* n bytes as 2 * n lower-case hex digits and a NUL in out; returns out. */
char *hex_encode(const uint8_t *p, size_t n, char *out);
/* Exactly 2 * n hex digits from s into out: -1 on success, or the index of
 * the first bad digit (a NUL included). */
long hex_decode(const char *s, uint8_t *out, size_t n);

uint64_t now_ms(void);  /* CLOCK_MONOTONIC */
uint64_t now_us(void);
/* The cores this process may run on (its affinity), from 1 to max: the
 * default of --threads for the daemon and the manager. */
int cpus_usable(int max);

/* Reads a whole small file into buf (NUL-terminated); returns length or -errno. */
ssize_t file_read_small(const char *path, char *buf, size_t size);
/* Writes data to path (created 0600 if absent, truncated); 0 or -errno. */
int file_write(const char *path, const void *data, size_t len, int mode);
/* mkdir -p with mode for every level created. 0 or -errno. */
int mkdir_p(const char *path, int mode);

/* The first len bytes of s (NUL or not) for a message, in buf: at most
 * size - 4 of them, "..." when cut, control bytes as '?' (a value echoed
 * to a terminal or a log line stays one line).  Returns buf.  The usual
 * size, STR_CUT_SIZE, keeps 48 bytes. */
#define STR_CUT_SIZE 52
const char *str_cut(const char *s, size_t len, char *buf, size_t size);
/* Percent-encoding of bytes for a line of text: every byte outside
 * 0x21..0x7e, and '%', becomes %XX.  The encoded length (out NUL-terminated
 * when size > 0), or -ENOSPC when it does not fit. */
ssize_t str_pct_encode(const void *p, size_t n, char *out, size_t size);
/* ... and back: the decoded length (out NUL-terminated), -EINVAL for a bad
 * escape, -ENOSPC when it does not fit. */
ssize_t str_pct_decode(const char *s, size_t n, char *out, size_t size);
