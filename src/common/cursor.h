/* Bounds-checked reading and writing of big-endian wire data, in the
 * manner of OpenSSH's sshbuf: read every field in one chained sequence,
 * then test the sticky error flag once.
 *
 * Reader: a failed read (not enough bytes, bad string) sets c->err, reads
 * as zero (or an empty string) and leaves the position where it was; every
 * read after that fails too.  The cursor borrows the buffer; it never
 * allocates.
 * Writer: a write past cap sets w->err and writes nothing; a string that
 * does not fit its wire form sets w->inval; every write after either is
 * ignored. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cursor {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool err;
};

struct wcursor {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool err;   /* ran out of room */
	bool inval; /* a value cannot be encoded */
};

/* Where an empty (NULL) buffer points, so that a cursor's p is never NULL. */
extern uint8_t cursor_empty_[1];

static inline void cursor_init(struct cursor *c, const void *p, size_t len)
{
	c->p = p ? p : cursor_empty_;
	c->len = p ? len : 0;
	c->off = 0;
	c->err = false;
}

/* Marks the cursor failed (for range checks done by the caller). */
static inline void cursor_fail(struct cursor *c)
{
	c->err = true;
}

static inline size_t cursor_remaining(const struct cursor *c) /* 0 once err is set */
{
	return c->err ? 0 : c->len - c->off;
}

/* 0 when no read failed and every byte was consumed, else -EBADMSG. */
int cursor_end(const struct cursor *c);

/* Returns a pointer to the next n bytes of the input and skips them, or
 * NULL on failure.  n == 0 returns a valid, non-dereferenceable pointer.
 * The one place that checks bounds, written so that it cannot overflow
 * (off <= len); inline, so that reads of constant sizes from a cursor of
 * known length (cursor_sub) cost nothing (pkt4_parse runs for every
 * packet). */
static inline const uint8_t *cursor_ref(struct cursor *c, size_t n)
{
	const uint8_t *p;

	if (c->err || n > c->len - c->off) {
		c->err = true;
		return NULL;
	}
	p = c->p + c->off;
	c->off += n;
	return p;
}

static inline void cursor_skip(struct cursor *c, size_t n)
{
	cursor_ref(c, n);
}

/* A cursor on the next n bytes of c, which skips them (a failed one if
 * they are not there).  For a header of fixed size: its reads from the
 * sub-cursor need no bounds check of their own, and the compiler drops
 * them, so the header costs one. */
static inline struct cursor cursor_sub(struct cursor *c, size_t n)
{
	const uint8_t *p = cursor_ref(c, n);
	struct cursor s;

	cursor_init(&s, p, n);
	if (!p)
		cursor_fail(&s);
	return s;
}

static inline uint8_t cursor_u8(struct cursor *c)
{
	const uint8_t *p = cursor_ref(c, 1);
	return p ? p[0] : 0;
}

static inline uint16_t cursor_u16(struct cursor *c)
{
	const uint8_t *p = cursor_ref(c, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static inline uint32_t cursor_u32(struct cursor *c)
{
	const uint8_t *p = cursor_ref(c, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t cursor_u64(struct cursor *c);
/* Copies n bytes into out (zeroed on failure). */
void cursor_bytes(struct cursor *c, void *out, size_t n);
/* A field of exactly n bytes holding a string padded with NULs: it must
 * contain a NUL and nothing but NULs after the first one.  out (size >= n)
 * gets the NUL-terminated string. */
void cursor_str_fixed(struct cursor *c, char *out, size_t n);
/* A u8 length then that many bytes, no NUL among them; the length must be
 * < size.  out gets the NUL-terminated string ("" on failure). */
void cursor_str8(struct cursor *c, char *out, size_t size);

void wcursor_init(struct wcursor *w, void *p, size_t cap);
/* Bytes written so far; -EINVAL if a value could not be encoded, else
 * -ENOSPC if a write did not fit. */
ssize_t wcursor_result(const struct wcursor *w);

void wcursor_u8(struct wcursor *w, uint8_t v);
void wcursor_u16(struct wcursor *w, uint16_t v);
void wcursor_u32(struct wcursor *w, uint32_t v);
void wcursor_u64(struct wcursor *w, uint64_t v);
void wcursor_bytes(struct wcursor *w, const void *p, size_t n);
/* s padded with NULs to exactly n bytes; strlen(s) < n, else inval. */
void wcursor_str_fixed(struct wcursor *w, const char *s, size_t n);
/* u8 length then the bytes of s; strlen(s) <= 255, else inval. */
void wcursor_str8(struct wcursor *w, const char *s);
