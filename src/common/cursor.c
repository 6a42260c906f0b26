/* The bounds-checked reader and writer (cursor.h). */
#include "common/cursor.h"

#include <errno.h>
#include <string.h>

uint8_t cursor_empty_[1];

int cursor_end(const struct cursor *c)
{
	return !c->err && c->off == c->len ? 0 : -EBADMSG;
}

uint64_t cursor_u64(struct cursor *c)
{
	uint64_t hi = cursor_u32(c);
	uint64_t lo = cursor_u32(c);
	return c->err ? 0 : hi << 32 | lo;
}

void cursor_bytes(struct cursor *c, void *out, size_t n)
{
	const uint8_t *p = cursor_ref(c, n);

	if (n == 0)
		return;
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

void cursor_str_fixed(struct cursor *c, char *out, size_t n)
{
	const uint8_t *p = cursor_ref(c, n);
	const uint8_t *nul = p && n ? memchr(p, 0, n) : NULL;

	if (n)
		out[0] = 0;
	if (!nul) {
		c->err = true;
		return;
	}
	for (const uint8_t *q = nul; q < p + n; q++) {
		if (*q) {
			c->err = true;
			return;
		}
	}
	memcpy(out, p, (size_t)(nul - p) + 1);
}

void cursor_str8(struct cursor *c, char *out, size_t size)
{
	size_t n = cursor_u8(c);
	const uint8_t *p;

	if (size)
		out[0] = 0;
	if (c->err || n >= size) {
		c->err = true;
		return;
	}
	p = cursor_ref(c, n);
	if (!p || memchr(p, 0, n)) {
		c->err = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = 0;
}

void wcursor_init(struct wcursor *w, void *p, size_t cap)
{
	w->p = p ? p : cursor_empty_;
	w->cap = p ? cap : 0;
	w->off = 0;
	w->err = false;
	w->inval = false;
}

ssize_t wcursor_result(const struct wcursor *w)
{
	if (w->inval)
		return -EINVAL;
	if (w->err)
		return -ENOSPC;
	return (ssize_t)w->off;
}

/* Room for the next n bytes, or NULL (and nothing written, ever after). */
static uint8_t *wcursor_take(struct wcursor *w, size_t n)
{
	uint8_t *p;

	if (w->err || w->inval || n > w->cap - w->off) {
		w->err = true;
		return NULL;
	}
	p = w->p + w->off;
	w->off += n;
	return p;
}

void wcursor_u8(struct wcursor *w, uint8_t v)
{
	uint8_t *p = wcursor_take(w, 1);
	if (p)
		p[0] = v;
}

void wcursor_u16(struct wcursor *w, uint16_t v)
{
	uint8_t *p = wcursor_take(w, 2);
	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

void wcursor_u32(struct wcursor *w, uint32_t v)
{
	uint8_t *p = wcursor_take(w, 4);
	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

void wcursor_u64(struct wcursor *w, uint64_t v)
{
	uint8_t *p = wcursor_take(w, 8);
	if (p)
		for (int i = 0; i < 8; i++)
			p[i] = (uint8_t)(v >> (56 - 8 * i));
}

void wcursor_bytes(struct wcursor *w, const void *p, size_t n)
{
	uint8_t *q = wcursor_take(w, n);
	if (q && n)
		memcpy(q, p, n);
}

void wcursor_str_fixed(struct wcursor *w, const char *s, size_t n)
{
	size_t l = strnlen(s, n);
	uint8_t *q;

	if (l == n) {
		w->inval = true;
		return;
	}
	q = wcursor_take(w, n);
	if (q) {
		memcpy(q, s, l);
		memset(q + l, 0, n - l);
	}
}

void wcursor_str8(struct wcursor *w, const char *s)
{
	size_t l = strnlen(s, 256);
	uint8_t *q;

	if (l > 255) {
		w->inval = true;
		return;
	}
	q = wcursor_take(w, 1 + l);
	if (q) {
		q[0] = (uint8_t)l;
		memcpy(q + 1, s, l);
	}
}
