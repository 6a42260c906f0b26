/* TLS 1.3 for tunnel connections (OpenSSL), non-blocking.
 *
 * The manager holds a self-signed certificate (an Ed25519 key, created at
 * first start or given as files); the daemon pins the SHA-256 of that
 * certificate (DER), carried by the token file as fingerprint=sha256:<hex>.
 * No CA, no names, no expiry check: the pin is the identity.  The HMAC
 * handshake of docs/protocol.md still runs inside TLS: TLS hides and
 * protects the bytes, the token proves who may use the manager.
 *
 * Client contexts keep the session tickets they receive (single-use, as
 * RFC 8446 advises), so pooled flow connections resume (one ECDHE, no
 * certificate, no signature) instead of running a full handshake each.
 * The server hands out more than OpenSSL's default when asked
 * (tls_send_tickets): enough for the daemon's pool on a control
 * connection, two for one on a resumed one.
 *
 * Ownership: an SSL belongs to whoever holds the fd it was made for; the
 * fd itself is never closed here. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ssl_st;
struct ssl_ctx_st;

#define TLS_FP_LEN 32
#define TLS_FP_HEX_LEN (7 + 2 * TLS_FP_LEN) /* "sha256:" + hex, without NUL */

/* Creates a new Ed25519 key and a self-signed certificate for it, written
 * to key_path (mode 0600, never replacing an existing file) and cert_path.
 * 0, -EEXIST if the key exists, or -errno; err gets a one-line reason. */
int tls_cert_create(const char *cert_path, const char *key_path, char *err, size_t errlen);
/* Makes dir (0700) and dir/key.pem + dir/cert.pem if they are missing;
 * writes both paths (each at most pathlen bytes).  *created tells whether
 * this call made them.  0 or -errno with err. */
int tls_dir_ensure(const char *dir, char *cert_path, char *key_path, size_t pathlen, bool *created,
		   char *err, size_t errlen);
/* SHA-256 of the certificate in a PEM file.  0 or -errno with err. */
int tls_cert_fingerprint(const char *cert_path, uint8_t fp[TLS_FP_LEN], char *err, size_t errlen);
/* "sha256:<64 lowercase hex>"; out holds TLS_FP_HEX_LEN + 1 bytes. */
char *tls_fp_str(const uint8_t fp[TLS_FP_LEN], char *out);

/* A server context (TLS 1.3 only) with this certificate and key; fp gets
 * the certificate's fingerprint.  NULL with err on failure. */
struct ssl_ctx_st *tls_server_ctx(const char *cert_path, const char *key_path,
				  uint8_t fp[TLS_FP_LEN], char *err, size_t errlen);
/* A client context (TLS 1.3 only) that accepts only the certificate whose
 * SHA-256 is pin, and keeps the newest session for resumption. */
struct ssl_ctx_st *tls_client_ctx(const uint8_t pin[TLS_FP_LEN], char *err, size_t errlen);
void tls_ctx_free(struct ssl_ctx_st *ctx); /* accepts NULL; wipes the kept session */

/* What a client context saw: handshakes, and the fingerprint of the last
 * certificate it refused (for the message that names both). */
struct tls_client_info {
	uint64_t full, resumed, refused;
	bool seen_valid;
	uint8_t seen[TLS_FP_LEN];
};
const struct tls_client_info *tls_client_info(const struct ssl_ctx_st *ctx);

/* An SSL for fd (client side offers the newest kept ticket).  NULL on ENOMEM. */
struct ssl_st *tls_new(struct ssl_ctx_st *ctx, int fd, bool server);
void tls_free(struct ssl_st *ssl); /* accepts NULL */

/* One step of the handshake: 0 done, LOOP_IN or LOOP_OUT (the readiness
 * to wait for), or -errno: -EACCES when the client refused the
 * certificate, -EPROTO for a peer that does not speak TLS (or another
 * version), -ECONNRESET when the peer closed, -EIO otherwise. */
int tls_handshake(struct ssl_st *ssl);
/* What a failed handshake or I/O reported, for a log line ("wrong version
 * number", "certificate verify failed"...).  Clears OpenSSL's queue. */
const char *tls_last_error(char *buf, size_t len);
bool tls_resumed(struct ssl_st *ssl);
/* Server: queues n more tickets, sent before the next bytes written. */
int tls_send_tickets(struct ssl_st *ssl, int n);
const char *tls_cipher(struct ssl_st *ssl);

/* Reads decrypted bytes: > 0, 0 on close_notify (a clean EOF), -EAGAIN
 * (wait for readiness; see tls_wants_write), -ECONNRESET for a reset or a
 * TCP EOF without close_notify (a truncation, never taken for an EOF),
 * -EIO for a protocol error. */
ssize_t tls_read(struct ssl_st *ssl, void *buf, size_t len);
/* Writes up to four records' worth in one send() when it can: > 0 bytes
 * taken, -EAGAIN, -EPIPE or -ECONNRESET.  After -EAGAIN, call again with
 * the same bytes first (as many or more); the buffer may move. */
ssize_t tls_write(struct ssl_st *ssl, const void *buf, size_t len);
/* Sends close_notify (our half-close): 0 sent, -EAGAIN (call again when
 * writable), -errno.  Never call it again once it returned 0 (it would
 * wait for the peer's close_notify).  Reading stays possible afterwards,
 * and writing after the peer's close_notify too (TLS 1.3 half-close). */
int tls_shutdown(struct ssl_st *ssl);
/* For a connection that carries bulk (a trunk): gathers 16 records per
 * send instead of 4 (~256 KiB more while busy).  Only while nothing waits
 * to be sent: 0, -EBUSY or -ENOMEM. */
int tls_set_bulk(struct ssl_st *ssl);
/* Decrypted or buffered bytes that no readiness event will announce. */
bool tls_pending(struct ssl_st *ssl);
/* The last recv() got less than it asked for, and nothing is buffered:
 * a reader may stop here, its next readiness event will come. */
bool tls_drained(struct ssl_st *ssl);
/* The last -EAGAIN of tls_read/tls_write needs the fd writable (not
 * readable), or ciphertext waits to be sent. */
bool tls_wants_write(struct ssl_st *ssl);

/* What one SSL's sending cost: ciphertext chunks OpenSSL handed over
 * (records, or handshake flights), send() calls, bytes sent. */
struct tls_stats {
	uint64_t records, sends, sent;
};
void tls_stats(struct ssl_st *ssl, struct tls_stats *st);
