/* A growable NUL-terminated text buffer for generated configs and scripts.
 * Appends never fail visibly: an allocation failure is remembered and
 * reported by text_error(), so generators stay straight-line code. */
#pragma once
#include <stddef.h>

struct text {
	char *buf;
	size_t len, cap;
	int err; /* 0 or -ENOMEM */
};

void text_init(struct text *t);
void text_free(struct text *t); /* accepts a zeroed struct */
void text_reset(struct text *t); /* empties, keeps the memory */
void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *text_str(const struct text *t); /* "" when empty */
int text_error(const struct text *t);
