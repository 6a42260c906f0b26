/* HTTP/1.1 framing and filters (src/agent/http.c): heads, bodies, the
 * smuggling defences, the caps, every message split at every byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "agent/http.h"

/* Parses a whole message in one piece: the head's result (head length or
 * -errno); *total gets head + body bytes when the body ends in s. */
static ssize_t parse_msg(struct http_head *h, enum http_kind kind, enum http_method req, const char *s,
			 size_t n, size_t *total)
{
	struct http_body b;
	ssize_t r, k;

	http_head_init(h, kind, req);
	r = http_head_parse(h, s, n);
	*total = 0;
	if (r <= 0)
		return r;
	http_body_init(&b, h);
	k = http_body_feed(&b, s + r, n - (size_t)r);
	if (k < 0)
		return k;
	if (b.done)
		*total = (size_t)(r + k);
	return r;
}

/* The same message cut in two at every byte, and fed byte by byte: the
 * head parser and the body tracker must agree with the one-piece parse. */
static void check_splits(enum http_kind kind, enum http_method req, const char *s, size_t n)
{
	struct http_head whole, h;
	size_t total;
	ssize_t r = parse_msg(&whole, kind, req, s, n, &total);

	for (size_t cut = 0; cut <= n; cut++) {
		struct http_body b;
		ssize_t hr, k1, k2;
		http_head_init(&h, kind, req);
		hr = http_head_parse(&h, s, cut);
		if (hr == 0)
			hr = http_head_parse(&h, s, n);
		assert_int_equal(hr, r);
		if (r <= 0)
			continue;
		assert_int_equal(h.framing, whole.framing);
		assert_int_equal(h.nfields, whole.nfields);
		http_body_init(&b, &h);
		size_t mid = cut > (size_t)hr ? cut : (size_t)hr;
		k1 = http_body_feed(&b, s + hr, mid - (size_t)hr);
		if (k1 < 0 || b.done) {
			assert_true(k1 < 0 || total == (size_t)hr + (size_t)k1);
			continue;
		}
		k2 = http_body_feed(&b, s + mid, n - mid);
		if (k2 >= 0 && b.done)
			assert_int_equal((size_t)hr + (size_t)k1 + (size_t)k2, total);
		else if (k2 >= 0)
			assert_int_equal(total, 0);
	}
	/* byte by byte, head and body */
	http_head_init(&h, kind, req);
	for (size_t i = 1; i <= n; i++) {
		ssize_t hr = http_head_parse(&h, s, i);
		if (hr == 0)
			continue;
		assert_int_equal(hr, r);
		if (hr < 0)
			return;
		struct http_body b;
		size_t used = (size_t)hr;
		http_body_init(&b, &h);
		for (size_t j = (size_t)hr; j < n && !b.done; j++) {
			ssize_t k = http_body_feed(&b, s + j, 1);
			if (k < 0)
				return;
			used += (size_t)k;
		}
		assert_int_equal(b.done ? used : 0, total);
		return;
	}
}

#define PARSE(h, kind, req, lit, total) parse_msg(h, kind, req, lit, sizeof(lit) - 1, total)
#define REQ(h, lit, total) PARSE(h, HTTP_REQUEST, HTTP_M_OTHER, lit, total)
#define SPLITS(kind, req, lit) check_splits(kind, req, lit, sizeof(lit) - 1)

static void assert_span(const struct http_head *h, struct http_span s, const char *want)
{
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(http_at(h, s), want, s.len);
}

static void test_get(void **state)
{
	static const char m[] = "GET /a/b?x=1 HTTP/1.1\r\nHost: web\r\nX-Dev:  alice \r\nAccept: */*\r\n\r\nGET";
	struct http_head h;
	size_t total, len;
	const char *v;
	(void)state;
	assert_int_equal(REQ(&h, m, &total), sizeof(m) - 4);
	assert_int_equal(total, sizeof(m) - 4); /* "GET" is the next request's */
	assert_int_equal(h.method, HTTP_M_GET);
	assert_span(&h, h.method_name, "GET");
	assert_span(&h, h.target, "/a/b?x=1");
	assert_span(&h, h.path, "/a/b");
	assert_int_equal(h.minor, 1);
	assert_int_equal(h.framing, HTTP_BODY_NONE);
	assert_true(h.keep_alive);
	assert_false(h.upgrade);
	assert_int_equal(h.nfields, 3);
	v = http_head_get(&h, "x-dev", &len); /* any case, no whitespace around */
	assert_non_null(v);
	assert_int_equal(len, 5);
	assert_memory_equal(v, "alice", 5);
	assert_null(http_head_get(&h, "x-de", &len));
	assert_int_equal(http_head_count(&h, "HOST"), 1);
	SPLITS(HTTP_REQUEST, HTTP_M_OTHER, m);
}

static void test_targets(void **state)
{
	struct http_head h;
	size_t total;
	(void)state;
	assert_true(REQ(&h, "GET http://web:80/p/q?z HTTP/1.1\r\nHost: web\r\n\r\n", &total) > 0);
	assert_span(&h, h.path, "/p/q");
	assert_true(REQ(&h, "GET http://web HTTP/1.1\r\nHost: web\r\n\r\n", &total) > 0);
	assert_span(&h, h.path, "");
	assert_true(REQ(&h, "OPTIONS * HTTP/1.1\r\nHost: web\r\n\r\n", &total) > 0);
	assert_int_equal(h.method, HTTP_M_OPTIONS);
	assert_span(&h, h.path, "*");
	assert_int_equal(REQ(&h, "GET * HTTP/1.1\r\nHost: web\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "GET web:80 HTTP/1.1\r\nHost: web\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "CONNECT web:80 HTTP/1.1\r\nHost: web\r\n\r\n", &total), -ENOSYS);
	assert_int_equal(http_error_status(-ENOSYS), 501);
	assert_int_equal(REQ(&h, "GET /a b HTTP/1.1\r\nHost: web\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "GET  / HTTP/1.1\r\nHost: web\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "GET /\xff HTTP/1.1\r\nHost: web\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "G(T / HTTP/1.1\r\nHost: web\r\n\r\n", &total), -EBADMSG);
	/* empty lines before a request line are skipped (RFC 9112 2.2) */
	assert_int_equal(REQ(&h, "\r\n\r\nGET / HTTP/1.1\r\nHost: w\r\n\r\n", &total), 31);
	assert_int_equal(h.skipped, 4);
	assert_span(&h, h.method_name, "GET");
	SPLITS(HTTP_REQUEST, HTTP_M_OTHER, "\r\n\r\nGET / HTTP/1.1\r\nHost: w\r\n\r\n");
	assert_int_equal(REQ(&h, "\n\nGET / HTTP/1.1\r\nHost: w\r\n\r\n", &total), -EBADMSG);
}

static void test_versions(void **state)
{
	struct http_head h;
	size_t total;
	(void)state;
	assert_true(REQ(&h, "GET / HTTP/1.0\r\n\r\n", &total) > 0); /* 1.0: Host optional */
	assert_false(h.keep_alive);
	assert_true(REQ(&h, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &total) > 0);
	assert_true(h.keep_alive);
	assert_true(REQ(&h, "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", &total) > 0);
	assert_false(h.keep_alive);
	assert_true(REQ(&h, "GET / HTTP/1.2\r\nHost: a\r\n\r\n", &total) > 0);
	assert_int_equal(h.minor, 2);
	assert_int_equal(REQ(&h, "GET / HTTP/2.0\r\nHost: a\r\n\r\n", &total), -EPROTONOSUPPORT);
	assert_int_equal(http_error_status(-EPROTONOSUPPORT), 505);
	assert_int_equal(REQ(&h, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &total), -EPROTONOSUPPORT);
	assert_true(http_is_h2_preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24));
	assert_true(http_is_h2_preface("PRI * HTTP/2.0\r\n\r\n", 18));
	assert_false(http_is_h2_preface("PRI * HTTP/1.1\r\n\r\n", 18));
	assert_false(http_is_h2_preface("", 0));
	assert_int_equal(REQ(&h, "GET / http/1.1\r\nHost: a\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "GET / HTTP/1\r\nHost: a\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(REQ(&h, "GET /\r\nHost: a\r\n\r\n", &total), -EBADMSG);
}

static void test_request_bodies(void **state)
{
	static const char fixed[] = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n";
	static const char chunked[] = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
				      "5;name=val;q=\"a b\"\r\nhello\r\n"
				      "A \t; x\r\n0123456789\r\n"
				      "0\r\nX-Sum: 1\r\nX-Other:\r\n\r\nNEXT";
	static const char zero[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\nX";
	static const char same[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\nabcX";
	struct http_head h;
	size_t total;
	(void)state;
	assert_true(REQ(&h, fixed, &total) > 0);
	assert_int_equal(h.framing, HTTP_BODY_LENGTH);
	assert_int_equal(h.length, 5);
	assert_int_equal(total, strstr(fixed, "GET") - fixed);
	SPLITS(HTTP_REQUEST, HTTP_M_OTHER, fixed);
	assert_true(REQ(&h, chunked, &total) > 0);
	assert_int_equal(h.framing, HTTP_BODY_CHUNKED);
	assert_int_equal(total, sizeof(chunked) - 5);
	SPLITS(HTTP_REQUEST, HTTP_M_OTHER, chunked);
	assert_true(REQ(&h, zero, &total) > 0);
	assert_int_equal(total, sizeof(zero) - 2);
	assert_true(REQ(&h, same, &total) > 0);
	assert_int_equal(h.length, 3);
	assert_int_equal(total, sizeof(same) - 2);
	/* a big chunk, and sizes with leading zeros */
	assert_true(REQ(&h, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
			    "0003\r\nabc\r\n000\r\n\r\n", &total) > 0);
	assert_int_equal(total, 74);
}

static void test_upgrade(void **state)
{
	static const char ws[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
				 "Upgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n";
	struct http_head h;
	size_t total;
	(void)state;
	assert_true(REQ(&h, ws, &total) > 0);
	assert_true(h.upgrade);
	assert_true(REQ(&h, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &total) > 0);
	assert_false(h.upgrade); /* not listed in Connection */
	assert_true(REQ(&h, "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", &total) > 0);
	assert_false(h.upgrade); /* ignored in 1.0 (RFC 9110 7.8) */
	assert_true(PARSE(&h, HTTP_RESPONSE, HTTP_M_GET,
			  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05",
			  &total) > 0);
	assert_true(h.upgrade);
	assert_int_equal(h.status, 101);
	assert_int_equal(h.framing, HTTP_BODY_NONE);
	assert_int_equal(total, h.len);
}

#define RESP(h, req, lit, total) PARSE(h, HTTP_RESPONSE, req, lit, total)

static void test_responses(void **state)
{
	static const char fixed[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP";
	static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
	static const char eof[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it";
	struct http_head h;
	struct http_body b;
	size_t total;
	(void)state;
	assert_true(RESP(&h, HTTP_M_GET, fixed, &total) > 0);
	assert_int_equal(h.status, 200);
	assert_true(h.keep_alive);
	assert_int_equal(total, sizeof(fixed) - 5);
	SPLITS(HTTP_RESPONSE, HTTP_M_GET, fixed);
	assert_true(RESP(&h, HTTP_M_GET, chunked, &total) > 0);
	assert_int_equal(total, sizeof(chunked) - 1);
	SPLITS(HTTP_RESPONSE, HTTP_M_GET, chunked);
	assert_true(RESP(&h, HTTP_M_GET, eof, &total) > 0);
	assert_int_equal(h.framing, HTTP_BODY_CLOSE);
	assert_false(h.keep_alive);
	assert_int_equal(total, 0); /* ends only with the connection */
	http_body_init(&b, &h);
	assert_int_equal(http_body_feed(&b, "abc", 3), 3);
	assert_false(b.done);
	assert_int_equal(http_body_eof(&b), 0);
	assert_true(b.done);
	SPLITS(HTTP_RESPONSE, HTTP_M_GET, eof);
	/* a length cut short by the end of the stream */
	assert_true(RESP(&h, HTTP_M_GET, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", &total) > 0);
	http_body_init(&b, &h);
	assert_int_equal(http_body_feed(&b, "ab", 2), 2);
	assert_int_equal(http_body_eof(&b), -EPIPE);
	/* a coding not ending in chunked: until the close (6.3) */
	assert_true(RESP(&h, HTTP_M_GET, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", &total) > 0);
	assert_int_equal(h.framing, HTTP_BODY_CLOSE);
	/* no reason phrase; an empty one */
	assert_true(RESP(&h, HTTP_M_GET, "HTTP/1.1 204\r\n\r\n", &total) > 0);
	assert_true(RESP(&h, HTTP_M_GET, "HTTP/1.1 204 \r\n\r\n", &total) > 0);
	assert_int_equal(RESP(&h, HTTP_M_GET, "HTTP/1.1 20 OK\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(RESP(&h, HTTP_M_GET, "HTTP/1.1 099 OK\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(RESP(&h, HTTP_M_GET, "HTTP/1.1 2000 OK\r\n\r\n", &total), -EBADMSG);
	assert_int_equal(RESP(&h, HTTP_M_GET, "HTTP/1.1 200 O\x01K\r\n\r\n", &total), -EBADMSG);
	/* 1.0: closes unless keep-alive */
	assert_true(RESP(&h, HTTP_M_GET, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &total) > 0);
	assert_false(h.keep_alive);
	assert_true(RESP(&h, HTTP_M_GET, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
			 &total) > 0);
	assert_true(h.keep_alive);
	assert_true(RESP(&h, HTTP_M_GET, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			 &total) > 0);
	assert_false(h.keep_alive);
}

static void test_bodiless_responses(void **state)
{
	static const char *const no_body[] = {
		"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	struct http_head h;
	size_t total;
	(void)state;
	for (size_t i = 0; i < sizeof(no_body) / sizeof(no_body[0]); i++) {
		assert_true(parse_msg(&h, HTTP_RESPONSE, HTTP_M_GET, no_body[i], strlen(no_body[i]), &total) > 0);
		assert_int_equal(h.framing, HTTP_BODY_NONE);
		assert_int_equal(total, strlen(no_body[i]));
	}
	/* a HEAD response's length is the GET's, with no body (RFC 9110 9.3.2) */
	assert_true(RESP(&h, HTTP_M_HEAD, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", &total) > 0);
	assert_int_equal(h.framing, HTTP_BODY_NONE);
	assert_true(h.keep_alive);
	assert_true(RESP(&h, HTTP_M_HEAD, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &total) > 0);
	assert_int_equal(h.framing, HTTP_BODY_NONE);
	assert_true(RESP(&h, HTTP_M_HEAD, "HTTP/1.1 200 OK\r\n\r\n", &total) > 0);
	assert_int_equal(h.framing, HTTP_BODY_NONE);
	assert_true(h.keep_alive);
}

/* Each must be refused: the request smuggling defences, one by one. */
static void test_smuggling(void **state)
{
	static const char *const bad[] = {
		/* CL with TE (RFC 9112 6.3) */
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
		/* conflicting or malformed lengths */
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
		/* TE not ending in chunked, chunked twice or with parameters, odd */
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;a=b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip x, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0b" "chunked\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		/* field syntax */
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n chunked\r\n\r\n",       /* obs-fold */
		"POST / HTTP/1.1\r\n Host: a\r\n\r\n",                          /* whitespace first */
		"POST / HTTP/1.1\r\nHost: a\nContent-Length: 5\r\n\r\n",        /* bare LF */
		"POST / HTTP/1.1\nHost: a\n\n",
		"POST / HTTP/1.1\r\nHost: a\rContent-Length: 5\r\n\r\n",        /* bare CR */
		"POST / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nX\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nX(y): v\r\n\r\n",
		/* Host */
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
	};
	struct http_head h;
	size_t total;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ssize_t r = parse_msg(&h, HTTP_REQUEST, HTTP_M_OTHER, bad[i], strlen(bad[i]), &total);
		if (r != -EBADMSG)
			fail_msg("case %zu (%s): %zd", i, bad[i], r);
		assert_non_null(h.why);
		assert_int_equal(http_error_status((int)r), 400);
	}
	assert_int_equal(REQ(&h, "POST / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", &total), -EBADMSG);
	/* responses: the same framing rules, and TE in 1.0 */
	assert_int_equal(RESP(&h, HTTP_M_GET,
			      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", &total),
			 -EBADMSG);
	assert_int_equal(RESP(&h, HTTP_M_GET, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
			      &total), -EBADMSG);
	assert_int_equal(RESP(&h, HTTP_M_GET, "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &total),
			 -EBADMSG);
	assert_int_equal(RESP(&h, HTTP_M_GET, "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", &total), -EBADMSG);
}

/* Bodies that must be refused: the chunked grammar, strictly. */
static void test_bad_chunks(void **state)
{
	static const char *const bad[] = {
		"0x5\r\nhello\r\n0\r\n\r\n",
		"5 \r\nhello\r\n0\r\n\r\n", /* whitespace with no extension after */
		"-5\r\nhello\r\n0\r\n\r\n",
		"\r\n",
		" 5\r\nhello\r\n0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",   /* bare LF */
		"5\rhello\r\n0\r\n\r\n",   /* bare CR */
		"5\r\nhello!\r\n0\r\n\r\n", /* data longer than its size */
		"5\r\nhello\n0\r\n\r\n",
		"5;a=\x01\r\nhello\r\n0\r\n\r\n",
		"5;a\nb\r\nhello\r\n0\r\n\r\n",
		"10000000000000000\r\n",   /* past 2^60 */
		"0\r\nX: y\r\n z\r\n\r\n", /* obs-fold in trailers */
		"0\r\nX : y\r\n\r\n",
		"0\r\nX: \x7f\r\n\r\n",
		"0\r\nX: y\n\r\n",
		"0\r\n\r\r",
	};
	const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct http_head h;
	struct http_body b;
	(void)state;
	http_head_init(&h, HTTP_REQUEST, HTTP_M_OTHER);
	assert_true(http_head_parse(&h, head, strlen(head)) > 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http_body_init(&b, &h);
		ssize_t r = http_body_feed(&b, bad[i], strlen(bad[i]));
		if (r != -EBADMSG)
			fail_msg("case %zu: %zd", i, r);
		assert_non_null(b.why);
	}
	/* the largest size accepted: 2^60 - 1 */
	http_body_init(&b, &h);
	assert_int_equal(http_body_feed(&b, "fffffffffffffff\r\nab", 19), 19);
	assert_int_equal(b.left, (1ull << 60) - 3);
	assert_false(b.done);
	assert_int_equal(http_body_eof(&b), -EPIPE);
}

static void test_caps(void **state)
{
	static char big[HTTP_HEAD_MAX + 100];
	struct http_head h;
	size_t n, total;
	(void)state;
	/* a head of exactly HTTP_HEAD_MAX bytes passes, one more does not */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'a', HTTP_HEAD_MAX - n - 4);
	memcpy(big + HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
	assert_int_equal(parse_msg(&h, HTTP_REQUEST, HTTP_M_OTHER, big, HTTP_HEAD_MAX, &total), HTTP_HEAD_MAX);
	memmove(big + n + 1, big + n, HTTP_HEAD_MAX - n);
	http_head_init(&h, HTTP_REQUEST, HTTP_M_OTHER);
	assert_int_equal(http_head_parse(&h, big, HTTP_HEAD_MAX - 1), 0);
	assert_int_equal(http_head_parse(&h, big, HTTP_HEAD_MAX + 1), -EMSGSIZE);
	assert_int_equal(http_error_status(-EMSGSIZE), 431);
	assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
	/* no end in sight */
	memset(big, 'a', sizeof(big));
	http_head_init(&h, HTTP_REQUEST, HTTP_M_OTHER);
	assert_int_equal(http_head_parse(&h, big, sizeof(big)), -EMSGSIZE);
	/* 100 fields pass, 101 do not */
	for (int extra = 0; extra <= 1; extra++) {
		n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
		for (int i = 0; i < 99 + extra; i++)
			n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%d: %d\r\n", i, i);
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
		assert_int_equal(parse_msg(&h, HTTP_REQUEST, HTTP_M_OTHER, big, n, &total),
				 extra ? -EMSGSIZE : (ssize_t)n);
	}
	/* a size line and the trailers are capped */
	{
		const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
		struct http_body b;
		http_head_init(&h, HTTP_REQUEST, HTTP_M_OTHER);
		assert_true(http_head_parse(&h, head, strlen(head)) > 0);
		http_body_init(&b, &h);
		n = (size_t)snprintf(big, sizeof(big), "1;");
		memset(big + n, 'e', HTTP_CHUNK_LINE_MAX);
		assert_int_equal(http_body_feed(&b, big, n + HTTP_CHUNK_LINE_MAX), -EMSGSIZE);
		http_body_init(&b, &h);
		n = (size_t)snprintf(big, sizeof(big), "0\r\nX: ");
		memset(big + n, 'v', HTTP_TRAILER_MAX);
		assert_int_equal(http_body_feed(&b, big, n + HTTP_TRAILER_MAX), -EMSGSIZE);
	}
}

static void test_filter_parse(void **state)
{
	struct http_filter f = { 0 };
	char err[200], buf[300];
	(void)state;
	assert_true(http_filter_empty(&f));
	assert_string_equal(http_filter_str(&f, buf, sizeof(buf)), "everything");
	assert_int_equal(http_filter_add(&f, "X-Dev=alice", err, sizeof(err)), 0);
	assert_string_equal(f.f[0].name, "x-dev");
	assert_int_equal(http_filter_add(&f, "x-dev=bob", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "twice"));
	assert_int_equal(http_filter_add(&f, "novalue", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "novalue"));
	assert_int_equal(http_filter_add(&f, "=v", err, sizeof(err)), -EINVAL);
	assert_int_equal(http_filter_add(&f, "x y=v", err, sizeof(err)), -EINVAL);
	assert_int_equal(http_filter_add(&f, "x= v", err, sizeof(err)), -EINVAL);
	assert_int_equal(http_filter_add(&f, "x=v\n", err, sizeof(err)), -EINVAL);
	assert_int_equal(http_filter_add(&f, "x=a=b, c", err, sizeof(err)), 0); /* '=' in the value */
	assert_string_equal(f.f[1].value, "a=b, c");
	assert_int_equal(http_filter_add(&f, "empty=", err, sizeof(err)), 0);
	assert_int_equal(http_filter_set_path(&f, "api", err, sizeof(err)), -EINVAL);
	assert_int_equal(http_filter_set_path(&f, "/a b", err, sizeof(err)), -EINVAL);
	assert_int_equal(http_filter_set_path(&f, "/a?b", err, sizeof(err)), -EINVAL);
	assert_int_equal(http_filter_set_path(&f, "/api/", err, sizeof(err)), 0);
	assert_string_equal(http_filter_str(&f, buf, sizeof(buf)), "x-dev=alice x=a=b, c empty= path=/api/");
	for (int i = 3; i < HTTP_FILTER_FIELDS; i++) {
		snprintf(buf, sizeof(buf), "h%d=%d", i, i);
		assert_int_equal(http_filter_add(&f, buf, err, sizeof(err)), 0);
	}
	assert_int_equal(http_filter_add(&f, "one=more", err, sizeof(err)), -EINVAL);
	memset(buf, 'n', 65);
	strcpy(buf + 65, "=v");
	assert_int_equal(http_filter_add(&f, buf, err, sizeof(err)), -EINVAL);
}

static bool matches(const struct http_filter *f, const char *req)
{
	struct http_head h;
	size_t total;

	assert_true(parse_msg(&h, HTTP_REQUEST, HTTP_M_OTHER, req, strlen(req), &total) > 0);
	return http_filter_match(f, &h);
}

static void test_filter_match(void **state)
{
	struct http_filter f = { 0 }, p = { 0 }, none = { 0 };
	char err[200];
	(void)state;
	http_filter_add(&f, "x-dev=alice", err, sizeof(err));
	http_filter_add(&f, "X-Team=core", err, sizeof(err));
	assert_true(matches(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-DEV: alice\r\nx-team:core\r\n\r\n"));
	assert_false(matches(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: alice\r\n\r\n"));   /* both needed */
	assert_false(matches(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: Alice\r\nX-Team: core\r\n\r\n"));
	assert_false(matches(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: alicex\r\nX-Team: core\r\n\r\n"));
	assert_false(matches(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: alic\r\nX-Team: core\r\n\r\n"));
	/* two lines are one value, "alice, bob": it matches neither's filter */
	assert_false(matches(&f, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: alice\r\nX-Team: core\r\nX-Dev: bob\r\n\r\n"));
	http_filter_add(&p, "x-dev=alice, bob", err, sizeof(err));
	assert_true(matches(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: alice\r\nX-Dev: bob\r\n\r\n"));
	assert_true(matches(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: alice, bob\r\n\r\n"));
	assert_false(matches(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-Dev: alice,bob\r\n\r\n"));
	/* the path */
	memset(&p, 0, sizeof(p));
	http_filter_set_path(&p, "/api", err, sizeof(err));
	assert_true(matches(&p, "GET /api HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_true(matches(&p, "GET /api/v1?x HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_true(matches(&p, "GET /apiary HTTP/1.1\r\nHost: a\r\n\r\n")); /* bytes, not segments */
	assert_false(matches(&p, "GET /ap?i HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_false(matches(&p, "GET /API HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_false(matches(&p, "GET /%61pi HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_true(matches(&p, "GET http://a/api/x HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_false(matches(&p, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"));
	memset(&p, 0, sizeof(p));
	http_filter_set_path(&p, "/", err, sizeof(err));
	assert_true(matches(&p, "GET http://a HTTP/1.1\r\nHost: a\r\n\r\n"));
	/* the empty filter takes everything */
	assert_true(matches(&none, "GET / HTTP/1.0\r\n\r\n"));
	/* an empty value matches an empty field, not a missing one */
	memset(&p, 0, sizeof(p));
	http_filter_add(&p, "x-e=", err, sizeof(err));
	assert_true(matches(&p, "GET / HTTP/1.1\r\nHost: a\r\nX-E:\r\n\r\n"));
	assert_false(matches(&p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
}

static struct http_filter mkf(const char *a, const char *b, const char *path)
{
	struct http_filter f = { 0 };
	char err[200];

	if (a)
		assert_int_equal(http_filter_add(&f, a, err, sizeof(err)), 0);
	if (b)
		assert_int_equal(http_filter_add(&f, b, err, sizeof(err)), 0);
	if (path)
		assert_int_equal(http_filter_set_path(&f, path, err, sizeof(err)), 0);
	return f;
}

static void test_filter_overlap(void **state)
{
	struct http_filter alice = mkf("x-dev=alice", NULL, NULL), bob = mkf("X-Dev=bob", NULL, NULL);
	struct http_filter all = mkf(NULL, NULL, NULL), team = mkf("x-team=a", NULL, NULL);
	struct http_filter alice_api = mkf("x-dev=alice", NULL, "/api"), api_v1 = mkf(NULL, NULL, "/api/v1");
	struct http_filter web = mkf(NULL, NULL, "/web"), alice_team = mkf("x-team=a", "x-dev=alice", NULL);
	struct http_filter bob_v1 = mkf("x-dev=bob", NULL, "/api/v1");
	(void)state;
	assert_false(http_filters_overlap(&alice, &bob));
	assert_true(http_filters_overlap(&alice, &alice));
	assert_true(http_filters_overlap(&alice, &all));
	assert_true(http_filters_overlap(&all, &bob));
	assert_true(http_filters_overlap(&all, &all));
	assert_true(http_filters_overlap(&alice, &team)); /* a request may carry both */
	assert_true(http_filters_overlap(&alice_api, &api_v1));
	assert_true(http_filters_overlap(&api_v1, &alice_api));
	assert_false(http_filters_overlap(&api_v1, &web));
	assert_true(http_filters_overlap(&alice_team, &alice));
	assert_false(http_filters_overlap(&alice_team, &bob));
	assert_false(http_filters_overlap(&alice_api, &bob_v1));
	assert_false(http_filters_overlap(&bob_v1, &web));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_request_bodies),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_bodiless_responses),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_bad_chunks),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_filter_parse),
		cmocka_unit_test(test_filter_match),
		cmocka_unit_test(test_filter_overlap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
