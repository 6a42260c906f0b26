/* Authentication of tunnel connections: HMAC-SHA256 challenge-response
 * over both nonces, so the token never crosses the wire.  See
 * docs/protocol.md, "Handshake". */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

#define AUTH_TOKEN_MAX 128
#define AUTH_TOKEN_FILE_MAX 4096u /* bytes; larger token files are refused */

enum auth_role { AUTH_ROLE_CLIENT = 1, AUTH_ROLE_SERVER = 2 };

struct auth_token {
	uint8_t key[AUTH_TOKEN_MAX];
	size_t len;
};

/* MAC = HMAC-SHA256(token, label(role) | server_nonce | client_nonce | kind | session). */
void auth_mac(const struct auth_token *tok, enum auth_role role,
	      const uint8_t server_nonce[PROTO_NONCE_LEN],
	      const uint8_t client_nonce[PROTO_NONCE_LEN], uint8_t kind,
	      const uint8_t session[PROTO_SESSION_LEN], uint8_t out[PROTO_MAC_LEN]);
/* Constant-time comparison of two MACs. */
bool auth_mac_equal(const uint8_t a[PROTO_MAC_LEN], const uint8_t b[PROTO_MAC_LEN]);
/* Fills buf from getrandom(); 0 or -errno. */
int auth_random(void *buf, size_t len);

/* Token files hold "KEY=VALUE" lines ('#' comments, blank lines ok):
 *   token=<hex, 32..128 hex digits>      (required)
 *   manager=<IPv4>:<port>               (optional)
 *   fingerprint=sha256:<64 hex>          (optional, the manager's certificate)
 * Unknown keys are rejected.  Parsing is pure (auth_token_file_parse);
 * auth_token_file_load reads the file (at most 4 KiB) then parses. */
#define AUTH_NAMESPACES_MAX 512

struct token_file {
	struct auth_token token;
	bool has_manager;
	uint32_t manager_addr;
	uint16_t manager_port;
	bool has_fingerprint;
	uint8_t fingerprint[32];
	/* namespaces=NS[,NS...]: the only namespaces whose workloads the
	 * token's holders may intercept (list too); "" for every one. */
	char namespaces[AUTH_NAMESPACES_MAX];
};
/* ns is one of list's comma-separated names, or list is "" (every one). */
bool auth_namespace_covered(const char *list, const char *ns);
/* 0 or -EINVAL; on error, err (if non-NULL) gets a one-line reason naming the bad value. */
int auth_token_file_parse(const char *text, size_t len, struct token_file *out, char *err, size_t errlen);
/* 0, -errno from reading (err names the path), -EFBIG over
 * AUTH_TOKEN_FILE_MAX, or -EINVAL from parsing.  The file's permissions are
 * not checked (auth_token_file_create makes it 0600). */
int auth_token_file_load(const char *path, struct token_file *out, char *err, size_t errlen);
/* Writes a new token file with a fresh random 32-byte token, mode 0600. 0 or -errno.
 * Written to a temporary file in the same directory, then renamed over path
 * (replacing any existing file).  -EINVAL for a bad manager endpoint. */
int auth_token_file_create(const char *path, const char *manager_endpoint /* may be NULL */);
/* "sha256:<64 hex digits>" (either case) into 32 bytes; 0 or -EINVAL. */
int auth_fingerprint_parse(const char *s, uint8_t out[32]);
/* Wipes the token (OPENSSL_cleanse). */
void auth_token_wipe(struct auth_token *tok);
