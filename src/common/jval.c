/* A JSON value tree (jval.h): a strict recursive-descent parser, the
 * writer, lookups by RFC 6901 pointer and RFC 6902 patches. */
#include "common/jval.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- building ---- */

struct jval *jval_new(enum jval_type type)
{
	struct jval *v = calloc(1, sizeof(*v));

	if (v)
		v->type = type;
	if (v && type == JV_NUMBER && !(v->s = strdup("0"))) {
		free(v);
		return NULL;
	}
	if (v && type == JV_NUMBER)
		v->len = 1;
	if (v && type == JV_STRING && !(v->s = calloc(1, 1))) {
		free(v);
		return NULL;
	}
	return v;
}

struct jval *jval_new_strn(const char *s, size_t n)
{
	struct jval *v = calloc(1, sizeof(*v));

	if (!v || !(v->s = malloc(n + 1))) {
		free(v);
		return NULL;
	}
	v->type = JV_STRING;
	memcpy(v->s, s, n);
	v->s[n] = 0;
	v->len = n;
	return v;
}

struct jval *jval_new_str(const char *s)
{
	return jval_new_strn(s, strlen(s));
}

struct jval *jval_new_int(long long n)
{
	struct jval *v = jval_new(JV_NUMBER);
	char buf[24];

	if (!v)
		return NULL;
	snprintf(buf, sizeof(buf), "%lld", n);
	free(v->s);
	v->s = strdup(buf);
	v->len = strlen(buf);
	if (!v->s) {
		free(v);
		return NULL;
	}
	return v;
}

struct jval *jval_new_bool(bool b)
{
	struct jval *v = jval_new(JV_BOOL);

	if (v)
		v->b = b;
	return v;
}

void jval_free(struct jval *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		jval_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	free(v);
}

/* Room for one more item. */
static int grow(struct jval *v)
{
	size_t cap = v->cap ? v->cap * 2 : 4;
	struct jval **items;
	char **keys;

	if (v->n < v->cap)
		return 0;
	if (v->n >= JVAL_ITEMS)
		return -E2BIG;
	items = realloc(v->items, cap * sizeof(*items));
	if (!items)
		return -ENOMEM;
	v->items = items;
	if (v->type == JV_OBJECT) {
		keys = realloc(v->keys, cap * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		v->keys = keys;
	}
	v->cap = cap;
	return 0;
}

long jval_index(const struct jval *obj, const char *key)
{
	if (!obj || obj->type != JV_OBJECT)
		return -1;
	for (size_t i = 0; i < obj->n; i++)
		if (!strcmp(obj->keys[i], key))
			return (long)i;
	return -1;
}

int jval_set(struct jval *obj, const char *key, struct jval *v)
{
	long i = jval_index(obj, key);
	char *k;
	int r;

	if (!v)
		return -ENOMEM;
	if (!obj || obj->type != JV_OBJECT) {
		jval_free(v);
		return -EINVAL;
	}
	if (i >= 0) {
		jval_free(obj->items[i]);
		obj->items[i] = v;
		return 0;
	}
	r = grow(obj);
	k = r == 0 ? strdup(key) : NULL;
	if (!k) {
		jval_free(v);
		return r < 0 ? r : -ENOMEM;
	}
	obj->keys[obj->n] = k;
	obj->items[obj->n++] = v;
	return 0;
}

int jval_insert(struct jval *arr, size_t i, struct jval *v)
{
	int r;

	if (!v)
		return -ENOMEM;
	if (!arr || arr->type != JV_ARRAY || i > arr->n) {
		jval_free(v);
		return -EINVAL;
	}
	r = grow(arr);
	if (r < 0) {
		jval_free(v);
		return r;
	}
	memmove(arr->items + i + 1, arr->items + i, (arr->n - i) * sizeof(*arr->items));
	arr->items[i] = v;
	arr->n++;
	return 0;
}

int jval_push(struct jval *arr, struct jval *v)
{
	return jval_insert(arr, arr && arr->type == JV_ARRAY ? arr->n : (size_t)-1, v);
}

struct jval *jval_take(struct jval *v, size_t i)
{
	struct jval *item;

	if (!v || (v->type != JV_ARRAY && v->type != JV_OBJECT) || i >= v->n)
		return NULL;
	item = v->items[i];
	memmove(v->items + i, v->items + i + 1, (v->n - i - 1) * sizeof(*v->items));
	if (v->keys) {
		free(v->keys[i]);
		memmove(v->keys + i, v->keys + i + 1, (v->n - i - 1) * sizeof(*v->keys));
	}
	v->n--;
	return item;
}

struct jval *jval_dup(const struct jval *v)
{
	struct jval *c;

	if (!v)
		return NULL;
	c = v->type == JV_STRING || v->type == JV_NUMBER ? jval_new_strn(v->s, v->len) : jval_new(v->type);
	if (!c)
		return NULL;
	c->type = v->type;
	c->b = v->b;
	for (size_t i = 0; i < v->n; i++) {
		int r = v->type == JV_OBJECT ? jval_set(c, v->keys[i], jval_dup(v->items[i]))
					     : jval_push(c, jval_dup(v->items[i]));
		if (r < 0) {
			jval_free(c);
			return NULL;
		}
	}
	return c;
}

/* ---- looking up ---- */

struct jval *jval_get(const struct jval *obj, const char *key)
{
	long i = jval_index(obj, key);
	return i < 0 ? NULL : obj->items[i];
}

struct jval *jval_at(const struct jval *v, size_t i)
{
	return v && (v->type == JV_ARRAY || v->type == JV_OBJECT) && i < v->n ? v->items[i] : NULL;
}

const char *jval_str(const struct jval *v)
{
	return v && v->type == JV_STRING ? v->s : NULL;
}

/* One reference token of a pointer (at *p, after its '/'), unescaped into
 * out; *p moves past it.  -EINVAL for a bad escape or one too long. */
static int ptr_token(const char **p, char *out, size_t size)
{
	size_t n = 0;

	for (; **p && **p != '/'; (*p)++) {
		char c = **p;
		if (c == '~') {
			(*p)++;
			if (**p != '0' && **p != '1')
				return -EINVAL;
			c = **p == '0' ? '~' : '/';
		}
		if (n + 1 >= size)
			return -EINVAL;
		out[n++] = c;
	}
	out[n] = 0;
	return 0;
}

/* An array index token: digits without a leading zero ("-" is the caller's). */
static int ptr_index(const char *tok, size_t *out)
{
	uint64_t v;

	if (!tok[0] || (tok[0] == '0' && tok[1]) || u64_parse(tok, JVAL_ITEMS, &v) < 0)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

/* Walks to the parent of the pointer's last token: the parent, and the
 * token in last.  NULL when a step is missing (or the pointer is ""). */
static struct jval *ptr_parent(const struct jval *root, const char *ptr, char *last, size_t size)
{
	struct jval *v = (struct jval *)root;
	const char *p = ptr;

	if (*p != '/')
		return NULL;
	while (v && *p == '/') {
		p++;
		if (ptr_token(&p, last, size) < 0)
			return NULL;
		if (!*p)
			return v;
		if (v->type == JV_OBJECT) {
			v = jval_get(v, last);
		} else {
			size_t i;
			v = v->type == JV_ARRAY && ptr_index(last, &i) == 0 ? jval_at(v, i) : NULL;
		}
	}
	return NULL;
}

#define PTR_TOKEN_MAX 256

/* The item of parent named by tok, or NULL. */
static struct jval *child(const struct jval *parent, const char *tok, size_t *idx)
{
	size_t i;
	long k;

	if (parent->type == JV_OBJECT) {
		k = jval_index(parent, tok);
		*idx = k < 0 ? 0 : (size_t)k;
		return k < 0 ? NULL : parent->items[k];
	}
	if (parent->type != JV_ARRAY || ptr_index(tok, &i) < 0 || i >= parent->n)
		return NULL;
	*idx = i;
	return parent->items[i];
}

struct jval *jval_ptr(const struct jval *root, const char *ptr)
{
	char tok[PTR_TOKEN_MAX];
	struct jval *parent;
	size_t i;

	if (!root || !ptr)
		return NULL;
	if (!*ptr)
		return (struct jval *)root;
	parent = ptr_parent(root, ptr, tok, sizeof(tok));
	return parent ? child(parent, tok, &i) : NULL;
}

static bool num_equal(const struct jval *a, const struct jval *b)
{
	return !strcmp(a->s, b->s) || strtod(a->s, NULL) == strtod(b->s, NULL);
}

bool jval_equal(const struct jval *a, const struct jval *b)
{
	if (!a || !b || a->type != b->type || a->n != b->n)
		return false;
	switch (a->type) {
	case JV_NULL:
		return true;
	case JV_BOOL:
		return a->b == b->b;
	case JV_NUMBER:
		return num_equal(a, b);
	case JV_STRING:
		return a->len == b->len && !memcmp(a->s, b->s, a->len);
	case JV_ARRAY:
		for (size_t i = 0; i < a->n; i++)
			if (!jval_equal(a->items[i], b->items[i]))
				return false;
		return true;
	case JV_OBJECT: /* members in any order */
		for (size_t i = 0; i < a->n; i++)
			if (!jval_equal(a->items[i], jval_get(b, a->keys[i])))
				return false;
		return true;
	}
	return false;
}

/* ---- parsing ---- */

struct jp {
	const char *p;
	size_t len, off;
	int depth;
	char *err;
	size_t errlen;
	bool failed;
};

static void jp_fail(struct jp *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jp_fail(struct jp *j, const char *fmt, ...)
{
	size_t line = 1, col = 1, n;
	va_list ap;

	if (j->failed)
		return;
	j->failed = true;
	for (size_t i = 0; i < j->off && i < j->len; i++) {
		col = j->p[i] == '\n' ? 1 : col + 1;
		line += j->p[i] == '\n';
	}
	if (!j->errlen)
		return;
	n = (size_t)snprintf(j->err, j->errlen, "line %zu column %zu: ", line, col);
	if (n >= j->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(j->err + n, j->errlen - n, fmt, ap);
	va_end(ap);
}

static void jp_ws(struct jp *j)
{
	while (j->off < j->len && (j->p[j->off] == ' ' || j->p[j->off] == '\t' || j->p[j->off] == '\n' ||
				   j->p[j->off] == '\r'))
		j->off++;
}

static int jp_peek(const struct jp *j)
{
	return j->off < j->len ? (unsigned char)j->p[j->off] : -1;
}

/* The length of a valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t c;
	size_t k;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		k = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		k = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		k = 4, c = s[0] & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((k == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (k == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	return k;
}

static size_t utf8_put(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

static int jp_hex4(struct jp *j, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		int h = j->off < j->len ? hex_digit(j->p[j->off]) : -1;
		if (h < 0)
			return -1;
		v = v << 4 | (uint32_t)h;
		j->off++;
	}
	*out = v;
	return 0;
}

/* \uXXXX (the "\u" read), with a surrogate pair's second half. */
static int jp_unicode(struct jp *j, uint32_t *c)
{
	uint32_t lo;

	if (jp_hex4(j, c) < 0)
		return -1;
	if (*c >= 0xdc00 && *c <= 0xdfff)
		return -1;
	if (*c >= 0xd800 && *c <= 0xdbff) {
		if (j->len - j->off < 6 || j->p[j->off] != '\\' || j->p[j->off + 1] != 'u')
			return -1;
		j->off += 2;
		if (jp_hex4(j, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
			return -1;
		*c = 0x10000 + ((*c - 0xd800) << 10) + (lo - 0xdc00);
	}
	return *c == 0 ? -1 : 0;
}

/* A string (at '"'): its bytes, malloc'd, in *out (*n bytes). */
static int jp_string(struct jp *j, char **out, size_t *n)
{
	size_t start = ++j->off, cap = 16, o = 0;
	char *s = malloc(cap);
	bool oom = !s;

	while (!oom && j->off < j->len) {
		unsigned char c = (unsigned char)j->p[j->off];
		size_t k = 1;
		char tmp[4];
		if (c == '"') {
			j->off++;
			s[o] = 0;
			*out = s;
			*n = o;
			return 0;
		}
		if (c < 0x20) {
			jp_fail(j, "a control character in a string");
			break;
		}
		if (c == '\\') {
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			char x = j->off + 1 < j->len ? j->p[j->off + 1] : 0;
			const char *e = x ? strchr(from, x) : NULL;
			uint32_t u;
			j->off += x ? 2 : 1;
			if (e) {
				tmp[0] = to[e - from];
			} else if (x == 'u' && jp_unicode(j, &u) == 0) {
				k = utf8_put(u, tmp);
			} else {
				jp_fail(j, "a bad escape in a string (\\u0000 is refused)");
				break;
			}
		} else {
			k = utf8_len((const unsigned char *)j->p + j->off, j->len - j->off);
			if (!k) {
				jp_fail(j, "not UTF-8");
				break;
			}
			memcpy(tmp, j->p + j->off, k);
			j->off += k;
		}
		if (o + k + 1 > cap) {
			char *b = realloc(s, cap * 2 + k);
			if (!b) {
				oom = true;
				break;
			}
			s = b;
			cap = cap * 2 + k;
		}
		memcpy(s + o, tmp, k);
		o += k;
	}
	if (!j->failed) {
		j->off = j->off < j->len ? j->off : start;
		jp_fail(j, oom ? "no memory" : "a string without its closing quote");
	}
	free(s);
	return -1;
}

static size_t jp_digits(struct jp *j)
{
	size_t n = 0;

	while (j->off < j->len && j->p[j->off] >= '0' && j->p[j->off] <= '9') {
		j->off++;
		n++;
	}
	return n;
}

static struct jval *jp_number(struct jp *j)
{
	size_t start = j->off;

	if (jp_peek(j) == '-')
		j->off++;
	if (jp_peek(j) == '0')
		j->off++;
	else if (!jp_digits(j))
		goto bad;
	if (jp_peek(j) == '.') {
		j->off++;
		if (!jp_digits(j))
			goto bad;
	}
	if (jp_peek(j) == 'e' || jp_peek(j) == 'E') {
		j->off++;
		if (jp_peek(j) == '+' || jp_peek(j) == '-')
			j->off++;
		if (!jp_digits(j))
			goto bad;
	}
	if (j->off - start > 64)
		goto bad;
	struct jval *v = jval_new_strn(j->p + start, j->off - start);
	if (v)
		v->type = JV_NUMBER;
	else
		jp_fail(j, "no memory");
	return v;
bad:
	jp_fail(j, "a bad number");
	return NULL;
}

static bool jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if (j->len - j->off < n || memcmp(j->p + j->off, lit, n))
		return false;
	j->off += n;
	return true;
}

static struct jval *jp_value(struct jp *j);

/* The members of an object or the elements of an array (at '{' or '['). */
static struct jval *jp_container(struct jp *j, bool object)
{
	struct jval *v = jval_new(object ? JV_OBJECT : JV_ARRAY);
	char close = object ? '}' : ']';

	if (!v) {
		jp_fail(j, "no memory");
		return NULL;
	}
	if (++j->depth > JVAL_DEPTH) {
		jp_fail(j, "nested deeper than %d", JVAL_DEPTH);
		goto fail;
	}
	j->off++;
	jp_ws(j);
	if (jp_peek(j) == close) {
		j->off++;
		j->depth--;
		return v;
	}
	for (;;) {
		char *key = NULL;
		size_t klen, at;
		int r;
		jp_ws(j);
		at = j->off;
		if (object) {
			if (jp_peek(j) != '"') {
				jp_fail(j, "a member name expected");
				goto fail;
			}
			if (jp_string(j, &key, &klen) < 0)
				goto fail;
			jp_ws(j);
			if (jp_peek(j) != ':') {
				jp_fail(j, "':' expected");
				free(key);
				goto fail;
			}
			if (jval_index(v, key) >= 0) {
				j->off = at;
				jp_fail(j, "the key \"%.40s\" twice", key);
				free(key);
				goto fail;
			}
			j->off++;
		}
		struct jval *item = jp_value(j);
		if (!item) {
			free(key);
			goto fail;
		}
		r = object ? jval_set(v, key, item) : jval_push(v, item);
		free(key);
		if (r < 0) {
			if (r == -E2BIG)
				jp_fail(j, "more than %d items in one container", JVAL_ITEMS);
			else
				jp_fail(j, "no memory");
			goto fail;
		}
		jp_ws(j);
		if (jp_peek(j) == ',') {
			j->off++;
			continue;
		}
		if (jp_peek(j) == close) {
			j->off++;
			j->depth--;
			return v;
		}
		jp_fail(j, "',' or '%c' expected", close);
		goto fail;
	}
fail:
	jval_free(v);
	return NULL;
}

static struct jval *jp_value(struct jp *j)
{
	struct jval *v = NULL;
	int c;

	jp_ws(j);
	c = jp_peek(j);
	if (c == '{' || c == '[')
		return jp_container(j, c == '{');
	if (c == '"') {
		char *s;
		size_t n;
		if (jp_string(j, &s, &n) < 0)
			return NULL;
		v = jval_new(JV_NULL);
		if (!v) {
			free(s);
			jp_fail(j, "no memory");
			return NULL;
		}
		v->type = JV_STRING;
		v->s = s;
		v->len = n;
		return v;
	}
	if (c == '-' || (c >= '0' && c <= '9'))
		return jp_number(j);
	if (jp_lit(j, "true")) {
		v = jval_new_bool(true);
	} else if (jp_lit(j, "false")) {
		v = jval_new_bool(false);
	} else if (jp_lit(j, "null")) {
		v = jval_new(JV_NULL);
	} else {
		jp_fail(j, c < 0 ? "the text ends where a value should be" : "a value expected");
		return NULL;
	}
	if (!v)
		jp_fail(j, "no memory");
	return v;
}

struct jval *jval_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct jp j = { .p = text, .len = len, .err = err, .errlen = errlen };
	struct jval *v;

	if (errlen)
		err[0] = 0;
	v = jp_value(&j);
	jp_ws(&j);
	if (v && j.off < j.len) {
		jp_fail(&j, "more after the value");
		jval_free(v);
		return NULL;
	}
	return v;
}

/* ---- writing ---- */

struct jw {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (w->oom)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = (w->len + n + 1) * 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->oom = true;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void jw_str(struct jw *w, const char *s, size_t n)
{
	size_t run = 0;

	jw_put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" :
				c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
		char u[8];
		if (!e && c >= 0x20) {
			run++;
			continue;
		}
		jw_put(w, s + i - run, run);
		run = 0;
		if (!e) {
			snprintf(u, sizeof(u), "\\u%04x", c);
			e = u;
		}
		jw_put(w, e, strlen(e));
	}
	jw_put(w, s + n - run, run);
	jw_put(w, "\"", 1);
}

static void jw_newline(struct jw *w, int indent, int depth)
{
	if (!indent)
		return;
	jw_put(w, "\n", 1);
	for (int i = 0; i < indent * depth; i++)
		jw_put(w, " ", 1);
}

static void jw_value(struct jw *w, const struct jval *v, int indent, int depth)
{
	bool obj = v->type == JV_OBJECT;

	switch (v->type) {
	case JV_NULL:
		jw_put(w, "null", 4);
		return;
	case JV_BOOL:
		jw_put(w, v->b ? "true" : "false", v->b ? 4 : 5);
		return;
	case JV_NUMBER:
		jw_put(w, v->s, v->len);
		return;
	case JV_STRING:
		jw_str(w, v->s, v->len);
		return;
	case JV_ARRAY:
	case JV_OBJECT:
		break;
	}
	jw_put(w, obj ? "{" : "[", 1);
	for (size_t i = 0; i < v->n; i++) {
		if (i)
			jw_put(w, ",", 1);
		jw_newline(w, indent, depth + 1);
		if (obj) {
			jw_str(w, v->keys[i], strlen(v->keys[i]));
			jw_put(w, indent ? ": " : ":", indent ? 2 : 1);
		}
		jw_value(w, v->items[i], indent, depth + 1);
	}
	if (v->n)
		jw_newline(w, indent, depth);
	jw_put(w, obj ? "}" : "]", 1);
}

char *jval_encode(const struct jval *v, int indent, size_t *len)
{
	struct jw w = { 0 };

	jw_value(&w, v, indent, 0);
	if (w.oom) {
		free(w.buf);
		return NULL;
	}
	if (len)
		*len = w.len;
	return w.buf;
}

/* ---- JSON patch (RFC 6902) ---- */

struct jop {
	const char *op, *path, *from;
	const struct jval *value;
	size_t index; /* in the patch, for messages */
	char *err;
	size_t errlen;
};

static int op_fail(const struct jop *o, const char *why)
{
	char cut[STR_CUT_SIZE];

	snprintf(o->err, o->errlen, "operation %zu (%s %s): %s", o->index, o->op ? o->op : "?",
		 o->path ? str_cut(o->path, strlen(o->path), cut, sizeof(cut)) : "?", why);
	return -EINVAL;
}

/* Takes the value at path out of doc (the root cannot be taken). */
static struct jval *op_take(struct jval *doc, const char *path)
{
	char tok[PTR_TOKEN_MAX];
	struct jval *parent = ptr_parent(doc, path, tok, sizeof(tok));
	size_t i;

	return parent && child(parent, tok, &i) ? jval_take(parent, i) : NULL;
}

/* Puts v at path, as "add" does: a new member, a replaced member, an
 * element inserted before index or appended ("-").  Takes v. */
static int op_put(struct jval **doc, const char *path, struct jval *v, const struct jop *o)
{
	char tok[PTR_TOKEN_MAX];
	struct jval *parent;
	size_t i;

	if (!v)
		return -ENOMEM;
	if (!*path) {
		jval_free(*doc);
		*doc = v;
		return 0;
	}
	parent = ptr_parent(*doc, path, tok, sizeof(tok));
	if (parent && parent->type == JV_OBJECT)
		return jval_set(parent, tok, v);
	if (parent && parent->type == JV_ARRAY && (!strcmp(tok, "-") || (ptr_index(tok, &i) == 0 && i <= parent->n)))
		return jval_insert(parent, strcmp(tok, "-") ? i : parent->n, v);
	jval_free(v);
	return op_fail(o, parent ? "no such index" : "the path's parent does not exist");
}

/* The value at path exchanged for a copy of o->value, in its place. */
static int op_replace(struct jval **doc, const struct jop *o)
{
	char tok[PTR_TOKEN_MAX];
	struct jval *parent, *v;
	size_t i;

	if (!*o->path)
		return op_put(doc, "", jval_dup(o->value), o);
	parent = ptr_parent(*doc, o->path, tok, sizeof(tok));
	if (!parent || !child(parent, tok, &i))
		return op_fail(o, "nothing there");
	if (!(v = jval_dup(o->value)))
		return -ENOMEM;
	jval_free(parent->items[i]);
	parent->items[i] = v;
	return 0;
}

static int op_apply(struct jval **doc, const struct jop *o)
{
	struct jval *v = NULL;

	if (!strcmp(o->op, "add"))
		return o->value ? op_put(doc, o->path, jval_dup(o->value), o) : op_fail(o, "no value");
	if (!strcmp(o->op, "test")) {
		if (!o->value)
			return op_fail(o, "no value");
		return jval_equal(jval_ptr(*doc, o->path), o->value) ? 0 : op_fail(o, "the value differs");
	}
	if (!strcmp(o->op, "remove")) {
		if (!(v = op_take(*doc, o->path)))
			return op_fail(o, "nothing there");
		jval_free(v);
		return 0;
	}
	if (!strcmp(o->op, "replace"))
		return o->value ? op_replace(doc, o) : op_fail(o, "no value");
	if (!strcmp(o->op, "move") || !strcmp(o->op, "copy")) {
		size_t n = o->from ? strlen(o->from) : 0;
		if (!o->from)
			return op_fail(o, "no from");
		if (!strcmp(o->op, "move") && !strncmp(o->path, o->from, n) && o->path[n] == '/')
			return op_fail(o, "a value cannot move into itself");
		v = !strcmp(o->op, "copy") ? jval_dup(jval_ptr(*doc, o->from)) : op_take(*doc, o->from);
		return v ? op_put(doc, o->path, v, o) : op_fail(o, "nothing at from");
	}
	return op_fail(o, "not an operation of RFC 6902");
}

int jval_patch(struct jval **doc, const struct jval *patch, char *err, size_t errlen)
{
	struct jval *work;
	int r = 0;

	if (!patch || patch->type != JV_ARRAY) {
		snprintf(err, errlen, "a JSON patch is an array of operations");
		return -EINVAL;
	}
	work = jval_dup(*doc);
	if (!work)
		return -ENOMEM;
	for (size_t i = 0; i < patch->n && r == 0; i++) {
		const struct jval *op = patch->items[i];
		struct jop o = { .op = jval_str(jval_get(op, "op")), .path = jval_str(jval_get(op, "path")),
				 .from = jval_str(jval_get(op, "from")), .value = jval_get(op, "value"),
				 .index = i, .err = err, .errlen = errlen };
		if (!o.op || !o.path || (*o.path && *o.path != '/') || (o.from && *o.from && *o.from != '/'))
			r = op_fail(&o, "needs \"op\" and a \"path\" that is a JSON pointer");
		else
			r = op_apply(&work, &o);
		if (r == -ENOMEM)
			snprintf(err, errlen, "no memory");
	}
	if (r < 0) {
		jval_free(work);
		return r;
	}
	jval_free(*doc);
	*doc = work;
	return 0;
}
