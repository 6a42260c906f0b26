/* Unit tests for src/common/jsonget.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/jsonget.h"

static const char doc[] =
	"{\n  \"connected\": true,\n  \"state\": \"connected\",\n  \"daemon_pid\": 4121,\n"
	"  \"cluster\": {\"pod_cidrs\": [\"10.42.0.0/16\"], \"nodes\": [\"192.168.56.10\", 7, \"192.168.56.11\"],\n"
	"               \"dns\": null, \"domain\": \"clu\\\"ster\\u0041\\u00e9\"},\n"
	"  \"loop_guard\": {\"enabled\": false, \"sources\": []},\n"
	"  \"x.y\": 1, \"neg\": -3, \"float\": 1.5e2, \"big\": 18446744073709551616\n}\n";

#define DOC doc, strlen(doc)

static void test_values(void **state)
{
	char s[64], arr[4][20];
	bool b = true;
	uint64_t u = 0;
	(void)state;
	assert_int_equal(jsonget_valid(DOC), 0);
	assert_int_equal(jsonget_type(DOC, ""), JG_OBJECT);
	assert_int_equal(jsonget_type(DOC, "cluster.dns"), JG_NULL);
	assert_int_equal(jsonget_type(DOC, "cluster.nodes"), JG_ARRAY);
	assert_int_equal(jsonget_type(DOC, "cluster.nope"), 0);
	assert_int_equal(jsonget_str(DOC, "state", s, sizeof(s)), 0);
	assert_string_equal(s, "connected");
	assert_int_equal(jsonget_str(DOC, "cluster.domain", s, sizeof(s)), 0);
	assert_string_equal(s, "clu\"sterA?");
	assert_int_equal(jsonget_str(DOC, "cluster.domain", s, 4), -ENOSPC);
	assert_string_equal(s, "clu");
	assert_int_equal(jsonget_str(DOC, "daemon_pid", s, sizeof(s)), -ENOENT);
	assert_int_equal(jsonget_bool(DOC, "connected", &b), 0);
	assert_true(b);
	assert_int_equal(jsonget_bool(DOC, "loop_guard.enabled", &b), 0);
	assert_false(b);
	assert_int_equal(jsonget_u64(DOC, "daemon_pid", &u), 0);
	assert_int_equal(u, 4121);
	assert_int_equal(jsonget_u64(DOC, "neg", &u), -ENOENT);
	assert_int_equal(jsonget_u64(DOC, "float", &u), -ENOENT);
	assert_int_equal(jsonget_u64(DOC, "big", &u), -ENOENT);
	assert_int_equal(jsonget_strs(DOC, "cluster.nodes", &arr[0][0], sizeof(arr[0]), 4), 2);
	assert_string_equal(arr[0], "192.168.56.10");
	assert_string_equal(arr[1], "192.168.56.11");
	assert_int_equal(jsonget_strs(DOC, "cluster.nodes", &arr[0][0], sizeof(arr[0]), 1), 1);
	assert_int_equal(jsonget_strs(DOC, "loop_guard.sources", &arr[0][0], sizeof(arr[0]), 4), 0);
	assert_int_equal(jsonget_strs(DOC, "state", &arr[0][0], sizeof(arr[0]), 4), -ENOENT);
	/* A key with a dot cannot be named; a path through a non-object fails. */
	assert_int_equal(jsonget_type(DOC, "x.y"), 0);
	assert_int_equal(jsonget_type(DOC, "state.x"), 0);
	assert_int_equal(jsonget_type(DOC, "dns.mode"), 0);
}

/* Array elements by index: "a.0.b". */
static void test_index(void **state)
{
	static const char d[] = "[{\"kind\": \"A\", \"v\": [1, [2, 3], {\"x\": \"y\"}]}, {\"kind\": \"B\"}, []]";
	char s[16];
	uint64_t u = 0;

	(void)state;
	assert_int_equal(jsonget_str(d, strlen(d), "0.kind", s, sizeof(s)), 0);
	assert_string_equal(s, "A");
	assert_int_equal(jsonget_str(d, strlen(d), "1.kind", s, sizeof(s)), 0);
	assert_string_equal(s, "B");
	assert_int_equal(jsonget_type(d, strlen(d), "2"), JG_ARRAY);
	assert_int_equal(jsonget_type(d, strlen(d), "3"), 0);
	assert_int_equal(jsonget_type(d, strlen(d), "2.0"), 0);
	assert_int_equal(jsonget_u64(d, strlen(d), "0.v.0", &u), 0);
	assert_int_equal(u, 1);
	assert_int_equal(jsonget_u64(d, strlen(d), "0.v.1.1", &u), 0);
	assert_int_equal(u, 3);
	assert_int_equal(jsonget_str(d, strlen(d), "0.v.2.x", s, sizeof(s)), 0);
	assert_string_equal(s, "y");
	assert_int_equal(jsonget_type(d, strlen(d), "0.v.x"), 0);
	assert_int_equal(jsonget_type(d, strlen(d), "0.v.-1"), 0);
	assert_int_equal(jsonget_type(d, strlen(d), "99999999999999999999"), 0);
	assert_int_equal(jsonget_type(doc, strlen(doc), "cluster.nodes.2"), JG_STRING);
}

static void test_invalid(void **state)
{
	static const char *bad[] = {
		"", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "{\"a\":1 \"b\":2}",
		"\"abc", "\"a\\x\"", "\"\\u12\"", "01", "-", "1.", "1e", "tru", "nul", "{} {}", "{\"a\":\"\x01\"}",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	char s[8];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(jsonget_valid(bad[i], strlen(bad[i])), -EBADMSG);
		assert_int_equal(jsonget_str(bad[i], strlen(bad[i]), "", s, sizeof(s)), -ENOENT);
	}
	/* Trailing garbage past len is not read. */
	assert_int_equal(jsonget_valid("{}xyz", 2), 0);
	static const char ok[] = " [1, -0.5e-3, \"\\/\", true, false, null, {}] ";
	assert_int_equal(jsonget_valid(ok, strlen(ok)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
