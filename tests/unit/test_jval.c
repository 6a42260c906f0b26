/* Unit tests for src/common/jval.c: parsing, writing, pointers and JSON
 * patches (RFC 6902, with the examples of its appendix A). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/jval.h"

static struct jval *P(const char *s)
{
	char err[128];
	struct jval *v = jval_parse(s, strlen(s), err, sizeof(err));

	if (!v)
		fail_msg("%s: %s", s, err);
	return v;
}

/* The compact text of v (freed by the next call). */
static const char *C(const struct jval *v)
{
	static char *last;

	free(last);
	last = jval_encode(v, 0, NULL);
	return last;
}

static void test_parse_and_write(void **state)
{
	struct jval *v;
	char *s;

	(void)state;
	v = P(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"d\": \"\\u00e9\\ud83d\\ude00\\/\"} ");
	assert_string_equal(C(v), "{\"a\":[1,-2.5e3,true,false,null,\"x\"],\"b\":{},\"c\":[],\"d\":\"\xc3\xa9\xf0\x9f\x98\x80/\"}");
	assert_int_equal(jval_get(v, "a")->n, 6);
	assert_string_equal(jval_str(jval_get(v, "d")), "\xc3\xa9\xf0\x9f\x98\x80/");
	assert_null(jval_get(v, "zz"));
	assert_null(jval_str(jval_get(v, "a")));
	/* pretty: Python's json.dumps(indent=2, ensure_ascii=False) */
	s = jval_encode(v, 2, NULL);
	assert_string_equal(s, "{\n  \"a\": [\n    1,\n    -2.5e3,\n    true,\n    false,\n    null,\n    \"x\"\n  ],\n"
			       "  \"b\": {},\n  \"c\": [],\n  \"d\": \"\xc3\xa9\xf0\x9f\x98\x80/\"\n}");
	free(s);
	jval_free(v);
	/* strings: every awkward byte survives a round trip */
	v = P("\"q\\\" b\\\\ n\\n t\\t c\\u0001 d\\u007f $(VAR) = '\"");
	assert_string_equal(jval_str(v), "q\" b\\ n\n t\t c\x01 d\x7f $(VAR) = '");
	assert_string_equal(C(v), "\"q\\\" b\\\\ n\\n t\\t c\\u0001 d\x7f $(VAR) = '\"");
	jval_free(v);
}

static void test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", "-", "1e", "tru", "\"abc", "\"\\x\"",
		"\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\nb\"", "\"\xff\"", "\"\xc0\xaf\"", "[1] 2",
		"{\"a\":1,\"a\":2}", "nul", "[\"\xed\xa0\x80\"]",
	};
	char err[128], deep[2 * JVAL_DEPTH + 8];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jval *v = jval_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		if (v)
			fail_msg("parsed: %s", bad[i]);
		assert_non_null(strstr(err, "line 1 column"));
	}
	assert_null(jval_parse("{\n\"a\":1,\n\"a\":2}", 15, err, sizeof(err)));
	assert_string_equal(err, "line 3 column 1: the key \"a\" twice");
	memset(deep, '[', JVAL_DEPTH + 1);
	memset(deep + JVAL_DEPTH + 1, ']', JVAL_DEPTH + 1);
	assert_null(jval_parse(deep, 2 * JVAL_DEPTH + 2, err, sizeof(err)));
	assert_non_null(strstr(err, "nested deeper"));
	struct jval *ok = jval_parse(deep + 1, 2 * JVAL_DEPTH, err, sizeof(err));
	assert_non_null(ok);
	jval_free(ok);
}

static void test_pointer_and_build(void **state)
{
	struct jval *v = P("{\"a/b\": {\"m~n\": [10, 20]}, \"\": 1}"), *o, *x;

	(void)state;
	assert_ptr_equal(jval_ptr(v, ""), v);
	assert_string_equal(jval_ptr(v, "/a~1b/m~0n/1")->s, "20");
	assert_string_equal(jval_ptr(v, "/")->s, "1");
	assert_null(jval_ptr(v, "/a~1b/m~0n/2"));
	assert_null(jval_ptr(v, "/a~1b/m~0n/01"));
	assert_null(jval_ptr(v, "/a~2b"));
	assert_null(jval_ptr(v, "a"));
	o = jval_new(JV_OBJECT);
	assert_int_equal(jval_set(o, "k", jval_new_str("v")), 0);
	assert_int_equal(jval_set(o, "n", jval_new_int(-7)), 0);
	assert_int_equal(jval_set(o, "k", jval_new_bool(true)), 0); /* replaced in place */
	assert_int_equal(jval_set(o, "x", NULL), -ENOMEM);
	assert_int_equal(jval_push(o, jval_new(JV_NULL)), -EINVAL);
	assert_string_equal(C(o), "{\"k\":true,\"n\":-7}");
	x = jval_dup(o);
	assert_true(jval_equal(x, o));
	jval_free(jval_take(x, 0));
	assert_string_equal(C(x), "{\"n\":-7}");
	assert_false(jval_equal(x, o));
	jval_free(o);
	o = P("{\"a\":1.0,\"b\":[1,\"2\"]}");
	jval_free(x);
	x = P("{\"b\":[1,\"2\"],\"a\":1}");
	assert_true(jval_equal(x, o));
	jval_free(o);
	jval_free(x);
	jval_free(v);
}

/* RFC 6902 appendix A: doc, patch, the result or NULL for an error. */
static const char *const rfc[][3] = {
	{ "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]", "{\"foo\":\"bar\",\"baz\":\"qux\"}" },
	{ "{\"foo\":[\"bar\",\"baz\"]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
	  "{\"foo\":[\"bar\",\"qux\",\"baz\"]}" },
	{ "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}" },
	{ "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", "{\"foo\":[\"bar\",\"baz\"]}" },
	{ "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
	  "{\"baz\":\"boo\",\"foo\":\"bar\"}" },
	{ "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
	  "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
	  "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}" },
	{ "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}", "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
	  "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}" },
	{ "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
	  "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
	  "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}" },
	{ "{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", NULL },
	{ "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
	  "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}" },
	{ "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", NULL },
	{ "{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]", "{\"/\":9,\"~1\":10}" },
	{ "{\"foo\":[\"bar\"]}", "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
	  "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}" },
	{ "{\"foo\":[\"bar\"]}", "[{\"op\":\"add\",\"path\":\"/foo/2\",\"value\":1}]", NULL },
	{ "{\"foo\":1}", "[{\"op\":\"copy\",\"from\":\"/foo\",\"path\":\"/bar\"}]", "{\"foo\":1,\"bar\":1}" },
	{ "{\"foo\":{\"a\":1}}", "[{\"op\":\"move\",\"from\":\"/foo\",\"path\":\"/foo/b\"}]", NULL },
	{ "{\"foo\":1}", "[{\"op\":\"frob\",\"path\":\"/foo\"}]", NULL },
	{ "{\"foo\":1}", "[{\"op\":\"remove\",\"path\":\"/bar\"}]", NULL },
	{ "{\"foo\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]", "[1]" },
	{ "{\"foo\":1}", "{\"op\":\"remove\"}", NULL },
	{ "{\"foo\":1}", "[{\"op\":\"remove\",\"path\":\"foo\"}]", NULL },
};

static void test_patch(void **state)
{
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
		struct jval *doc = P(rfc[i][0]), *patch = P(rfc[i][1]), *before = jval_dup(doc);
		int r = jval_patch(&doc, patch, err, sizeof(err));
		if (rfc[i][2]) {
			if (r != 0)
				fail_msg("case %zu: %s", i, err);
			assert_string_equal(C(doc), rfc[i][2]);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_true(jval_equal(doc, before)); /* all or nothing */
			assert_non_null(strstr(err, "operation"));
		}
		jval_free(doc);
		jval_free(patch);
		jval_free(before);
	}
}

/* A failing operation after good ones leaves the document as it was. */
static void test_patch_atomic(void **state)
{
	struct jval *doc = P("{\"a\":[1,2]}"),
		    *patch = P("[{\"op\":\"remove\",\"path\":\"/a/0\"},{\"op\":\"test\",\"path\":\"/a/0\",\"value\":1}]");
	char err[160];

	(void)state;
	assert_int_equal(jval_patch(&doc, patch, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "operation 1 (test /a/0): the value differs");
	assert_string_equal(C(doc), "{\"a\":[1,2]}");
	jval_free(doc);
	jval_free(patch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_write),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_pointer_and_build),
		cmocka_unit_test(test_patch),
		cmocka_unit_test(test_patch_atomic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
