/* HTTP/1.1 message framing (RFC 9112) and request filters, for the agent's
 * routing proxy.  Pure: no I/O, no allocation, fixed caps.
 *
 * A message is read in two parts.  Its head (start line, field lines, the
 * empty line) is parsed from a buffer holding the bytes received so far
 * (http_head_parse, called again as more arrive); its body is then fed,
 * in pieces of any size, to a framing tracker (http_body_feed) that says
 * how many of the bytes belong to the message and when it has ended.  The
 * body is never decoded or copied: chunk sizes, extensions and trailers
 * are only checked and counted.
 *
 * Request smuggling defences (a message whose end two parsers could see in
 * different places is refused, never repaired, since it is forwarded as
 * received): line ends are CRLF only (no bare LF, no bare CR anywhere);
 * no whitespace before the first field or between a field name and its
 * colon; no obs-fold; no control bytes in values; Content-Length is digits
 * only, at most 18, and several must agree; Content-Length with
 * Transfer-Encoding is refused; in a request, Transfer-Encoding must end
 * with chunked, once, and is refused in HTTP/1.0; an HTTP/1.1 request has
 * exactly one Host; chunk sizes are hex digits only, below 2^60, and
 * whitespace after one must lead to an extension; chunk data must be
 * followed by CRLF exactly; size lines and trailers are capped. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_HEAD_MAX 16384      /* bytes of a head, its empty line included */
#define HTTP_FIELDS_MAX 100      /* field lines in a head */
#define HTTP_CHUNK_LINE_MAX 1024 /* a chunk-size line with its extensions */
#define HTTP_TRAILER_MAX 8192    /* the trailer section of a chunked body */

enum http_kind { HTTP_REQUEST, HTTP_RESPONSE };

/* Only the methods the framing depends on are told apart. */
enum http_method { HTTP_M_OTHER, HTTP_M_GET, HTTP_M_HEAD, HTTP_M_CONNECT, HTTP_M_OPTIONS };

enum http_framing {
	HTTP_BODY_NONE,    /* no body (or Content-Length: 0) */
	HTTP_BODY_LENGTH,  /* Content-Length bytes */
	HTTP_BODY_CHUNKED, /* Transfer-Encoding ending in chunked */
	HTTP_BODY_CLOSE,   /* a response that ends when the connection does */
};

/* Bytes of the head: h->buf[off .. off + len). */
struct http_span {
	uint16_t off, len;
};

struct http_field {
	struct http_span name, value; /* value without the whitespace around it */
};

struct http_head {
	/* Set by http_head_init, read by the parser. */
	enum http_kind kind;
	enum http_method req_method; /* responses: the request's (HEAD has no body) */
	/* Internal: where the search for the end resumes. */
	size_t scanned, line;
	/* The head, once parsed.  Spans are valid while buf is unchanged. */
	const char *buf;
	uint16_t len;     /* bytes of the head, from buf[0], the empty line included */
	uint16_t skipped; /* empty lines before a request line (RFC 9112 2.2), part of len */
	uint8_t minor;    /* HTTP/1.minor */
	enum http_method method;     /* requests */
	struct http_span method_name, target, path; /* path: without the query; "" for a bare authority */
	uint16_t status; /* responses */
	enum http_framing framing;
	uint64_t length;  /* HTTP_BODY_LENGTH */
	bool keep_alive;  /* the connection may carry another message after this one */
	bool upgrade;     /* request: asks for Upgrade (1.1, Connection: upgrade); response: 101 */
	uint8_t nfields;
	struct http_field fields[HTTP_FIELDS_MAX];
	const char *why; /* after an error: what was wrong (a constant string) */
};

/* Ready to parse a message of this kind; req is the request's method for a
 * response (ignored for a request). */
void http_head_init(struct http_head *h, enum http_kind kind, enum http_method req);

/* buf[0..len) holds the bytes of one message received so far, from its
 * first byte; call again as more arrive (the same bytes first: the search
 * for the end resumes where it stopped).  Returns the head's length (> 0)
 * once it is complete and valid (h describes it, h->buf = buf), 0 while it
 * is incomplete, or -errno (h->why says why):
 *   -EMSGSIZE         the head passes HTTP_HEAD_MAX or HTTP_FIELDS_MAX (431)
 *   -EPROTONOSUPPORT  a version other than HTTP/1.x (505)
 *   -ENOSYS           CONNECT: a service port is not a proxy (501)
 *   -EBADMSG          anything else malformed (400)
 * After a result other than 0, http_head_init before the next message. */
ssize_t http_head_parse(struct http_head *h, const char *buf, size_t len);
/* The status a request refused with err (from http_head_parse) earns. */
int http_error_status(int err);
/* The reason phrase this module uses for status (a few codes; "Error" else). */
const char *http_status_reason(int status);
/* Whether buf starts like HTTP/2's connection preface (RFC 9113 3.4). */
bool http_is_h2_preface(const char *buf, size_t len);

static inline const char *http_at(const struct http_head *h, struct http_span s)
{
	return h->buf + s.off;
}
/* The first field named name (any case): its value and *len, or NULL. */
const char *http_head_get(const struct http_head *h, const char *name, size_t *len);
/* How many field lines are named name. */
unsigned http_head_count(const struct http_head *h, const char *name);
/* Whether the field named name is present and its combined value (its
 * lines' values joined by ", ", RFC 9110 5.3) is exactly value. */
bool http_head_value_is(const struct http_head *h, const char *name, const char *value, size_t vlen);

/* A body's framing, tracked as its bytes go by.  Embedded; no cleanup. */
struct http_body {
	enum http_framing framing;
	uint64_t left;     /* LENGTH: bytes to come; CHUNKED: of the current chunk */
	uint8_t state;     /* CHUNKED: where in the chunked grammar */
	bool ext;          /* CHUNKED: a ';' seen on this size line */
	uint16_t line;     /* CHUNKED: bytes of the current size line */
	uint16_t trailer;  /* CHUNKED: bytes of the trailer section */
	bool done;         /* the message has ended */
	const char *why;   /* after an error: what was wrong */
};

void http_body_init(struct http_body *b, const struct http_head *h);
/* p[0..len) are the next bytes after the head (or after the previous
 * feed).  Returns how many of them belong to this message (the rest are
 * the next message's; all of them until it ends), b->done once it has
 * ended; or -EBADMSG (bad chunk syntax), -EMSGSIZE (a size line or the
 * trailers too long); b->why says which. */
ssize_t http_body_feed(struct http_body *b, const char *p, size_t len);
/* The stream ended: 0 when that ends the message well (BODY_CLOSE, or it
 * had ended), -EPIPE when it was cut short. */
int http_body_eof(struct http_body *b);

/* Which requests a personal intercept takes: every NAME=VALUE (ANDed; the
 * name in any case, the value exact against the field's combined value)
 * and, if path is not "", the request's path starting with it (byte for
 * byte, as sent: no percent-decoding).  An empty filter matches all. */
#define HTTP_FILTER_FIELDS 8
#define HTTP_FILTER_NAME_MAX 64
#define HTTP_FILTER_VALUE_MAX 256
#define HTTP_FILTER_PATH_MAX 256

struct http_filter {
	unsigned n;
	struct {
		char name[HTTP_FILTER_NAME_MAX + 1]; /* lower case */
		char value[HTTP_FILTER_VALUE_MAX + 1];
	} f[HTTP_FILTER_FIELDS];
	char path[HTTP_FILTER_PATH_MAX + 1];
};

/* Adds "NAME=VALUE" (a token, '=', a field value without whitespace at its
 * ends).  0, or -EINVAL with err naming the problem and the bad value
 * (a name given twice, too many, too long...). */
int http_filter_add(struct http_filter *f, const char *spec, char *err, size_t errlen);
/* Sets the path prefix ("/...", visible ASCII, no '?' or '#').  0 or -EINVAL. */
int http_filter_set_path(struct http_filter *f, const char *prefix, char *err, size_t errlen);
bool http_filter_empty(const struct http_filter *f);
/* Whether the parsed request head matches f. */
bool http_filter_match(const struct http_filter *f, const struct http_head *req);
/* Whether some request could match both: the same name with different
 * values never does, two prefixes do when one starts the other, and an
 * empty filter overlaps every filter. */
bool http_filters_overlap(const struct http_filter *a, const struct http_filter *b);
/* "x-dev=alice path=/api" ("everything" when empty), cut to size.  Returns buf. */
const char *http_filter_str(const struct http_filter *f, char *buf, size_t size);
