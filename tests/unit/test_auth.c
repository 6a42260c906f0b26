/* Unit tests for tunnel authentication and token files (src/proto/auth.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/auth.h"

static void fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

static void unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

struct mac_input {
	struct auth_token tok;
	uint8_t sn[PROTO_NONCE_LEN], cn[PROTO_NONCE_LEN];
	uint8_t kind;
	uint8_t session[PROTO_SESSION_LEN];
};

/* key 00..1f, server nonce 20..3f, client nonce 40..5f, session 60..6f
 * (flow) or zero (control). */
static void mac_input_init(struct mac_input *in, uint8_t kind)
{
	memset(in, 0, sizeof(*in));
	fill(in->tok.key, 32, 0);
	in->tok.len = 32;
	fill(in->sn, sizeof(in->sn), 0x20);
	fill(in->cn, sizeof(in->cn), 0x40);
	in->kind = kind;
	if (kind == CONN_FLOW)
		fill(in->session, sizeof(in->session), 0x60);
}

static void mac_of(const struct mac_input *in, enum auth_role role, uint8_t out[PROTO_MAC_LEN])
{
	auth_mac(&in->tok, role, in->sn, in->cn, in->kind, in->session, out);
}

/* Expected values computed independently, with Python's hmac module and
 * checked with `openssl dgst -sha256 -mac HMAC -macopt hexkey:0001..1f`
 * over label | server nonce | client nonce | kind | session, where label is
 * "subway-v1 client proof" or "subway-v1 server proof" (22 bytes). */
static void test_mac_known_answer(void **state)
{
	static const struct {
		enum auth_role role;
		uint8_t kind;
		const char *hex;
	} kat[] = {
		{ AUTH_ROLE_CLIENT, CONN_CONTROL, "7079d21d6080cab93cb217b97e4082afe0f3af41c90e935ee02fa36085d93afe" },
		{ AUTH_ROLE_CLIENT, CONN_FLOW, "46b8dccd4f505d1d42ee2aaeeed577e2ddf19daa9e6cd626beddb4752f1f185b" },
		{ AUTH_ROLE_SERVER, CONN_CONTROL, "6bcdd126ebe51e0b1ec8d5a306af6ca7330245533da70ccea01d8375f4de2e77" },
		{ AUTH_ROLE_SERVER, CONN_FLOW, "01123f45b6a95a6bcd6326711535e55be4eb5d6c6a7f64e38257ae2e1529f3a1" },
	};
	struct mac_input in;
	uint8_t mac[PROTO_MAC_LEN], want[PROTO_MAC_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		mac_input_init(&in, kat[i].kind);
		mac_of(&in, kat[i].role, mac);
		unhex(kat[i].hex, want, sizeof(want));
		assert_memory_equal(mac, want, sizeof(want));
		assert_true(auth_mac_equal(mac, want));
	}
}

static void test_mac_roles_differ(void **state)
{
	struct mac_input in;
	uint8_t c[PROTO_MAC_LEN], s[PROTO_MAC_LEN];

	(void)state;
	mac_input_init(&in, CONN_CONTROL);
	mac_of(&in, AUTH_ROLE_CLIENT, c);
	mac_of(&in, AUTH_ROLE_SERVER, s);
	assert_false(auth_mac_equal(c, s));
}

static void expect_changed(const struct mac_input *in, const uint8_t base[PROTO_MAC_LEN], const char *what, size_t bit)
{
	uint8_t mac[PROTO_MAC_LEN];

	mac_of(in, AUTH_ROLE_CLIENT, mac);
	if (auth_mac_equal(mac, base))
		fail_msg("flipping bit %zu of %s left the MAC unchanged", bit, what);
}

/* Every input bit is covered by the MAC. */
static void test_mac_every_bit(void **state)
{
	struct mac_input in;
	uint8_t base[PROTO_MAC_LEN];

	(void)state;
	mac_input_init(&in, CONN_FLOW);
	mac_of(&in, AUTH_ROLE_CLIENT, base);
	for (size_t b = 0; b < 8 * PROTO_NONCE_LEN; b++) {
		in.sn[b / 8] ^= (uint8_t)(1u << (b % 8));
		expect_changed(&in, base, "server nonce", b);
		in.sn[b / 8] ^= (uint8_t)(1u << (b % 8));
		in.cn[b / 8] ^= (uint8_t)(1u << (b % 8));
		expect_changed(&in, base, "client nonce", b);
		in.cn[b / 8] ^= (uint8_t)(1u << (b % 8));
	}
	for (size_t b = 0; b < 8 * PROTO_SESSION_LEN; b++) {
		in.session[b / 8] ^= (uint8_t)(1u << (b % 8));
		expect_changed(&in, base, "session", b);
		in.session[b / 8] ^= (uint8_t)(1u << (b % 8));
	}
	for (size_t b = 0; b < 8; b++) {
		in.kind ^= (uint8_t)(1u << b);
		expect_changed(&in, base, "kind", b);
		in.kind ^= (uint8_t)(1u << b);
	}
	for (size_t b = 0; b < 8 * in.tok.len; b++) {
		in.tok.key[b / 8] ^= (uint8_t)(1u << (b % 8));
		expect_changed(&in, base, "token", b);
		in.tok.key[b / 8] ^= (uint8_t)(1u << (b % 8));
	}
	in.tok.len = 31;
	expect_changed(&in, base, "token length", 0);
	in.tok.len = 32;
	/* the nonces are not interchangeable */
	uint8_t tmp[PROTO_NONCE_LEN];
	memcpy(tmp, in.sn, sizeof(tmp));
	memcpy(in.sn, in.cn, sizeof(tmp));
	memcpy(in.cn, tmp, sizeof(tmp));
	expect_changed(&in, base, "swapped nonces", 0);
}

static void test_mac_equal(void **state)
{
	uint8_t a[PROTO_MAC_LEN], b[PROTO_MAC_LEN];

	(void)state;
	fill(a, sizeof(a), 1);
	memcpy(b, a, sizeof(b));
	assert_true(auth_mac_equal(a, b));
	for (size_t i = 0; i < sizeof(a); i++) {
		b[i] ^= 0x80;
		assert_false(auth_mac_equal(a, b));
		b[i] ^= 0x80;
	}
}

static void test_random(void **state)
{
	uint8_t a[32], b[32];
	static uint8_t big[1 << 20];

	(void)state;
	assert_int_equal(auth_random(a, sizeof(a)), 0);
	assert_int_equal(auth_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(auth_random(a, 0), 0);
	assert_int_equal(auth_random(big, sizeof(big)), 0);
}

static void test_wipe(void **state)
{
	struct auth_token t, zero;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	fill(t.key, sizeof(t.key), 1);
	t.len = 32;
	auth_token_wipe(&t);
	assert_memory_equal(&t, &zero, sizeof(t));
}

/* ---- token files ---- */

#define TOK64 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define FP64 "aabbccddeeff00112233445566778899AABBCCDDEEFF00112233445566778899"

static int parse(const char *text, struct token_file *tf, char *err, size_t errlen)
{
	return auth_token_file_parse(text, strlen(text), tf, err, errlen);
}

static void test_token_good(void **state)
{
	struct token_file tf;
	char err[256];
	uint8_t want[32];

	(void)state;
	fill(want, sizeof(want), 0);
	assert_int_equal(parse("token=" TOK64 "\n", &tf, err, sizeof(err)), 0);
	assert_int_equal(tf.token.len, 32);
	assert_memory_equal(tf.token.key, want, 32);
	assert_false(tf.has_manager);
	assert_false(tf.has_fingerprint);

	/* comments, blank lines, CRLF, spaces around the parts, no final newline */
	const char *full = "# subway token\n\n  # indented comment\r\n"
			   "manager = 192.168.56.10:30443\r\n"
			   "\ttoken=" TOK64 "  \n"
			   "fingerprint=sha256:" FP64;
	assert_int_equal(parse(full, &tf, err, sizeof(err)), 0);
	assert_memory_equal(tf.token.key, want, 32);
	assert_true(tf.has_manager);
	assert_int_equal(tf.manager_addr, 0xc0a8380a);
	assert_int_equal(tf.manager_port, 30443);
	assert_true(tf.has_fingerprint);
	assert_int_equal(tf.fingerprint[0], 0xaa);
	assert_int_equal(tf.fingerprint[16], 0xaa);
	assert_int_equal(tf.fingerprint[31], 0x99);

	/* shortest and longest tokens, upper-case hex */
	char t[300];
	snprintf(t, sizeof(t), "token=%.32s\n", "ABCDEF0123456789abcdef0123456789");
	assert_int_equal(parse(t, &tf, err, sizeof(err)), 0);
	assert_int_equal(tf.token.len, 16);
	assert_int_equal(tf.token.key[0], 0xab);
	snprintf(t, sizeof(t), "token=%s%s\n", TOK64, TOK64);
	assert_int_equal(parse(t, &tf, err, sizeof(err)), 0);
	assert_int_equal(tf.token.len, 64);
	/* namespaces: a list the token covers */
	assert_int_equal(parse("token=" TOK64 "\nnamespaces=dev,team-a\n", &tf, err, sizeof(err)), 0);
	assert_string_equal(tf.namespaces, "dev,team-a");
	assert_true(auth_namespace_covered(tf.namespaces, "dev"));
	assert_true(auth_namespace_covered(tf.namespaces, "team-a"));
	assert_false(auth_namespace_covered(tf.namespaces, "team"));
	assert_false(auth_namespace_covered(tf.namespaces, "de"));
	assert_false(auth_namespace_covered(tf.namespaces, "default"));
	assert_true(auth_namespace_covered("", "anything"));
	/* the error buffer is optional */
	assert_int_equal(parse("token=" TOK64, &tf, NULL, 0), 0);
}

/* Parses text expecting -EINVAL with an error that contains want; the
 * token must be wiped and the message one line. */
static void expect_bad(const char *text, size_t len, const char *want)
{
	struct token_file tf;
	char err[256];
	static const struct auth_token zero;

	memset(err, 'x', sizeof(err));
	if (auth_token_file_parse(text, len, &tf, err, sizeof(err)) != -EINVAL)
		fail_msg("accepted: %s", text);
	assert_non_null(memchr(err, 0, sizeof(err)));
	if (!strstr(err, want))
		fail_msg("error `%s' does not contain `%s'", err, want);
	assert_null(strchr(err, '\n'));
	assert_memory_equal(&tf.token, &zero, sizeof(zero));
}

#define BAD(text, want) expect_bad(text, strlen(text), want)

static void test_token_bad(void **state)
{
	(void)state;
	BAD("", "no token");
	BAD("# only a comment\n\n", "no token");
	BAD("manager=1.2.3.4:80\n", "no token");
	BAD("token=" TOK64 "0\n", "line 1: token has an odd number");
	BAD("#\ntoken=" TOK64 "0g\n", "line 2: token: character 66 is not a hex digit");
	BAD("token=zz" TOK64 "\n", "character 1 is");
	BAD("token=0123456789abcdef0123456789abcd\n", "32 to 128 hex digits, not 30");
	BAD("token=" TOK64 TOK64 "00\n", "not 130");
	BAD("token=\n", "not 0");
	BAD("token=" TOK64 "\ntoken=" TOK64 "\n", "line 2: token given twice");
	BAD("token=" TOK64 "\nuser=me\n", "line 2: unknown key `user'");
	BAD("Token=" TOK64 "\n", "unknown key `Token'");
	BAD("token " TOK64 "\n", "line 1: expected KEY=VALUE");
	BAD("token=" TOK64 "\n\n\nmanager=1.2.3:80\n", "line 4: manager `1.2.3:80' is not IPv4:PORT");
	BAD("token=" TOK64 "\nmanager=1.2.3.4\n", "manager `1.2.3.4'");
	BAD("token=" TOK64 "\nmanager=1.2.3.4:0\n", "manager `1.2.3.4:0'");
	BAD("token=" TOK64 "\nmanager=1.2.3.4:65536\n", "manager `1.2.3.4:65536'");
	BAD("token=" TOK64 "\nmanager=subway.example:443\n", "manager `subway.example:443'");
	BAD("token=" TOK64 "\nmanager=\n", "manager `'");
	BAD("token=" TOK64 "\nmanager=1.2.3.4:80\nmanager=1.2.3.4:80\n", "manager given twice");
	BAD("token=" TOK64 "\nfingerprint=" FP64 "\n", "line 2: fingerprint `" FP64);
	BAD("token=" TOK64 "\nfingerprint=sha1:" FP64 "\n", "is not sha256:<64 hex digits>");
	BAD("token=" TOK64 "\nfingerprint=sha256:" FP64 "00\n", "fingerprint");
	BAD("token=" TOK64 "\nfingerprint=sha256:" "x" FP64 "\n", "fingerprint");
	BAD("token=" TOK64 "\nfingerprint=sha256:AA:BB\n", "fingerprint");
	BAD("token=" TOK64 "\x1b[2J\n", "line 1: control character 0x1b");
	BAD("token=" TOK64 "\nfoo\rbar\n", "line 2: control character 0x0d");
	BAD("token=" TOK64 "\nnamespaces=\n", "namespaces: `' is not NAME");
	BAD("token=" TOK64 "\nnamespaces=dev,,qa\n", "is not NAME");
	BAD("token=" TOK64 "\nnamespaces=dev,\n", "is not NAME");
	BAD("token=" TOK64 "\nnamespaces=Dev\n", "namespaces: `D' in `Dev'");
	BAD("token=" TOK64 "\nnamespaces=a b\n", "namespaces: ` '");
	expect_bad("token=" TOK64 "\n#\0x\n", 6 + 64 + 5, "line 2: NUL byte");

	/* a bad token is never echoed */
	struct token_file tf;
	char err[256];
	assert_int_equal(parse("token=" TOK64 "q\n", &tf, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "0001020304"));
	/* a tiny error buffer truncates safely */
	assert_int_equal(parse("token=" TOK64 "\nuser=me\n", &tf, err, 6), -EINVAL);
	assert_string_equal(err, "line ");
	assert_int_equal(parse("nothing=here", &tf, err, 1), -EINVAL);
	assert_string_equal(err, "");
}

static void test_token_size_cap(void **state)
{
	static char text[AUTH_TOKEN_FILE_MAX + 2];
	struct token_file tf;
	char err[128];
	size_t n;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), "token=%s\n", TOK64);
	memset(text + n, '#', AUTH_TOKEN_FILE_MAX - n);
	assert_int_equal(auth_token_file_parse(text, AUTH_TOKEN_FILE_MAX, &tf, err, sizeof(err)), 0);
	text[AUTH_TOKEN_FILE_MAX] = '#';
	assert_int_equal(auth_token_file_parse(text, AUTH_TOKEN_FILE_MAX + 1, &tf, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "larger than 4096 bytes"));
}

/* ---- files ---- */

static char tmpdir[64];

static int files_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/subway-test-auth-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int files_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_token_create_load(void **state)
{
	char path[128], err[256];
	struct token_file a, b;
	struct stat st;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/token", tmpdir);
	/* an existing, world-readable file is replaced by a 0600 one */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("old\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0);

	assert_int_equal(auth_token_file_create(path, "10.0.0.1:30443"), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(auth_token_file_load(path, &a, err, sizeof(err)), 0);
	assert_int_equal(a.token.len, 32);
	assert_true(a.has_manager);
	assert_int_equal(a.manager_addr, 0x0a000001);
	assert_int_equal(a.manager_port, 30443);

	assert_int_equal(auth_token_file_create(path, NULL), 0);
	assert_int_equal(auth_token_file_load(path, &b, err, sizeof(err)), 0);
	assert_false(b.has_manager);
	assert_memory_not_equal(a.token.key, b.token.key, 32);
	auth_token_wipe(&a.token);
	auth_token_wipe(&b.token);

	assert_int_equal(auth_token_file_create(path, "nope"), -EINVAL);
	snprintf(path, sizeof(path), "%s/missing-dir/token", tmpdir);
	assert_int_equal(auth_token_file_create(path, NULL), -ENOENT);
}

static void test_token_load_errors(void **state)
{
	char path[128], err[256];
	struct token_file tf;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/absent", tmpdir);
	assert_int_equal(auth_token_file_load(path, &tf, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));

	snprintf(path, sizeof(path), "%s/big", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "token=%s\n", TOK64);
	for (int i = 0; i < 5000; i++)
		fputc('#', f);
	fclose(f);
	assert_int_equal(auth_token_file_load(path, &tf, err, sizeof(err)), -EFBIG);
	assert_non_null(strstr(err, "larger than 4096"));

	snprintf(path, sizeof(path), "%s/bad", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("token=abc\n", f);
	fclose(f);
	assert_int_equal(auth_token_file_load(path, &tf, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "line 1: token has an odd number"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mac_known_answer),
		cmocka_unit_test(test_mac_roles_differ),
		cmocka_unit_test(test_mac_every_bit),
		cmocka_unit_test(test_mac_equal),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_wipe),
		cmocka_unit_test(test_token_good),
		cmocka_unit_test(test_token_bad),
		cmocka_unit_test(test_token_size_cap),
		cmocka_unit_test(test_token_create_load),
		cmocka_unit_test(test_token_load_errors),
	};

	return cmocka_run_group_tests(tests, files_setup, files_teardown);
}
