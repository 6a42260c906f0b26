#include "lab/text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void text_init(struct text *t)
{
	memset(t, 0, sizeof(*t));
}

void text_free(struct text *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

void text_reset(struct text *t)
{
	t->len = 0;
	if (t->buf)
		t->buf[0] = 0;
}

static int text_reserve(struct text *t, size_t more)
{
	size_t cap = t->cap ? t->cap : 256;
	char *p;

	if (t->len + more + 1 <= t->cap)
		return 0;
	while (cap < t->len + more + 1) {
		if (cap > ((size_t)1 << 30))
			return -ENOMEM;
		cap *= 2;
	}
	p = realloc(t->buf, cap);
	if (!p)
		return -ENOMEM;
	t->buf = p;
	t->cap = cap;
	return 0;
}

void text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || text_reserve(t, (size_t)n) < 0) {
		t->err = -ENOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

const char *text_str(const struct text *t)
{
	return t->buf ? t->buf : "";
}

int text_error(const struct text *t)
{
	return t->err;
}
