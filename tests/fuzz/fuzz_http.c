/* libFuzzer target for the agent's HTTP/1.1 framing (src/agent/http.c):
 * the bytes a client (or an upstream) sends on one connection.
 * Input: a mode byte (bit 0: responses, not requests; bits 1-3: the
 * request's method for responses), a byte choosing the split points, then
 * the stream, read as up to 16 messages one after another.
 * Properties: a head parses the same whether its bytes come at once or in
 * pieces, and so does a body's end; whatever is parsed lies inside the
 * head, within the caps; a request matching two filters makes them
 * overlap, overlap is symmetric, and a filter with another value for one
 * of the request's fields does not match it. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/http.h"
#include "fuzz.h"

static void check_span(const struct http_head *h, struct http_span s)
{
	CHECK((size_t)s.off + s.len <= h->len);
}

static void check_head(const struct http_head *h, ssize_t r)
{
	CHECK(r == h->len && r <= HTTP_HEAD_MAX && h->skipped < h->len);
	CHECK(h->nfields <= HTTP_FIELDS_MAX);
	for (unsigned i = 0; i < h->nfields; i++) {
		check_span(h, h->fields[i].name);
		check_span(h, h->fields[i].value);
		CHECK(h->fields[i].name.len > 0);
	}
	if (h->kind == HTTP_REQUEST) {
		check_span(h, h->target);
		check_span(h, h->path);
		CHECK(h->path.off >= h->target.off &&
		      h->path.off + h->path.len <= h->target.off + h->target.len);
		CHECK(h->method != HTTP_M_CONNECT);
	} else {
		CHECK(h->status >= 100 && h->status <= 999);
	}
	CHECK(h->framing != HTTP_BODY_CLOSE || (h->kind == HTTP_RESPONSE && !h->keep_alive));
}

/* Filters made of the request's own fields and path must match it. */
static void check_filters(const struct http_head *h)
{
	struct http_filter f[3] = { { 0 } };
	char spec[HTTP_FILTER_NAME_MAX + HTTP_FILTER_VALUE_MAX + 8], err[200];
	unsigned n = h->nfields < 3 ? h->nfields : 3;

	for (unsigned i = 0; i < n; i++) {
		const struct http_field *fl = &h->fields[i];
		snprintf(spec, sizeof(spec), "%.*s=%.*s", fl->name.len, http_at(h, fl->name), fl->value.len,
			 http_at(h, fl->value));
		if (memchr(http_at(h, fl->value), 0, fl->value.len) || http_filter_add(&f[i], spec, err, sizeof(err)))
			continue;
		if (i == 1 && h->path.len && h->path.len <= HTTP_FILTER_PATH_MAX && http_at(h, h->path)[0] == '/') {
			snprintf(spec, sizeof(spec), "%.*s", (int)(h->path.len + 1) / 2, http_at(h, h->path));
			if (http_filter_set_path(&f[i], spec, err, sizeof(err)) == 0)
				CHECK(http_filter_match(&f[i], h) || http_head_count(h, f[i].f[0].name) > 1);
		}
	}
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++) {
			bool both = http_filter_match(&f[i], h) && http_filter_match(&f[j], h);
			CHECK(http_filters_overlap(&f[i], &f[j]) == http_filters_overlap(&f[j], &f[i]));
			CHECK(!both || http_filters_overlap(&f[i], &f[j]));
		}
	if (n && f[0].n && http_head_count(h, f[0].f[0].name) == 1) {
		struct http_filter other = f[0];
		CHECK(http_filter_match(&f[0], h));
		if (strlen(other.f[0].value) < HTTP_FILTER_VALUE_MAX) {
			strcat(other.f[0].value, "x");
			CHECK(!http_filter_match(&other, h) && !http_filters_overlap(&other, &f[0]));
		}
	}
}

/* The body from s, at once and in pieces of step bytes: its length when it
 * ends in s, else 0. */
static size_t check_body(const struct http_head *h, const char *s, size_t n, size_t step)
{
	struct http_body one, pieces;
	ssize_t k1 = 0, k2, used = 0;

	http_body_init(&one, h);
	http_body_init(&pieces, h);
	k1 = http_body_feed(&one, s, n);
	for (size_t at = 0; at < n && !pieces.done; at += step) {
		size_t len = n - at < step ? n - at : step;
		k2 = http_body_feed(&pieces, s + at, len);
		if (k2 < 0) {
			CHECK(k1 == k2);
			return 0;
		}
		CHECK((size_t)k2 <= len);
		used += k2;
		if ((size_t)k2 < len)
			CHECK(pieces.done);
	}
	CHECK(k1 >= 0 && k1 == used && one.done == pieces.done && (size_t)k1 <= n);
	if (!one.done) {
		int r = http_body_eof(&one);
		CHECK(r == 0 ? h->framing == HTTP_BODY_CLOSE : r == -EPIPE);
		return 0;
	}
	return (size_t)k1;
}

static size_t one_message(enum http_kind kind, enum http_method req, const char *s, size_t n, size_t step)
{
	static struct http_head whole, h;
	ssize_t r1, r2 = 0;
	size_t body;

	http_head_init(&whole, kind, req);
	r1 = http_head_parse(&whole, s, n);
	http_head_init(&h, kind, req);
	for (size_t k = step; r2 == 0; k += step) {
		r2 = http_head_parse(&h, s, k < n ? k : n);
		if (k >= n)
			break;
	}
	CHECK(r1 == r2);
	if (r1 <= 0) {
		CHECK(r1 == 0 || whole.why);
		return 0;
	}
	check_head(&whole, r1);
	CHECK(h.framing == whole.framing && h.length == whole.length && h.nfields == whole.nfields &&
	      h.keep_alive == whole.keep_alive && h.upgrade == whole.upgrade);
	if (kind == HTTP_REQUEST)
		check_filters(&whole);
	body = check_body(&whole, s + r1, n - (size_t)r1, step);
	if (!body && whole.framing != HTTP_BODY_NONE &&
	    !(whole.framing == HTTP_BODY_LENGTH && whole.length == 0))
		return 0;
	return (size_t)r1 + body;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum http_kind kind;
	enum http_method req;
	const char *s = (const char *)data + 2;
	size_t n, pos = 0;

	if (size < 2)
		return 0;
	kind = data[0] & 1 ? HTTP_RESPONSE : HTTP_REQUEST;
	req = (enum http_method)((data[0] >> 1) % 5);
	n = size - 2;
	for (int msg = 0; msg < 16 && pos < n; msg++) {
		size_t len = one_message(kind, req, s + pos, n - pos, 1 + (data[1] + (size_t)msg * 7) % 97);
		if (len == 0)
			break;
		pos += len;
	}
	return 0;
}
