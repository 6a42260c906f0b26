/* A small validating JSON walker (jsonget.h).  Every read checks the
 * cursor against the end; recursion is bounded by JSONGET_DEPTH. */
#include "common/jsonget.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

struct jg {
	const char *p;
	size_t len, off;
};

static void jg_ws(struct jg *j)
{
	while (j->off < j->len && strchr(" \t\r\n", j->p[j->off]) && j->p[j->off])
		j->off++;
}

static bool jg_lit(struct jg *j, const char *lit)
{
	size_t n = strlen(lit);

	if (j->len - j->off < n || memcmp(j->p + j->off, lit, n))
		return false;
	j->off += n;
	return true;
}

/* Scans a string at j->off ('"' expected); with out, unescapes into it
 * (*n bytes used, truncated at cap - 1, *trunc set).  false if malformed. */
static bool jg_string(struct jg *j, char *out, size_t cap, size_t *n, bool *trunc)
{
	if (j->off >= j->len || j->p[j->off] != '"')
		return false;
	j->off++;
	while (j->off < j->len) {
		unsigned char c = (unsigned char)j->p[j->off++];
		if (c == '"')
			return true;
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (j->off >= j->len)
				return false;
			c = (unsigned char)j->p[j->off++];
			if (c == 'u') {
				int v = 0;
				for (int i = 0; i < 4; i++) {
					int h = j->off < j->len ? hex_digit(j->p[j->off]) : -1;
					if (h < 0)
						return false;
					v = v * 16 + h;
					j->off++;
				}
				c = v < 0x80 && v >= 0x20 ? (unsigned char)v : '?';
			} else if (strchr("\"\\/bfnrt", c) && c) {
				static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
				const char *k = strchr(from, c);
				c = k && c ? (unsigned char)to[k - from] : c;
			} else {
				return false;
			}
		}
		if (out) {
			if (*n + 1 < cap)
				out[(*n)++] = (char)c;
			else
				*trunc = true;
		}
	}
	return false;
}

static bool jg_number(struct jg *j)
{
	size_t start = j->off;

	if (j->off < j->len && j->p[j->off] == '-')
		j->off++;
	if (j->off >= j->len || j->p[j->off] < '0' || j->p[j->off] > '9')
		return false;
	if (j->p[j->off] == '0')
		j->off++;
	else
		while (j->off < j->len && j->p[j->off] >= '0' && j->p[j->off] <= '9')
			j->off++;
	if (j->off < j->len && j->p[j->off] == '.') {
		j->off++;
		if (j->off >= j->len || j->p[j->off] < '0' || j->p[j->off] > '9')
			return false;
		while (j->off < j->len && j->p[j->off] >= '0' && j->p[j->off] <= '9')
			j->off++;
	}
	if (j->off < j->len && (j->p[j->off] == 'e' || j->p[j->off] == 'E')) {
		j->off++;
		if (j->off < j->len && (j->p[j->off] == '+' || j->p[j->off] == '-'))
			j->off++;
		if (j->off >= j->len || j->p[j->off] < '0' || j->p[j->off] > '9')
			return false;
		while (j->off < j->len && j->p[j->off] >= '0' && j->p[j->off] <= '9')
			j->off++;
	}
	return j->off > start;
}

static bool jg_value(struct jg *j, int depth);

/* Object or array body after its opening bracket. */
static bool jg_container(struct jg *j, int depth, bool object)
{
	char close = object ? '}' : ']';

	jg_ws(j);
	if (j->off < j->len && j->p[j->off] == close) {
		j->off++;
		return true;
	}
	for (;;) {
		if (object) {
			jg_ws(j);
			if (!jg_string(j, NULL, 0, NULL, NULL))
				return false;
			jg_ws(j);
			if (j->off >= j->len || j->p[j->off++] != ':')
				return false;
		}
		if (!jg_value(j, depth + 1))
			return false;
		jg_ws(j);
		if (j->off >= j->len)
			return false;
		if (j->p[j->off] == close) {
			j->off++;
			return true;
		}
		if (j->p[j->off++] != ',')
			return false;
	}
}

static bool jg_value(struct jg *j, int depth)
{
	if (depth > JSONGET_DEPTH)
		return false;
	jg_ws(j);
	if (j->off >= j->len)
		return false;
	switch (j->p[j->off]) {
	case '{': j->off++; return jg_container(j, depth, true);
	case '[': j->off++; return jg_container(j, depth, false);
	case '"': return jg_string(j, NULL, 0, NULL, NULL);
	case 't': return jg_lit(j, "true");
	case 'f': return jg_lit(j, "false");
	case 'n': return jg_lit(j, "null");
	default: return jg_number(j);
	}
}

int jsonget_valid(const char *doc, size_t len)
{
	struct jg j = { doc, len, 0 };

	if (!jg_value(&j, 0))
		return -EBADMSG;
	jg_ws(&j);
	return j.off == len ? 0 : -EBADMSG;
}

/* Compares the key string at j->off (already known valid) to seg[0..n). */
static bool jg_key_is(struct jg *j, const char *seg, size_t n)
{
	char key[128];
	size_t used = 0;
	bool trunc = false;

	if (!jg_string(j, key, sizeof(key), &used, &trunc))
		return false;
	return !trunc && used == n && !memcmp(key, seg, n);
}

/* An array's element seg[0..n) (decimal digits): moves j there. */
static bool jg_index(struct jg *j, const char *seg, size_t n)
{
	size_t idx = 0;

	for (size_t i = 0; i < n; i++) {
		if (seg[i] < '0' || seg[i] > '9' || idx > 100000)
			return false;
		idx = idx * 10 + (size_t)(seg[i] - '0');
	}
	j->off++;
	jg_ws(j);
	if (n == 0 || j->p[j->off] == ']')
		return false;
	for (; idx > 0; idx--) {
		jg_value(j, 0);
		jg_ws(j);
		if (j->p[j->off++] == ']')
			return false;
	}
	return true;
}

/* Moves j to the value at path within the (valid) document; false if absent. */
static bool jg_find(struct jg *j, const char *path)
{
	while (*path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		bool found = false;

		jg_ws(j);
		if (j->off < j->len && j->p[j->off] == '[') {
			if (!jg_index(j, path, n))
				return false;
			path += n + (dot ? 1 : 0);
			continue;
		}
		if (j->off >= j->len || j->p[j->off] != '{')
			return false;
		j->off++;
		jg_ws(j);
		if (j->p[j->off] == '}')
			return false;
		while (!found) {
			jg_ws(j);
			found = jg_key_is(j, path, n);
			jg_ws(j);
			j->off++; /* ':' */
			if (found)
				break;
			jg_value(j, 0);
			jg_ws(j);
			if (j->p[j->off++] == '}')
				return false;
		}
		path += n + (dot ? 1 : 0);
	}
	jg_ws(j);
	return true;
}

/* Validates doc, then finds path.  false if either fails. */
static bool jg_locate(struct jg *j, const char *doc, size_t len, const char *path)
{
	*j = (struct jg){ doc, len, 0 };
	return jsonget_valid(doc, len) == 0 && jg_find(j, path);
}

enum jsonget_type jsonget_type(const char *doc, size_t len, const char *path)
{
	struct jg j;

	if (!jg_locate(&j, doc, len, path))
		return 0;
	switch (j.p[j.off]) {
	case '{': return JG_OBJECT;
	case '[': return JG_ARRAY;
	case '"': return JG_STRING;
	case 't':
	case 'f': return JG_BOOL;
	case 'n': return JG_NULL;
	default: return JG_NUMBER;
	}
}

int jsonget_str(const char *doc, size_t len, const char *path, char *out, size_t outlen)
{
	struct jg j;
	size_t n = 0;
	bool trunc = false;

	if (!outlen || !jg_locate(&j, doc, len, path) || j.p[j.off] != '"')
		return -ENOENT;
	jg_string(&j, out, outlen, &n, &trunc);
	out[n] = 0;
	return trunc ? -ENOSPC : 0;
}

int jsonget_bool(const char *doc, size_t len, const char *path, bool *out)
{
	struct jg j;

	if (!jg_locate(&j, doc, len, path) || (j.p[j.off] != 't' && j.p[j.off] != 'f'))
		return -ENOENT;
	*out = j.p[j.off] == 't';
	return 0;
}

int jsonget_u64(const char *doc, size_t len, const char *path, uint64_t *out)
{
	struct jg j;
	uint64_t v = 0;

	if (!jg_locate(&j, doc, len, path) || j.p[j.off] < '0' || j.p[j.off] > '9')
		return -ENOENT;
	for (; j.off < len && j.p[j.off] >= '0' && j.p[j.off] <= '9'; j.off++) {
		if (v > (UINT64_MAX - (uint64_t)(j.p[j.off] - '0')) / 10)
			return -ENOENT;
		v = v * 10 + (uint64_t)(j.p[j.off] - '0');
	}
	if (j.off < len && strchr(".eE", j.p[j.off]) && j.p[j.off])
		return -ENOENT; /* not an integer */
	*out = v;
	return 0;
}

int jsonget_strs(const char *doc, size_t len, const char *path, char *out, size_t width, int max)
{
	struct jg j;
	int count = 0;

	if (!width || !jg_locate(&j, doc, len, path) || j.p[j.off] != '[')
		return -ENOENT;
	j.off++;
	jg_ws(&j);
	if (j.p[j.off] == ']')
		return 0;
	for (;;) {
		jg_ws(&j);
		if (j.p[j.off] == '"' && count < max) {
			size_t n = 0;
			bool trunc = false;
			jg_string(&j, out + (size_t)count * width, width, &n, &trunc);
			out[(size_t)count * width + n] = 0;
			count++;
		} else {
			jg_value(&j, 0);
		}
		jg_ws(&j);
		if (j.p[j.off++] == ']')
			return count;
	}
}
