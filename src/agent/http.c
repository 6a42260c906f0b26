/* HTTP/1.1 message framing and request filters (http.h).  The grammar is
 * RFC 9112's (messages) and RFC 9110's (fields); section numbers below are
 * RFC 9112's unless said otherwise. */
#include "agent/http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* field-vchar, SP or HTAB (RFC 9110 5.5): no CR, LF, NUL or other control. */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int fail(const char **why, int err, const char *what)
{
	*why = what;
	return err;
}

static bool span_ieq(const struct http_head *h, struct http_span s, const char *str)
{
	size_t n = strlen(str);

	return s.len == n && !strncasecmp(http_at(h, s), str, n);
}

static struct http_span span_of(size_t from, size_t to)
{
	return (struct http_span){ (uint16_t)from, (uint16_t)(to - from) };
}

void http_head_init(struct http_head *h, enum http_kind kind, enum http_method req)
{
	memset(h, 0, offsetof(struct http_head, fields));
	h->why = NULL;
	h->kind = kind;
	h->req_method = req;
}

/* Finds the empty line ending the head (a line of "\r" or "", so that a
 * head with bare LFs ends too, and is refused by the strict parse), in at
 * most HTTP_HEAD_MAX bytes.  A request may follow empty lines (2.2). */
static ssize_t head_find_end(struct http_head *h, const char *buf, size_t len)
{
	size_t lim = MIN(len, (size_t)HTTP_HEAD_MAX), i = h->scanned;

	while (h->kind == HTTP_REQUEST && i == h->skipped && i < lim && buf[i] == '\r') {
		if (i + 1 >= lim)
			goto more;
		if (buf[i + 1] != '\n')
			break;
		i += 2;
		h->skipped = (uint16_t)i;
		h->line = i;
	}
	while (i < lim) {
		const char *nl = memchr(buf + i, '\n', lim - i);
		size_t k;
		if (!nl) {
			i = lim;
			break;
		}
		k = (size_t)(nl - buf);
		if (k == h->line || (k == h->line + 1 && buf[k - 1] == '\r')) {
			h->scanned = k + 1;
			return (ssize_t)(k + 1);
		}
		h->line = k + 1;
		i = k + 1;
	}
more:
	h->scanned = i;
	if (len >= HTTP_HEAD_MAX)
		return fail(&h->why, -EMSGSIZE, "head larger than 16 KiB");
	return 0;
}

/* The next line in [*pos, end) without its CRLF: [*ls, *le).  A bare LF is
 * refused (2.2: we forward the bytes, so we may not read them leniently). */
static int next_line(struct http_head *h, size_t *pos, size_t end, size_t *ls, size_t *le)
{
	const char *nl = memchr(h->buf + *pos, '\n', end - *pos);
	size_t k;

	if (!nl)
		return fail(&h->why, -EBADMSG, "unterminated line");
	k = (size_t)(nl - h->buf);
	if (k == *pos || h->buf[k - 1] != '\r')
		return fail(&h->why, -EBADMSG, "bare LF");
	*ls = *pos;
	*le = k - 1;
	*pos = k + 1;
	return 0;
}

/* "HTTP/1.1" filling exactly [i, end). */
static int parse_version(struct http_head *h, size_t i, size_t end)
{
	const char *v = h->buf + i;

	if (end - i != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
	    v[7] < '0' || v[7] > '9')
		return fail(&h->why, -EBADMSG, "bad HTTP version");
	if (v[5] != '1')
		return fail(&h->why, -EPROTONOSUPPORT, v[5] == '2' ? "HTTP/2" : "HTTP version not 1.x");
	h->minor = (uint8_t)(v[7] - '0');
	return 0;
}

static const struct {
	const char *name;
	enum http_method m;
} methods[] = {
	{ "GET", HTTP_M_GET },
	{ "HEAD", HTTP_M_HEAD },
	{ "CONNECT", HTTP_M_CONNECT },
	{ "OPTIONS", HTTP_M_OPTIONS },
};

/* The path of the target (3.2): origin-form up to '?', absolute-form after
 * its authority, "*" for OPTIONS.  Authority-form is CONNECT's only. */
static int parse_target(struct http_head *h)
{
	const char *t = http_at(h, h->target), *sep;
	size_t off = h->target.off, n = h->target.len, i = 0;

	if (t[0] == '*' && n == 1) {
		if (h->method != HTTP_M_OPTIONS)
			return fail(&h->why, -EBADMSG, "'*' target for a method but OPTIONS");
		h->path = h->target;
		return 0;
	}
	if (t[0] != '/') {
		while (i < n && (is_tchar((unsigned char)t[i]) && t[i] != '*'))
			i++; /* a scheme: letters, digits, "+-." (and a few more, harmless) */
		if (i == 0 || n - i < 3 || memcmp(t + i, "://", 3))
			return fail(&h->why, -EBADMSG, "bad request target");
		for (i += 3; i < n && t[i] != '/' && t[i] != '?'; i++)
			;
	}
	sep = memchr(t + i, '?', n - i);
	h->path = span_of(off + i, sep ? off + (size_t)(sep - t) : off + n);
	return 0;
}

static int parse_request_line(struct http_head *h, size_t ls, size_t le)
{
	const char *b = h->buf;
	size_t i = ls, ts;
	int r;

	while (i < le && is_tchar((unsigned char)b[i]))
		i++;
	if (i == ls || i >= le || b[i] != ' ')
		return fail(&h->why, -EBADMSG, "bad method");
	h->method_name = span_of(ls, i);
	for (size_t k = 0; k < ARRAY_SIZE(methods); k++)
		if (strlen(methods[k].name) == i - ls && !memcmp(b + ls, methods[k].name, i - ls))
			h->method = methods[k].m;
	for (ts = ++i; i < le && b[i] > 0x20 && b[i] < 0x7f; i++)
		;
	if (i == ts || i >= le || b[i] != ' ')
		return fail(&h->why, -EBADMSG, "bad request target");
	h->target = span_of(ts, i);
	if ((r = parse_version(h, i + 1, le)) < 0)
		return r;
	if (h->method == HTTP_M_CONNECT)
		return fail(&h->why, -ENOSYS, "CONNECT (a service port is not a proxy)");
	return parse_target(h);
}

/* status-line = HTTP-version SP 3DIGIT SP [ reason ] (4); the SP after
 * the code is optional here, as servers omit it. */
static int parse_status_line(struct http_head *h, size_t ls, size_t le)
{
	const char *b = h->buf;
	int r;

	if (le - ls < 12 || b[ls + 8] != ' ')
		return fail(&h->why, -EBADMSG, "bad status line");
	if ((r = parse_version(h, ls, ls + 8)) < 0)
		return r;
	h->status = 0;
	for (size_t i = ls + 9; i < ls + 12; i++) {
		if (b[i] < '0' || b[i] > '9')
			return fail(&h->why, -EBADMSG, "bad status code");
		h->status = (uint16_t)(h->status * 10 + (b[i] - '0'));
	}
	if (h->status < 100)
		return fail(&h->why, -EBADMSG, "status code below 100");
	if (le > ls + 12 && b[ls + 12] != ' ')
		return fail(&h->why, -EBADMSG, "bad status line");
	for (size_t i = ls + 12; i < le; i++)
		if (!is_value_char((unsigned char)b[i]))
			return fail(&h->why, -EBADMSG, "control byte in the reason phrase");
	return 0;
}

/* field-line = field-name ":" OWS field-value OWS (5).  No whitespace before
 * the colon (5.1: a server must refuse it), no obs-fold (5.2). */
static int parse_field(struct http_head *h, size_t ls, size_t le)
{
	const char *b = h->buf;
	size_t i = ls, ne, vs, ve;

	if (is_ows((unsigned char)b[ls]))
		return fail(&h->why, -EBADMSG, "obs-fold (a line starting with whitespace)");
	while (i < le && is_tchar((unsigned char)b[i]))
		i++;
	if (i == ls || i >= le || b[i] != ':')
		return fail(&h->why, -EBADMSG,
			    i < le && is_ows((unsigned char)b[i]) ? "whitespace before a colon" : "bad field name");
	ne = i++;
	while (i < le && is_ows((unsigned char)b[i]))
		i++;
	for (vs = ve = i; i < le; i++) {
		if (!is_value_char((unsigned char)b[i]))
			return fail(&h->why, -EBADMSG, "control byte in a field value");
		if (!is_ows((unsigned char)b[i]))
			ve = i + 1;
	}
	if (h->nfields == HTTP_FIELDS_MAX)
		return fail(&h->why, -EMSGSIZE, "more than 100 field lines");
	h->fields[h->nfields++] = (struct http_field){ span_of(ls, ne), span_of(vs, ve) };
	return 0;
}

/* The next element of a comma-separated list (RFC 9110 5.6.1) from *pos in
 * [.., end), without the whitespace around it; false after the last. */
static bool list_next(const struct http_head *h, size_t *pos, size_t end, struct http_span *e)
{
	size_t s = *pos, i = *pos, t;

	if (s > end)
		return false;
	while (i < end && h->buf[i] != ',')
		i++;
	for (t = i; t > s && is_ows((unsigned char)h->buf[t - 1]); t--)
		;
	while (s < t && is_ows((unsigned char)h->buf[s]))
		s++;
	*pos = i + 1;
	*e = span_of(s, t);
	return true;
}

enum field_kind { F_OTHER, F_LENGTH, F_CODING, F_CONNECTION, F_HOST, F_UPGRADE };

static const struct {
	const char *name;
	enum field_kind kind;
} field_kinds[] = {
	{ "content-length", F_LENGTH }, { "transfer-encoding", F_CODING },
	{ "connection", F_CONNECTION }, { "host", F_HOST },
	{ "upgrade", F_UPGRADE },
};

/* What the framing fields say, gathered in one pass. */
struct facts {
	unsigned lengths, codings, hosts;
	uint64_t length;
	bool chunked, chunked_last, close, keep_alive, conn_upgrade, upgrade;
};

/* Content-Length = 1*DIGIT (RFC 9110 8.6); several (lines or list elements)
 * must all be the same number. */
static int fact_length(struct http_head *h, struct http_span v, struct facts *f)
{
	size_t pos = v.off, end = v.off + v.len;
	struct http_span e;

	while (list_next(h, &pos, end, &e)) {
		uint64_t n = 0;
		if (e.len == 0 || e.len > 18)
			return fail(&h->why, -EBADMSG, "bad Content-Length");
		for (size_t i = 0; i < e.len; i++) {
			char c = http_at(h, e)[i];
			if (c < '0' || c > '9')
				return fail(&h->why, -EBADMSG, "bad Content-Length");
			n = n * 10 + (uint64_t)(c - '0');
		}
		if (f->lengths++ && n != f->length)
			return fail(&h->why, -EBADMSG, "conflicting Content-Lengths");
		f->length = n;
	}
	return 0;
}

/* Transfer-Encoding = #transfer-coding, each a token with parameters
 * (RFC 9110 10.1.4); chunked takes none and is applied once (7). */
static int fact_coding(struct http_head *h, struct http_span v, struct facts *f)
{
	size_t pos = v.off, end = v.off + v.len;
	struct http_span e;

	while (list_next(h, &pos, end, &e)) {
		const char *s = http_at(h, e);
		size_t i = 0, k;
		while (i < e.len && is_tchar((unsigned char)s[i]))
			i++;
		for (k = i; k < e.len && is_ows((unsigned char)s[k]); k++)
			;
		if (i == 0 || (k < e.len && s[k] != ';'))
			return fail(&h->why, -EBADMSG, "bad Transfer-Encoding");
		f->codings++;
		f->chunked_last = i == 7 && !strncasecmp(s, "chunked", 7);
		if (f->chunked_last && (i < e.len || f->chunked))
			return fail(&h->why, -EBADMSG, "chunked with parameters, or twice");
		f->chunked |= f->chunked_last;
	}
	return 0;
}

static void fact_connection(struct http_head *h, struct http_span v, struct facts *f)
{
	size_t pos = v.off, end = v.off + v.len;
	struct http_span e;

	while (list_next(h, &pos, end, &e)) {
		f->close |= span_ieq(h, e, "close");
		f->keep_alive |= span_ieq(h, e, "keep-alive");
		f->conn_upgrade |= span_ieq(h, e, "upgrade");
	}
}

static int gather(struct http_head *h, struct facts *f)
{
	int r = 0;

	for (unsigned i = 0; i < h->nfields && r == 0; i++) {
		struct http_field *fl = &h->fields[i];
		enum field_kind k = F_OTHER;
		for (size_t j = 0; j < ARRAY_SIZE(field_kinds); j++)
			if (span_ieq(h, fl->name, field_kinds[j].name))
				k = field_kinds[j].kind;
		if (k == F_LENGTH)
			r = fact_length(h, fl->value, f);
		else if (k == F_CODING)
			r = fact_coding(h, fl->value, f);
		else if (k == F_CONNECTION)
			fact_connection(h, fl->value, f);
		f->hosts += k == F_HOST;
		f->upgrade |= k == F_UPGRADE && fl->value.len;
	}
	if (r == 0 && f->codings && h->minor == 0) /* 6.1: faulty framing */
		return fail(&h->why, -EBADMSG, "Transfer-Encoding in HTTP/1.0");
	if (r == 0 && f->codings && f->lengths) /* 6.3: smuggling */
		return fail(&h->why, -EBADMSG, "both Content-Length and Transfer-Encoding");
	return r;
}

/* 6.3 for a request: chunked last, or a length, or no body; 3.2: one Host. */
static int request_rules(struct http_head *h, const struct facts *f)
{
	if (f->hosts > 1 || (f->hosts == 0 && h->minor >= 1))
		return fail(&h->why, -EBADMSG, f->hosts ? "more than one Host" : "no Host");
	if (f->codings && !f->chunked_last)
		return fail(&h->why, -EBADMSG, "Transfer-Encoding not ending in chunked");
	h->framing = f->codings ? HTTP_BODY_CHUNKED : f->lengths ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	h->length = f->length;
	/* RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored. */
	h->upgrade = h->minor >= 1 && f->upgrade && f->conn_upgrade;
	return 0;
}

/* 6.3 for a response: none for 1xx, 204, 304 and HEAD's; chunked last, a
 * length, else until the connection closes. */
static int response_rules(struct http_head *h, const struct facts *f)
{
	if (h->status < 200 || h->status == 204 || h->status == 304 || h->req_method == HTTP_M_HEAD)
		h->framing = HTTP_BODY_NONE;
	else if (f->codings)
		h->framing = f->chunked_last ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
	else if (f->lengths)
		h->framing = HTTP_BODY_LENGTH;
	else
		h->framing = HTTP_BODY_CLOSE;
	h->length = f->length;
	h->upgrade = h->status == 101;
	return 0;
}

static int head_parse_lines(struct http_head *h, size_t end)
{
	struct facts f = { 0 };
	size_t pos = h->skipped, ls, le;
	int r;

	if ((r = next_line(h, &pos, end, &ls, &le)) < 0)
		return r;
	r = h->kind == HTTP_REQUEST ? parse_request_line(h, ls, le) : parse_status_line(h, ls, le);
	if (r < 0)
		return r;
	while ((r = next_line(h, &pos, end, &ls, &le)) == 0 && le > ls)
		if ((r = parse_field(h, ls, le)) < 0)
			return r;
	if (r < 0 || (r = gather(h, &f)) < 0)
		return r;
	r = h->kind == HTTP_REQUEST ? request_rules(h, &f) : response_rules(h, &f);
	/* 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive". */
	h->keep_alive = !f.close && (h->minor >= 1 || f.keep_alive) && h->framing != HTTP_BODY_CLOSE;
	return r;
}

ssize_t http_head_parse(struct http_head *h, const char *buf, size_t len)
{
	ssize_t end = head_find_end(h, buf, len);
	int r;

	if (end <= 0)
		return end;
	h->buf = buf;
	h->len = (uint16_t)end;
	h->nfields = 0;
	if ((r = head_parse_lines(h, (size_t)end)) < 0)
		return r;
	return end;
}

int http_error_status(int err)
{
	switch (err) {
	case -EMSGSIZE:
		return 431;
	case -EPROTONOSUPPORT:
		return 505;
	case -ENOSYS:
		return 501;
	default:
		return 400;
	}
}

const char *http_status_reason(int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
		{ 400, "Bad Request" },
		{ 408, "Request Timeout" },
		{ 431, "Request Header Fields Too Large" },
		{ 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
		{ 505, "HTTP Version Not Supported" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Error";
}

bool http_is_h2_preface(const char *buf, size_t len)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

	return len && !memcmp(buf, preface, MIN(len, sizeof(preface) - 1));
}

const char *http_head_get(const struct http_head *h, const char *name, size_t *len)
{
	for (unsigned i = 0; i < h->nfields; i++)
		if (span_ieq(h, h->fields[i].name, name)) {
			*len = h->fields[i].value.len;
			return http_at(h, h->fields[i].value);
		}
	return NULL;
}

unsigned http_head_count(const struct http_head *h, const char *name)
{
	unsigned n = 0;

	for (unsigned i = 0; i < h->nfields; i++)
		n += span_ieq(h, h->fields[i].name, name);
	return n;
}

bool http_head_value_is(const struct http_head *h, const char *name, const char *value, size_t vlen)
{
	size_t at = 0; /* bytes of value matched so far */
	bool seen = false;

	for (unsigned i = 0; i < h->nfields; i++) {
		struct http_span v = h->fields[i].value;
		if (!span_ieq(h, h->fields[i].name, name))
			continue;
		if (seen) { /* the lines are joined by ", " */
			if (vlen - at < 2 || memcmp(value + at, ", ", 2))
				return false;
			at += 2;
		}
		if (vlen - at < v.len || memcmp(value + at, http_at(h, v), v.len))
			return false;
		at += v.len;
		seen = true;
	}
	return seen && at == vlen;
}

/* The chunked grammar (7.1), one byte at a time except for chunk data. */
enum {
	CK_SIZE0,   /* the first hex digit of a size */
	CK_SIZE,    /* more hex digits, ';', whitespace or CR */
	CK_EXT,     /* extensions: after whitespace only a ';' may come */
	CK_SIZE_LF, /* LF after the size line's CR */
	CK_DATA,
	CK_DATA_CR, /* the CRLF after the data */
	CK_DATA_LF,
	CK_TLINE, /* the start of a trailer line (or the final CRLF) */
	CK_TNAME,
	CK_TVALUE,
	CK_TLF,
	CK_END_LF,
};

static int chunk_size_byte(struct http_body *b, unsigned char c)
{
	int d = hex_digit((char)c);

	if (++b->line > HTTP_CHUNK_LINE_MAX)
		return fail(&b->why, -EMSGSIZE, "chunk size line too long");
	switch (b->state) {
	case CK_SIZE0:
		if (d < 0)
			return fail(&b->why, -EBADMSG, "bad chunk size");
		b->left = (uint64_t)d;
		b->state = CK_SIZE;
		return 0;
	case CK_SIZE:
		if (d >= 0) {
			if (b->left >> 56)
				return fail(&b->why, -EBADMSG, "chunk size too large");
			b->left = b->left << 4 | (uint64_t)d;
		} else if (c == ';' || is_ows(c)) {
			b->ext = c == ';';
			b->state = CK_EXT;
		} else if (c == '\r') {
			b->state = CK_SIZE_LF;
		} else {
			return fail(&b->why, -EBADMSG, "bad chunk size");
		}
		return 0;
	default: /* CK_EXT: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ) */
		if (c == '\r' && b->ext)
			b->state = CK_SIZE_LF;
		else if (c == ';')
			b->ext = true;
		else if ((!b->ext && !is_ows(c)) || !is_value_char(c))
			return fail(&b->why, -EBADMSG, "bad chunk extension");
		return 0;
	}
}

static int chunk_trailer_byte(struct http_body *b, unsigned char c)
{
	if (++b->trailer > HTTP_TRAILER_MAX)
		return fail(&b->why, -EMSGSIZE, "trailers larger than 8 KiB");
	switch (b->state) {
	case CK_TLINE:
		if (c == '\r')
			b->state = CK_END_LF;
		else if (is_tchar(c))
			b->state = CK_TNAME;
		else
			return fail(&b->why, -EBADMSG, is_ows(c) ? "obs-fold in trailers" : "bad trailer");
		return 0;
	case CK_TNAME:
		if (c == ':')
			b->state = CK_TVALUE;
		else if (!is_tchar(c))
			return fail(&b->why, -EBADMSG, "bad trailer name");
		return 0;
	case CK_TVALUE:
		if (c == '\r')
			b->state = CK_TLF;
		else if (!is_value_char(c))
			return fail(&b->why, -EBADMSG, "control byte in a trailer");
		return 0;
	case CK_TLF:
		if (c != '\n')
			return fail(&b->why, -EBADMSG, "bare CR in trailers");
		b->state = CK_TLINE;
		return 0;
	default: /* CK_END_LF */
		if (c != '\n')
			return fail(&b->why, -EBADMSG, "bare CR after trailers");
		b->done = true;
		return 0;
	}
}

static int chunk_byte(struct http_body *b, unsigned char c)
{
	switch (b->state) {
	case CK_SIZE0:
	case CK_SIZE:
	case CK_EXT:
		return chunk_size_byte(b, c);
	case CK_SIZE_LF:
		if (c != '\n')
			return fail(&b->why, -EBADMSG, "bare CR in a chunk size line");
		b->state = b->left ? CK_DATA : CK_TLINE;
		return 0;
	case CK_DATA_CR:
		if (c != '\r')
			return fail(&b->why, -EBADMSG, "chunk data longer than its size");
		b->state = CK_DATA_LF;
		return 0;
	case CK_DATA_LF:
		if (c != '\n')
			return fail(&b->why, -EBADMSG, "bare CR after chunk data");
		b->state = CK_SIZE0;
		b->line = 0;
		b->ext = false;
		return 0;
	default:
		return chunk_trailer_byte(b, c);
	}
}

static ssize_t chunked_feed(struct http_body *b, const char *p, size_t len)
{
	size_t i = 0;
	int r;

	while (i < len && !b->done) {
		if (b->state == CK_DATA) {
			size_t n = (size_t)MIN(b->left, (uint64_t)(len - i));
			i += n;
			b->left -= n;
			if (!b->left)
				b->state = CK_DATA_CR;
			continue;
		}
		if ((r = chunk_byte(b, (unsigned char)p[i++])) < 0)
			return r;
	}
	return (ssize_t)i;
}

void http_body_init(struct http_body *b, const struct http_head *h)
{
	*b = (struct http_body){ .framing = h->framing, .left = h->length, .state = CK_SIZE0 };
	b->done = h->framing == HTTP_BODY_NONE || (h->framing == HTTP_BODY_LENGTH && !h->length);
}

ssize_t http_body_feed(struct http_body *b, const char *p, size_t len)
{
	size_t n;

	if (b->done)
		return 0;
	switch (b->framing) {
	case HTTP_BODY_LENGTH:
		n = (size_t)MIN(b->left, (uint64_t)len);
		b->left -= n;
		b->done = !b->left;
		return (ssize_t)n;
	case HTTP_BODY_CHUNKED:
		return chunked_feed(b, p, len);
	default: /* HTTP_BODY_CLOSE: all of it, until the end */
		return (ssize_t)len;
	}
}

int http_body_eof(struct http_body *b)
{
	if (b->done)
		return 0;
	if (b->framing == HTTP_BODY_CLOSE) {
		b->done = true;
		return 0;
	}
	return fail(&b->why, -EPIPE, "the stream ended within the body");
}

/* Filters. */

static void err_set(char *err, size_t errlen, const char *what, const char *bad, size_t n)
{
	char cut[STR_CUT_SIZE];

	snprintf(err, errlen, "%s: '%s'", what, str_cut(bad, n, cut, sizeof(cut)));
}

int http_filter_add(struct http_filter *f, const char *spec, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '='), *v;
	size_t nlen, vlen;
	bool ok;

	if (!eq || eq == spec) {
		err_set(err, errlen, "a header match is NAME=VALUE", spec, strlen(spec));
		return -EINVAL;
	}
	nlen = (size_t)(eq - spec);
	v = eq + 1;
	vlen = strlen(v);
	ok = nlen <= HTTP_FILTER_NAME_MAX;
	for (size_t i = 0; ok && i < nlen; i++)
		ok = is_tchar((unsigned char)spec[i]);
	if (!ok) {
		err_set(err, errlen, "not a header name (a token of at most 64)", spec, nlen);
		return -EINVAL;
	}
	ok = vlen <= HTTP_FILTER_VALUE_MAX && !(vlen && (is_ows((unsigned char)v[0]) || is_ows((unsigned char)v[vlen - 1])));
	for (size_t i = 0; ok && i < vlen; i++)
		ok = is_value_char((unsigned char)v[i]);
	if (!ok) {
		err_set(err, errlen, "not a header value (at most 256, no control bytes, no space at its ends)", v, vlen);
		return -EINVAL;
	}
	for (unsigned i = 0; i < f->n; i++)
		if (strlen(f->f[i].name) == nlen && !strncasecmp(f->f[i].name, spec, nlen)) {
			err_set(err, errlen, "header given twice", spec, nlen);
			return -EINVAL;
		}
	if (f->n == HTTP_FILTER_FIELDS) {
		err_set(err, errlen, "more than 8 header matches", spec, strlen(spec));
		return -EINVAL;
	}
	for (size_t i = 0; i < nlen; i++)
		f->f[f->n].name[i] = (char)(spec[i] >= 'A' && spec[i] <= 'Z' ? spec[i] - 'A' + 'a' : spec[i]);
	f->f[f->n].name[nlen] = 0;
	memcpy(f->f[f->n].value, v, vlen + 1);
	f->n++;
	return 0;
}

int http_filter_set_path(struct http_filter *f, const char *prefix, char *err, size_t errlen)
{
	size_t n = strlen(prefix);
	bool ok = n >= 1 && n <= HTTP_FILTER_PATH_MAX && prefix[0] == '/';

	for (size_t i = 0; ok && i < n; i++)
		ok = prefix[i] > 0x20 && prefix[i] < 0x7f && prefix[i] != '?' && prefix[i] != '#';
	if (!ok) {
		err_set(err, errlen, "not a path prefix ('/', then at most 255 visible ASCII but '?' '#')", prefix, n);
		return -EINVAL;
	}
	memcpy(f->path, prefix, n + 1);
	return 0;
}

bool http_filter_empty(const struct http_filter *f)
{
	return f->n == 0 && !f->path[0];
}

bool http_filter_match(const struct http_filter *f, const struct http_head *req)
{
	size_t plen = strlen(f->path);

	for (unsigned i = 0; i < f->n; i++)
		if (!http_head_value_is(req, f->f[i].name, f->f[i].value, strlen(f->f[i].value)))
			return false;
	if (!plen)
		return true;
	if (req->path.len == 0) /* "http://host" means "/" (3.2.2) */
		return plen == 1;
	return req->path.len >= plen && !memcmp(http_at(req, req->path), f->path, plen);
}

bool http_filters_overlap(const struct http_filter *a, const struct http_filter *b)
{
	size_t la = strlen(a->path), lb = strlen(b->path);

	for (unsigned i = 0; i < a->n; i++)
		for (unsigned j = 0; j < b->n; j++)
			if (!strcmp(a->f[i].name, b->f[j].name) && strcmp(a->f[i].value, b->f[j].value))
				return false;
	return !la || !lb || !memcmp(a->path, b->path, MIN(la, lb));
}

const char *http_filter_str(const struct http_filter *f, char *buf, size_t size)
{
	size_t at = 0;

	if (size == 0)
		return buf;
	buf[0] = 0;
	if (http_filter_empty(f))
		snprintf(buf, size, "everything");
	for (unsigned i = 0; i < f->n && at < size; i++)
		at += (size_t)snprintf(buf + at, size - at, "%s%s=%s", i ? " " : "", f->f[i].name, f->f[i].value);
	if (f->path[0] && at < size)
		snprintf(buf + at, size - at, "%spath=%s", f->n ? " " : "", f->path);
	return buf;
}
