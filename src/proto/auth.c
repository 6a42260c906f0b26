/* Tunnel authentication (docs/protocol.md, "Handshake") and token files. */
#include "proto/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/log.h"
#include "common/util.h"

/* Both labels have the same length and every field after them a fixed
 * length, so the MAC input is unambiguous; the labels differ so that the
 * client's MAC can never be replayed as the server's proof. */
#define AUTH_LABEL_LEN 22
static const char auth_label_client[AUTH_LABEL_LEN + 1] = "subway-v1 client proof";
static const char auth_label_server[AUTH_LABEL_LEN + 1] = "subway-v1 server proof";

#define AUTH_MSG_LEN (AUTH_LABEL_LEN + 2 * PROTO_NONCE_LEN + 1 + PROTO_SESSION_LEN)

void auth_mac(const struct auth_token *tok, enum auth_role role,
	      const uint8_t server_nonce[PROTO_NONCE_LEN],
	      const uint8_t client_nonce[PROTO_NONCE_LEN], uint8_t kind,
	      const uint8_t session[PROTO_SESSION_LEN], uint8_t out[PROTO_MAC_LEN])
{
	uint8_t msg[AUTH_MSG_LEN];
	uint8_t *p = msg;
	unsigned int outlen = 0;

	memcpy(p, role == AUTH_ROLE_SERVER ? auth_label_server : auth_label_client, AUTH_LABEL_LEN);
	p += AUTH_LABEL_LEN;
	memcpy(p, server_nonce, PROTO_NONCE_LEN);
	p += PROTO_NONCE_LEN;
	memcpy(p, client_nonce, PROTO_NONCE_LEN);
	p += PROTO_NONCE_LEN;
	*p++ = kind;
	memcpy(p, session, PROTO_SESSION_LEN);

	if (tok->len <= AUTH_TOKEN_MAX &&
	    HMAC(EVP_sha256(), tok->key, (int)tok->len, msg, sizeof(msg), out, &outlen) &&
	    outlen == PROTO_MAC_LEN)
		return;
	/* Fail closed: a MAC nobody can predict never matches the peer's. */
	log_err("HMAC-SHA256 failed; using a random MAC");
	if (auth_random(out, PROTO_MAC_LEN) < 0)
		abort();
}

bool auth_mac_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN])
{
	return CRYPTO_memcmp(a, b, PROTO_MAC_LEN) == 0;
}

int auth_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void auth_token_wipe(struct auth_token *tok)
{
	OPENSSL_cleanse(tok, sizeof(*tok));
}

/* ---- token files ---- */

/* One "KEY=VALUE" line being parsed: both parts trimmed, NUL-terminated
 * in a private copy of the line. */
struct tf_line {
	int no;
	char *key;
	char *val;
};

static void tf_error(char *err, size_t errlen, const struct tf_line *l, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void tf_error(char *err, size_t errlen, const struct tf_line *l, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!err || errlen == 0)
		return;
	if (l)
		n = snprintf(err, errlen, "line %d: ", l->no);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int tf_token(const struct tf_line *l, struct token_file *out, char *err, size_t errlen)
{
	size_t n = strlen(l->val);
	long bad;

	/* The value is a secret: name the position of a bad digit, never the value. */
	if (n % 2) {
		tf_error(err, errlen, l, "token has an odd number of hex digits (%zu)", n);
		return -EINVAL;
	}
	if (n < 32 || n > 2 * 64) {
		tf_error(err, errlen, l, "token must be 32 to 128 hex digits, not %zu", n);
		return -EINVAL;
	}
	bad = hex_decode(l->val, out->token.key, n / 2);
	if (bad >= 0) {
		tf_error(err, errlen, l, "token: character %ld is not a hex digit", bad + 1);
		return -EINVAL;
	}
	out->token.len = n / 2;
	return 0;
}

static int tf_manager(const struct tf_line *l, struct token_file *out, char *err, size_t errlen)
{
	if (endpoint_parse(l->val, &out->manager_addr, &out->manager_port) < 0) {
		tf_error(err, errlen, l, "manager `%.64s' is not IPv4:PORT", l->val);
		return -EINVAL;
	}
	out->has_manager = true;
	return 0;
}

int auth_fingerprint_parse(const char *s, uint8_t out[32])
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s + 7) != 64 || hex_decode(s + 7, out, 32) >= 0)
		return -EINVAL;
	return 0;
}

static int tf_fingerprint(const struct tf_line *l, struct token_file *out, char *err, size_t errlen)
{
	if (auth_fingerprint_parse(l->val, out->fingerprint) < 0) {
		tf_error(err, errlen, l, "fingerprint `%.80s' is not sha256:<64 hex digits>", l->val);
		return -EINVAL;
	}
	out->has_fingerprint = true;
	return 0;
}

/* Names as Kubernetes spells namespaces: [a-z0-9-], 1..63, commas between. */
static int tf_namespaces(const struct tf_line *l, struct token_file *out, char *err, size_t errlen)
{
	const char *s = l->val;
	size_t run = 0;

	for (const char *q = s;; q++) {
		if (*q == ',' || !*q) {
			if (run == 0 || run > 63) {
				tf_error(err, errlen, l, "namespaces: `%.80s' is not NAME[,NAME...]", s);
				return -EINVAL;
			}
			if (!*q)
				break;
			run = 0;
		} else if ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-') {
			run++;
		} else {
			tf_error(err, errlen, l, "namespaces: `%c' in `%.80s' (names are [a-z0-9-])", *q, s);
			return -EINVAL;
		}
	}
	if (strlen(s) >= sizeof(out->namespaces)) {
		tf_error(err, errlen, l, "namespaces: longer than %d characters", AUTH_NAMESPACES_MAX - 1);
		return -EINVAL;
	}
	snprintf(out->namespaces, sizeof(out->namespaces), "%s", s);
	return 0;
}

bool auth_namespace_covered(const char *list, const char *ns)
{
	size_t n = strlen(ns);

	if (!list[0])
		return true;
	for (const char *p = list; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (strcspn(p, ",") == n && !strncmp(p, ns, n))
			return true;
	}
	return false;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

/* Splits one line (already a NUL-terminated copy) into key and value.
 * Returns 1 for a key/value line, 0 for a blank or comment line. */
static int tf_split(char *line, struct tf_line *l, char *err, size_t errlen)
{
	char *s = trim(line), *eq;

	for (const char *q = s; *q; q++) {
		if ((unsigned char)*q < 0x20 && *q != '\t') {
			tf_error(err, errlen, l, "control character 0x%02x", (unsigned char)*q);
			return -EINVAL;
		}
	}
	if (*s == 0 || *s == '#')
		return 0;
	eq = strchr(s, '=');
	if (!eq) {
		tf_error(err, errlen, l, "expected KEY=VALUE, got `%.64s'", s);
		return -EINVAL;
	}
	*eq = 0;
	l->key = trim(s);
	l->val = trim(eq + 1);
	return 1;
}

/* Handles one key/value line; seen tracks keys already given. */
static int tf_field(const struct tf_line *l, struct token_file *out, unsigned *seen,
		    char *err, size_t errlen)
{
	static const char *const keys[] = { "token", "manager", "fingerprint", "namespaces" };
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(keys); i++)
		if (strcmp(l->key, keys[i]) == 0)
			break;
	if (i == ARRAY_SIZE(keys)) {
		tf_error(err, errlen, l, "unknown key `%.32s'", l->key);
		return -EINVAL;
	}
	if (*seen & (1u << i)) {
		tf_error(err, errlen, l, "%s given twice", keys[i]);
		return -EINVAL;
	}
	*seen |= 1u << i;
	if (i == 0)
		return tf_token(l, out, err, errlen);
	if (i == 1)
		return tf_manager(l, out, err, errlen);
	if (i == 3)
		return tf_namespaces(l, out, err, errlen);
	return tf_fingerprint(l, out, err, errlen);
}

int auth_token_file_parse(const char *text, size_t len, struct token_file *out, char *err, size_t errlen)
{
	char line[AUTH_TOKEN_FILE_MAX + 1];
	struct tf_line l = { 0 };
	unsigned seen = 0;
	size_t off = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = 0;
	if (len > AUTH_TOKEN_FILE_MAX) {
		tf_error(err, errlen, NULL, "token file larger than %u bytes", AUTH_TOKEN_FILE_MAX);
		return -EINVAL;
	}
	while (off < len && ret == 0) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;

		l.no++;
		if (memchr(text + off, 0, n)) {
			tf_error(err, errlen, &l, "NUL byte");
			ret = -EINVAL;
			break;
		}
		memcpy(line, text + off, n);
		line[n] = 0;
		off += n + 1;
		ret = tf_split(line, &l, err, errlen);
		if (ret > 0)
			ret = tf_field(&l, out, &seen, err, errlen);
	}
	if (ret == 0 && !(seen & 1u)) {
		tf_error(err, errlen, NULL, "no token= line");
		ret = -EINVAL;
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (ret < 0) {
		auth_token_wipe(&out->token);
		return -EINVAL;
	}
	return 0;
}

int auth_token_file_load(const char *path, struct token_file *out, char *err, size_t errlen)
{
	char buf[AUTH_TOKEN_FILE_MAX + 2];
	ssize_t n = file_read_small(path, buf, sizeof(buf));
	int ret;

	if (n < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror((int)-n));
		memset(out, 0, sizeof(*out));
		return (int)n;
	}
	if ((size_t)n > AUTH_TOKEN_FILE_MAX) {
		if (err && errlen)
			snprintf(err, errlen, "%s: larger than %u bytes", path, AUTH_TOKEN_FILE_MAX);
		memset(out, 0, sizeof(*out));
		ret = -EFBIG;
		goto out;
	}
	ret = auth_token_file_parse(buf, (size_t)n, out, err, errlen);
	if (ret < 0 && err && errlen) {
		char reason[256];
		snprintf(reason, sizeof(reason), "%s", err);
		snprintf(err, errlen, "%s: %s", path, reason);
	}
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}

/* Writes data to a fresh 0600 file next to path, then renames it over
 * path: readers never see a half-written token, and an existing file with
 * looser permissions is replaced rather than reused. */
static int write_private_file(const char *path, const char *data, size_t len)
{
	char tmp[4096];
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return -errno;
	while (len > 0 && ret == 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno != EINTR)
			ret = -errno;
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int auth_token_file_create(const char *path, const char *manager_endpoint)
{
	uint8_t key[32];
	char hex[2 * sizeof(key) + 1];
	char text[512];
	uint32_t addr;
	uint16_t port;
	int n, ret;

	if (manager_endpoint && endpoint_parse(manager_endpoint, &addr, &port) < 0)
		return -EINVAL;
	ret = auth_random(key, sizeof(key));
	if (ret < 0)
		return ret;
	hex_encode(key, sizeof(key), hex);
	n = snprintf(text, sizeof(text), "# subway token file: keep it secret (mode 0600)\ntoken=%s\n%s%s%s",
		     hex, manager_endpoint ? "manager=" : "",
		     manager_endpoint ? manager_endpoint : "", manager_endpoint ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(text))
		ret = -EINVAL;
	else
		ret = write_private_file(path, text, (size_t)n);
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(hex, sizeof(hex));
	OPENSSL_cleanse(text, sizeof(text));
	return ret;
}
