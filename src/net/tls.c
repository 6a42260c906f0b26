#include "net/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/util.h"

#define TLS_CERT_DAYS (365 * 30)      /* the pin is the identity: expiry means nothing */
#define TLS_MAX_CERT_LIST (16 * 1024) /* a manager's chain is one small certificate */
#define TLS_TICKETS_MAX 64             /* kept by a client; the oldest goes first */

/* A full TLS 1.3 record on the wire: header, 16 KiB, the inner content
 * type and a 16-byte AEAD tag (all three suites offered). */
#define TLS_REC_WIRE (SSL3_RT_HEADER_LENGTH + SSL3_RT_MAX_PLAIN_LENGTH + 1 + 16)
/* Records gathered per send(): four fill the relay's 64 KiB buffer, a
 * quarter of the syscalls.  A trunk, which carries every flow's bulk,
 * gathers more (tls_set_bulk): one send per 16 records was +10% of
 * 1-stream throughput in the lab. */
#define TLS_BATCH 4
#define TLS_BATCH_BULK 16
#define TLS_OUT_CAP (TLS_BATCH * TLS_REC_WIRE)
/* Read-ahead takes up to 16 records per recv(): a trunk carries every
 * flow's bulk (a quarter of the reads of 4); OpenSSL sizes the buffer at
 * the first read, before anyone knows which connection will be a trunk,
 * so every connection gets it.  Its pages are touched only as far as
 * bytes arrive (a control connection's few KiB). */
#define TLS_RBUF_LEN (TLS_BATCH_BULK * SSL3_RT_MAX_PACKET_SIZE)

/* TLS 1.3 tickets are single-use (RFC 8446 C.4; OpenSSL's client marks a
 * used one spent): a client keeps a stack of them, newest on top. */
/* A client context's own state; the daemon's threads share one context
 * (daemon/lane.h), so its tickets and counts are changed under mu. */
struct tls_client {
	uint8_t pin[TLS_FP_LEN];
	pthread_mutex_t mu;
	SSL_SESSION *tickets[TLS_TICKETS_MAX]; /* ring: [first, first + n) */
	unsigned first, n;
	struct tls_client_info info;
};

/* The two sides of one SSL (its wbio, and its rbio: recv() noting a short read).
 * Records are appended to out[] and leave in one send() at the end of
 * tls_write, or when OpenSSL flushes (handshake flights, alerts).  What
 * a short send leaves stays here: tls_write reports the bytes it stands
 * for (owed) only once it has gone, so the caller keeps waiting for
 * LOOP_OUT meanwhile.
 *
 * Memory per SSL, allocated once: this ~64 KiB (~256 KiB in bulk mode; malloc'd, not zeroed:
 * pages are touched only as far as a burst reaches, the offsets go back
 * to 0 whenever it drains), OpenSSL's read buffer of ~261 KiB
 * (TLS_RBUF_LEN, same rule) and its ~17 KiB record write buffer: about
 * 350 KiB of address space for a busy connection, before ~34 KiB. */
struct tls_io {
	int fd;
	bool rdry;         /* the last read wanted more: what is buffered is a partial record */
	bool rshort;       /* the last recv() got less than asked: the socket was empty after it */
	bool reof;         /* recv() saw the peer's FIN */
	bool closed;       /* close_notify handed to out[] */
	uint32_t off, len; /* unsent ciphertext: out[off, len) */
	size_t owed;       /* bytes taken by a tls_write that returned -EAGAIN */
	struct tls_stats st;
	size_t cap;        /* of out[] */
	uint8_t out[];
};

static void tls_err(char *err, size_t errlen, const char *what, const char *path)
{
	char ssl[160];

	tls_last_error(ssl, sizeof(ssl));
	if (err)
		snprintf(err, errlen, "%s %s: %s", what, path, ssl[0] ? ssl : strerror(errno));
}

const char *tls_last_error(char *buf, size_t len)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	buf[0] = 0;
	if (last) {
		const char *r = ERR_reason_error_string(last);
		snprintf(buf, len, "%s", r ? r : "TLS error");
	}
	return buf;
}

char *tls_fp_str(const uint8_t fp[TLS_FP_LEN], char *out)
{
	memcpy(out, "sha256:", 7);
	hex_encode(fp, TLS_FP_LEN, out + 7);
	return out;
}

static int tls_x509_fp(X509 *x, uint8_t fp[TLS_FP_LEN])
{
	unsigned int n = 0;

	return X509_digest(x, EVP_sha256(), fp, &n) == 1 && n == TLS_FP_LEN ? 0 : -EIO;
}

/* Writes text to a new file made for it (O_EXCL), then links it to path:
 * link() never replaces, so a key is never overwritten.  replace: rename
 * instead (the certificate, public and derived from the key). */
static int tls_write_file(const char *path, int mode, bool replace, EVP_PKEY *key, X509 *x)
{
	char tmp[PATH_MAX];
	int fd, ret = 0;
	FILE *fp;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	fp = fdopen(fd, "w");
	if (!fp) {
		ret = -errno;
		close(fd);
		goto out;
	}
	if ((key && !PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL)) ||
	    (x && !PEM_write_X509(fp, x)))
		ret = -EIO;
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		ret = ret ? ret : -errno;
	if (fclose(fp) != 0 && !ret)
		ret = -errno;
	if (!ret && (replace ? rename(tmp, path) : link(tmp, path)) < 0)
		ret = -errno;
out:
	unlink(tmp);
	return ret;
}

static EVP_PKEY *tls_key_load(const char *key_path)
{
	FILE *fp = fopen(key_path, "re");
	EVP_PKEY *k;

	if (!fp)
		return NULL;
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	return k;
}

/* A self-signed certificate for key: CN=subway-manager, random serial. */
static X509 *tls_cert_for(EVP_PKEY *key)
{
	X509 *x = X509_new();
	BIGNUM *bn = BN_new();
	X509_NAME *n;
	bool ok;

	ok = x && bn && X509_set_version(x, 2) && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_time_adj_ex(X509_getm_notAfter(x), TLS_CERT_DAYS, 0, NULL);
	n = ok ? X509_get_subject_name(x) : NULL;
	ok = ok && n &&
	     X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"subway-manager", -1, -1, 0) &&
	     X509_set_issuer_name(x, n) && X509_set_pubkey(x, key) && X509_sign(x, key, NULL) > 0;
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int tls_cert_create(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	EVP_PKEY *key = tls_key_load(key_path);
	X509 *x = NULL;
	int ret = 0;

	if (!key && errno != ENOENT) {
		tls_err(err, errlen, "cannot read the key", key_path);
		return -EIO;
	}
	if (!key) {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		ret = key ? tls_write_file(key_path, 0600, false, key, NULL) : -ENOMEM;
		if (ret == -EEXIST) { /* another process made one just now: use it */
			EVP_PKEY_free(key);
			key = tls_key_load(key_path);
			ret = key ? 0 : -EIO;
		}
		if (ret < 0) {
			snprintf(err, errlen, "cannot write the key %s: %s", key_path, strerror(-ret));
			goto out;
		}
	}
	x = tls_cert_for(key);
	ret = x ? tls_write_file(cert_path, 0644, true, NULL, x) : -EIO;
	if (ret < 0)
		snprintf(err, errlen, "cannot write the certificate %s: %s", cert_path, strerror(-ret));
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}

int tls_dir_ensure(const char *dir, char *cert_path, char *key_path, size_t pathlen, bool *created,
		   char *err, size_t errlen)
{
	struct stat st;

	*created = false;
	if ((size_t)snprintf(cert_path, pathlen, "%s/cert.pem", dir) >= pathlen ||
	    (size_t)snprintf(key_path, pathlen, "%s/key.pem", dir) >= pathlen) {
		snprintf(err, errlen, "TLS directory name too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (stat(key_path, &st) == 0 && stat(cert_path, &st) == 0)
		return 0;
	*created = true;
	return tls_cert_create(cert_path, key_path, err, errlen);
}

int tls_cert_fingerprint(const char *cert_path, uint8_t fp[TLS_FP_LEN], char *err, size_t errlen)
{
	FILE *f = fopen(cert_path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	int ret = x ? tls_x509_fp(x, fp) : -EIO;

	if (!x)
		tls_err(err, errlen, "cannot read the certificate", cert_path);
	if (f)
		fclose(f);
	X509_free(x);
	return ret;
}

static void tls_ctx_common(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/* Partial writes and a moving buffer: the caller's queue may be
	 * compacted or grown between retries.  No SSL_MODE_RELEASE_BUFFERS:
	 * it frees and allocates the record buffers around every record,
	 * an allocation per packet; a connection keeps its ~34 KiB instead. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One recv() takes what the socket holds, up to TLS_BATCH records,
	 * instead of a header and a body per record.  The bytes it reads
	 * ahead raise no event: tls_pending. */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_RBUF_LEN);
	SSL_CTX_set_max_cert_list(ctx, TLS_MAX_CERT_LIST);
	/* AES-128-GCM first: as strong as the tunnel needs, and the cheapest
	 * per byte where AES-NI is (ChaCha20 for peers without it). */
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
}

SSL_CTX *tls_server_ctx(const char *cert_path, const char *key_path, uint8_t fp[TLS_FP_LEN], char *err,
			size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		tls_err(err, errlen, "cannot create a TLS context", "");
		return NULL;
	}
	tls_ctx_common(ctx);
	/* Stateless tickets only: no session cache to grow on the server. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_file(ctx, cert_path, SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errlen, "cannot use the certificate", cert_path);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "cannot use the key", key_path);
		goto fail;
	}
	if (tls_x509_fp(SSL_CTX_get0_certificate(ctx), fp) < 0) {
		snprintf(err, errlen, "cannot hash the certificate %s", cert_path);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* The pin replaces chain validation: only the certificate whose hash is
 * the pin passes, whatever it says about itself. */
static int tls_pin_check(X509_STORE_CTX *sctx, void *arg)
{
	struct tls_client *c = arg;
	X509 *x = X509_STORE_CTX_get0_cert(sctx);
	uint8_t fp[TLS_FP_LEN];

	if (x && tls_x509_fp(x, fp) == 0 && CRYPTO_memcmp(fp, c->pin, TLS_FP_LEN) == 0) {
		X509_STORE_CTX_set_error(sctx, X509_V_OK);
		return 1;
	}
	pthread_mutex_lock(&c->mu);
	c->info.refused++;
	c->info.seen_valid = x != NULL;
	if (x)
		memcpy(c->info.seen, fp, TLS_FP_LEN);
	pthread_mutex_unlock(&c->mu);
	X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_REJECTED);
	return 0;
}

/* Keeps a copy: the SSL's own session is marked spent if that SSL is
 * freed without a close_notify (OpenSSL's "bad session" rule), and a
 * flow connection that ends in a reset must not spoil its ticket. */
static int tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	SSL_SESSION *copy;

	SSL_SESSION *old = NULL;

	if (!c || !SSL_SESSION_is_resumable(sess) || !(copy = SSL_SESSION_dup(sess)))
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->n == TLS_TICKETS_MAX) {
		old = c->tickets[c->first];
		c->first = (c->first + 1) % TLS_TICKETS_MAX;
		c->n--;
	}
	c->tickets[(c->first + c->n++) % TLS_TICKETS_MAX] = copy;
	pthread_mutex_unlock(&c->mu);
	SSL_SESSION_free(old);
	return 0; /* sess stays OpenSSL's */
}

/* The newest ticket, or NULL; the caller owns the reference. */
static SSL_SESSION *tls_ticket_pop(struct tls_client *c)
{
	SSL_SESSION *t = NULL;

	if (!c)
		return NULL;
	pthread_mutex_lock(&c->mu);
	if (c->n) {
		c->n--;
		t = c->tickets[(c->first + c->n) % TLS_TICKETS_MAX];
	}
	pthread_mutex_unlock(&c->mu);
	return t;
}

SSL_CTX *tls_client_ctx(const uint8_t pin[TLS_FP_LEN], char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct tls_client *c = calloc(1, sizeof(*c));

	if (!ctx || !c) {
		tls_err(err, errlen, "cannot create a TLS context", "");
		SSL_CTX_free(ctx);
		free(c);
		return NULL;
	}
	memcpy(c->pin, pin, TLS_FP_LEN);
	pthread_mutex_init(&c->mu, NULL);
	SSL_CTX_set_app_data(ctx, c);
	tls_ctx_common(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, tls_pin_check, c);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
	return ctx;
}

void tls_ctx_free(SSL_CTX *ctx)
{
	struct tls_client *c;

	if (!ctx)
		return;
	c = SSL_CTX_get_app_data(ctx);
	if (c) {
		SSL_SESSION *t;
		while ((t = tls_ticket_pop(c)))
			SSL_SESSION_free(t);
		pthread_mutex_destroy(&c->mu);
		OPENSSL_cleanse(c, sizeof(*c));
		free(c);
	}
	SSL_CTX_free(ctx);
}

const struct tls_client_info *tls_client_info(const SSL_CTX *ctx)
{
	const struct tls_client *c = SSL_CTX_get_app_data(ctx);

	return c ? &c->info : NULL;
}

/* ---- the write BIO: records gathered, one send() for several ---- */

/* Sends what out[] holds: 0 when it all left, -EAGAIN when some stays
 * (a short send means a full socket: no second try), or -errno. */
static int tls_io_send(struct tls_io *io)
{
	ssize_t n;

	if (io->off == io->len)
		return 0;
	do {
		n = send(io->fd, io->out + io->off, io->len - io->off, MSG_NOSIGNAL);
		io->st.sends++;
	} while (n < 0 && errno == EINTR);
	if (n < 0) /* what tls_fail makes of a failed write */
		return errno == EWOULDBLOCK ? -EAGAIN : errno == EPIPE ? -EPIPE : -ECONNRESET;
	io->st.sent += (uint64_t)n;
	io->off += (uint32_t)n;
	if (io->off < io->len)
		return -EAGAIN;
	io->off = io->len = 0;
	return 0;
}

static size_t tls_io_room(const struct tls_io *io)
{
	return io->cap - (io->len - io->off);
}

/* OpenSSL hands over one record (or, in a handshake, a buffered flight)
 * at a time: appended, sent later.  No room even after a send: retry,
 * and OpenSSL keeps the record until it is called again. */
static int tls_bio_write(BIO *b, const char *p, int n)
{
	struct tls_io *io = BIO_get_data(b);
	int r;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if ((size_t)n > tls_io_room(io) && (r = tls_io_send(io)) < 0) {
		if (r == -EAGAIN)
			BIO_set_retry_write(b);
		errno = -r;
		return -1;
	}
	if ((size_t)n > io->cap) { /* never a record; all the same, straight out */
		ssize_t w = send(io->fd, p, (size_t)n, MSG_NOSIGNAL);
		io->st.sends++;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			BIO_set_retry_write(b);
		return w < 0 ? -1 : (int)w;
	}
	if ((size_t)n > io->cap - io->len) {
		memmove(io->out, io->out + io->off, io->len - io->off);
		io->len -= io->off;
		io->off = 0;
	}
	memcpy(io->out + io->len, p, (size_t)n);
	io->len += (uint32_t)n;
	io->st.records++;
	return n;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_io *io = BIO_get_data(b);
	int r;

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH: /* handshake flights, alerts: out now */
		BIO_clear_retry_flags(b);
		r = tls_io_send(io);
		if (r == -EAGAIN)
			BIO_set_retry_write(b);
		else if (r < 0)
			errno = -r;
		return r == 0 ? 1 : r == -EAGAIN ? 0 : -1;
	case BIO_CTRL_WPENDING:
		return (long)(io->len - io->off);
	}
	return 0;
}

static int tls_bio_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

/* The read side: recv() into OpenSSL's buffer (read-ahead asks for as
 * much as it has room for), noting whether the socket gave less than
 * asked: then it was empty, and a reader that has taken every whole
 * record need not call again only to hear EAGAIN (tls_drained). */
static int tls_bio_read(BIO *b, char *p, int n)
{
	struct tls_io *io = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	do
		r = recv(io->fd, p, (size_t)n, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		io->rshort = true;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		return -1;
	}
	io->rshort = r < n;
	io->reof = r == 0;
	return (int)r;
}

static long tls_bio_rctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_io *io = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_EOF: /* how OpenSSL tells a TCP FIN without close_notify */
		return io->reof;
	case BIO_CTRL_FLUSH:
		return 1;
	}
	return 0;
}

static BIO_METHOD *tls_bio_method, *tls_bio_rmethod;
static pthread_once_t tls_bio_once = PTHREAD_ONCE_INIT;

static void tls_bio_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "subway tls out");
	BIO_METHOD *r = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "subway tls in");

	if (m && r && BIO_meth_set_write(m, tls_bio_write) && BIO_meth_set_ctrl(m, tls_bio_ctrl) &&
	    BIO_meth_set_destroy(m, tls_bio_destroy) && BIO_meth_set_read(r, tls_bio_read) &&
	    BIO_meth_set_ctrl(r, tls_bio_rctrl)) {
		tls_bio_method = m;
		tls_bio_rmethod = r; /* its data is the write BIO's tls_io, which that one frees */
	} else {
		BIO_meth_free(m);
		BIO_meth_free(r);
	}
}

/* The write BIO for fd, or NULL. */
static BIO *tls_bio_new(int fd)
{
	struct tls_io *io;
	BIO *b;

	pthread_once(&tls_bio_once, tls_bio_method_init);
	if (!tls_bio_method || !(b = BIO_new(tls_bio_method)))
		return NULL;
	io = malloc(sizeof(*io) + TLS_OUT_CAP); /* out[] untouched until used */
	if (!io) {
		BIO_free(b);
		return NULL;
	}
	memset(io, 0, offsetof(struct tls_io, out));
	io->fd = fd;
	io->cap = TLS_OUT_CAP;
	BIO_set_data(b, io);
	BIO_set_init(b, 1);
	return b;
}

static struct tls_io *tls_io(SSL *ssl)
{
	return BIO_get_data(SSL_get_wbio(ssl));
}

int tls_set_bulk(SSL *ssl)
{
	BIO *b = SSL_get_wbio(ssl);
	struct tls_io *io = BIO_get_data(b), *big;

	if (io->len != io->off || io->owed)
		return -EBUSY;
	if (!(big = realloc(io, sizeof(*io) + TLS_BATCH_BULK * TLS_REC_WIRE)))
		return -ENOMEM;
	big->off = big->len = 0;
	big->cap = TLS_BATCH_BULK * TLS_REC_WIRE;
	BIO_set_data(b, big);
	BIO_set_data(SSL_get_rbio(ssl), big); /* the read side shares it */
	return 0;
}

SSL *tls_new(SSL_CTX *ctx, int fd, bool server)
{
	struct tls_client *c = SSL_CTX_get_app_data(ctx);
	SSL *ssl = SSL_new(ctx);
	BIO *wb = tls_bio_new(fd), *rb = wb ? BIO_new(tls_bio_rmethod) : NULL;
	SSL_SESSION *t;

	if (rb) {
		BIO_set_data(rb, BIO_get_data(wb));
		BIO_set_init(rb, 1);
	}
	if (!ssl || !rb || !wb) {
		SSL_free(ssl);
		BIO_free(rb);
		BIO_free(wb);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_bio(ssl, rb, wb);
	if (server) {
		SSL_set_accept_state(ssl);
		return ssl;
	}
	SSL_set_connect_state(ssl);
	t = tls_ticket_pop(c);
	if (t) {
		SSL_set_session(ssl, t); /* takes its own reference */
		SSL_SESSION_free(t);
	}
	return ssl;
}

void tls_free(SSL *ssl)
{
	SSL_free(ssl);
}

int tls_send_tickets(SSL *ssl, int n)
{
	for (int i = 0; i < n; i++)
		if (SSL_new_session_ticket(ssl) != 1) {
			ERR_clear_error();
			return -ENOMEM;
		}
	return 0;
}

bool tls_resumed(SSL *ssl)
{
	return SSL_session_reused(ssl) == 1;
}

const char *tls_cipher(SSL *ssl)
{
	const char *c = SSL_get_cipher_name(ssl);

	return c ? c : "none";
}

/* -errno for a failed call, from OpenSSL's verdict. */
static int tls_fail(SSL *ssl, int r)
{
	unsigned long e;

	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == EAGAIN || errno == EINTR)
			return -EAGAIN;
		return errno == EPIPE ? -EPIPE : -ECONNRESET;
	}
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		return -ECONNRESET; /* a TCP FIN without close_notify: maybe a truncation */
	return -EIO;
}

int tls_handshake(SSL *ssl)
{
	unsigned long e;
	int r, reason;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(ssl);
	tls_io(ssl)->rdry = r != 1 && SSL_want_read(ssl);
	if (r == 1) {
		struct tls_client *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
		if (c) {
			pthread_mutex_lock(&c->mu);
			if (tls_resumed(ssl))
				c->info.resumed++;
			else
				c->info.full++;
			pthread_mutex_unlock(&c->mu);
		}
		return 0;
	}
	r = tls_fail(ssl, r);
	if (r == -EAGAIN)
		return SSL_want_write(ssl) ? LOOP_OUT : LOOP_IN;
	if (r == 0)
		return -ECONNRESET;
	if (r != -EIO)
		return r;
	if (!SSL_is_server(ssl) && SSL_get_verify_result(ssl) != X509_V_OK)
		return -EACCES;
	e = ERR_peek_last_error();
	reason = ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
	if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_UNSUPPORTED_PROTOCOL ||
	    reason == SSL_R_HTTP_REQUEST || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
	    reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION)
		return -EPROTO;
	return -EIO;
}

ssize_t tls_read(SSL *ssl, void *buf, size_t len)
{
	struct tls_io *io = tls_io(ssl);
	int n;

	tls_io_send(io); /* an alert a read queued; errors show on writes */
	ERR_clear_error();
	errno = 0;
	n = SSL_read(ssl, buf, (int)MIN(len, (size_t)INT_MAX));
	io->rdry = n <= 0 && SSL_want_read(ssl);
	return n > 0 ? n : tls_fail(ssl, n);
}

/* Encrypts records into out[] while a whole one fits, then one send().
 * Bytes count as taken only once their ciphertext has left: a short
 * send returns -EAGAIN and keeps them owed to the next call (the same
 * bytes again, as SSL_write itself wants after -EAGAIN). */
ssize_t tls_write(SSL *ssl, const void *buf, size_t len)
{
	struct tls_io *io = tls_io(ssl);
	size_t took;
	int r = 0, n;

	if (len == 0)
		return 0;
	if ((r = tls_io_send(io)) < 0)
		return r;
	took = MIN(io->owed, len); /* a shorter retry than promised: the rest later */
	io->owed -= took;
	ERR_clear_error();
	errno = 0;
	while (took < len && tls_io_room(io) >= TLS_REC_WIRE) {
		n = SSL_write(ssl, (const uint8_t *)buf + took, (int)MIN(len - took, (size_t)INT_MAX));
		if (n <= 0) {
			r = tls_fail(ssl, n);
			r = r == 0 ? -EPIPE : r;
			break;
		}
		took += (size_t)n;
	}
	if (r < 0 && r != -EAGAIN)
		return r;
	n = tls_io_send(io);
	if (n < 0 && n != -EAGAIN)
		return n;
	if (n == -EAGAIN || !took) {
		io->owed += took;
		return -EAGAIN;
	}
	return (ssize_t)took;
}

/* close_notify is queued once (SSL_shutdown again would wait for the
 * peer's), then sent like any ciphertext. */
int tls_shutdown(SSL *ssl)
{
	struct tls_io *io = tls_io(ssl);
	int r;

	if (!io->closed) {
		ERR_clear_error();
		errno = 0;
		r = SSL_shutdown(ssl);
		if (r < 0) {
			r = tls_fail(ssl, r);
			return r == 0 ? -EPIPE : r;
		}
		io->closed = true;
	}
	return tls_io_send(io);
}

/* SSL_pending counts decrypted bytes only; with read-ahead, whole records
 * may wait undecrypted in OpenSSL's buffer too (SSL_has_pending).  After
 * a read that wanted more, what is buffered is a partial record whose
 * rest the socket will announce: no kick, or a caller would spin. */
bool tls_pending(SSL *ssl)
{
	return SSL_pending(ssl) > 0 || (!tls_io(ssl)->rdry && SSL_has_pending(ssl));
}

bool tls_drained(SSL *ssl)
{
	return tls_io(ssl)->rshort && !SSL_pending(ssl) && !SSL_has_pending(ssl);
}

bool tls_wants_write(SSL *ssl)
{
	struct tls_io *io = tls_io(ssl);

	return SSL_want_write(ssl) || io->off < io->len;
}

void tls_stats(SSL *ssl, struct tls_stats *st)
{
	*st = tls_io(ssl)->st;
}
